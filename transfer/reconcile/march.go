package reconcile

// March: two sorted listings walked in lock step behind three callbacks,
// and the ranges of keys a march covers.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Entry is one listed object. Keys are source keys: a destination lister
// strips the task's destination prefix.
type Entry struct {
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag,omitempty"` // unquoted
	LastModified time.Time `json:"last_modified,omitzero"`
	StorageClass string    `json:"storage_class,omitempty"`
	ObjectType   string    `json:"object_type,omitempty"`
}

// Lister lists one side of a task. List calls page with every page of the
// objects whose keys start with q.Prefix and sort (as bytes) after
// q.StartAfter, in the order the server returns them (with a Delimiter:
// only the objects with no delimiter after the prefix); it stops at the
// first error page returns. The page slice may be reused once page returns.
type Lister interface {
	List(ctx context.Context, q Query, page func([]Entry) error) error
}

// Query is one listing.
type Query struct {
	Prefix, StartAfter, Delimiter string
	Max                           int // keys per page; 0: the lister's
}

// ErrOutOfOrder means a listing returned a key that does not sort after
// the one before it (or lies outside the range asked for): the diff cannot
// be trusted past that point, so the run stops.
var ErrOutOfOrder = errors.New("listing out of order")

// Handler receives the outcome of a march, one key at a time, in key order.
type Handler interface {
	SrcOnly(ctx context.Context, src Entry) error
	DstOnly(ctx context.Context, dst Entry) error
	Match(ctx context.Context, src, dst Entry) error
}

// Range is one listing range: every key that starts with Prefix, sorts
// after After and (if Through is set) no later than Through. Ranges split
// at any strings b1 < b2 < ... as ("", b1], (b1, b2], ..., (bn, ...) cover
// every key exactly once, whatever the strings.
type Range struct {
	Prefix string `json:"prefix,omitempty"`
	// Flat keeps only the keys with no "/" after Prefix (the top level of
	// a bucket split into its top-level prefixes).
	Flat    bool   `json:"flat,omitempty"`
	After   string `json:"after,omitempty"`
	Through string `json:"through,omitempty"`
}

func (r Range) String() string {
	s := fmt.Sprintf("prefix %q", r.Prefix)
	if r.After != "" {
		s += fmt.Sprintf(" after %q", r.After)
	}
	if r.Through != "" {
		s += fmt.Sprintf(" through %q", r.Through)
	}
	if r.Flat {
		s += " (top level)"
	}
	return s
}

func (r Range) contains(key string) bool {
	return strings.HasPrefix(key, r.Prefix) && key > r.After && (r.Through == "" || key <= r.Through) &&
		(!r.Flat || !strings.Contains(key[len(r.Prefix):], "/"))
}

// Ranges turns a task's prefixes into disjoint listing ranges in byte
// order (see Disjoint); no prefixes is the whole bucket.
func Ranges(prefixes []string) []Range {
	return rangesOf(Disjoint(slices.Clone(prefixes)))
}

// rangesOf makes each of the disjoint prefixes ps a range; none is the
// whole bucket.
func rangesOf(ps []string) []Range {
	if len(ps) == 0 {
		return []Range{{}}
	}
	out := make([]Range, len(ps))
	for i, p := range ps {
		out[i] = Range{Prefix: p}
	}
	return out
}

// Sides is what a march lists: the source, and the destination with the
// task's destination key prefix (dest key = DstPrefix + source key).
type Sides struct {
	Src, Dst  Lister
	DstPrefix string
	// Keep filters keys on both sides (the task's suffixes); nil keeps all.
	Keep func(key string) bool
	// Depth is how many pages each side lists ahead of the merge (default 2).
	Depth int
}

// March walks one range of both sides in lock step, as rclone's march does
// for a directory, but over the flat listing: both listings stream page by
// page (each side's next pages are fetched while the merge works), and
// memory holds a few pages per side whatever the bucket's size.
func March(ctx context.Context, s Sides, r Range, h Handler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	depth := max(s.Depth, 1)
	if s.Depth == 0 {
		depth = 2
	}
	delim := ""
	if r.Flat {
		delim = "/"
	}
	src := startStream(ctx, "source", s.Src, Query{Prefix: r.Prefix, StartAfter: r.After, Delimiter: delim}, "", r, depth)
	dst := startStream(ctx, "destination", s.Dst, Query{Prefix: s.DstPrefix + r.Prefix, StartAfter: s.DstPrefix + r.After, Delimiter: delim}, s.DstPrefix, r, depth)
	se, sok, err := src.next(s.Keep)
	if err != nil {
		return err
	}
	de, dok, err := dst.next(s.Keep)
	if err != nil {
		return err
	}
	for sok || dok {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case sok && (!dok || se.Key < de.Key):
			err = h.SrcOnly(ctx, se)
			if err == nil {
				se, sok, err = src.next(s.Keep)
			}
		case dok && (!sok || de.Key < se.Key):
			err = h.DstOnly(ctx, de)
			if err == nil {
				de, dok, err = dst.next(s.Keep)
			}
		default:
			err = h.Match(ctx, se, de)
			if err == nil {
				se, sok, err = src.next(s.Keep)
			}
			if err == nil {
				de, dok, err = dst.next(s.Keep)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type page struct {
	entries []Entry
	err     error
}

// stream is one side's listing, fetched ahead by its own goroutine.
type stream struct {
	side    string
	pages   chan page
	cur     []Entry
	i       int
	last    string
	seen    bool
	strip   string
	rng     Range
	pastEnd bool
}

func startStream(ctx context.Context, side string, l Lister, q Query, strip string, r Range, depth int) *stream {
	st := &stream{side: side, pages: make(chan page, depth), strip: strip, rng: r}
	go func() {
		defer close(st.pages)
		end := r.Through
		if q.StartAfter == strip {
			q.StartAfter = "" // no After: the destination prefix alone is no bound
		}
		err := l.List(ctx, q, func(es []Entry) error {
			cp := make([]Entry, len(es))
			copy(cp, es)
			select {
			case st.pages <- page{entries: cp}:
			case <-ctx.Done():
				return ctx.Err()
			}
			// A range with an end stops listing once a page passes it.
			if end != "" && len(es) > 0 && strings.TrimPrefix(es[len(es)-1].Key, strip) > end {
				return errStopListing
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopListing) {
			select {
			case st.pages <- page{err: fmt.Errorf("list %s %s: %w", side, r, err)}:
			case <-ctx.Done():
			}
		}
	}()
	return st
}

var errStopListing = errors.New("range listed")

// next returns the next entry of the side that keep accepts; ok is false
// at the end of the range.
func (st *stream) next(keep func(string) bool) (e Entry, ok bool, err error) {
	for {
		if st.pastEnd {
			return Entry{}, false, nil
		}
		for st.i >= len(st.cur) {
			p, more := <-st.pages
			if !more {
				st.pastEnd = true
				return Entry{}, false, nil
			}
			if p.err != nil {
				return Entry{}, false, p.err
			}
			st.cur, st.i = p.entries, 0
		}
		e = st.cur[st.i]
		st.i++
		full := e.Key
		key, hadPrefix := strings.CutPrefix(full, st.strip)
		if st.seen && full <= st.last {
			return Entry{}, false, fmt.Errorf("%w: %s listing returned %q after %q", ErrOutOfOrder, st.side, full, st.last)
		}
		st.last, st.seen = full, true
		if !hadPrefix || !st.rng.contains(key) && (st.rng.Through == "" || key <= st.rng.Through) {
			return Entry{}, false, fmt.Errorf("%w: %s listing of %s returned %q, outside the range", ErrOutOfOrder, st.side, st.rng, full)
		}
		if st.rng.Through != "" && key > st.rng.Through {
			st.pastEnd = true
			return Entry{}, false, nil
		}
		if keep != nil && !keep(key) {
			continue
		}
		e.Key = key
		return e, true, nil
	}
}
