package reconcile

// Split: cutting a range into pieces that list at once, where the
// source's keys fan out.

import (
	"context"
	"errors"
	"strings"
)

// One listing is a chain of requests, each waiting for the last one's
// continuation token, so a single range lists no faster than one request
// at a time. Split cuts a range into pieces that list at once: it finds
// how the source's keys fan out below the range's prefix, with one-key
// probes that skip from each next byte to the one after (a skip scan),
// going down while all keys share one more byte. The pieces are cut at
// strings, ("", b1], (b1, b2], ..., so they cover every key once whatever
// the probes found: a probe that misjudges costs balance, never a key.

// maxProbes bounds the requests one Split makes.
const maxProbes = 300

// lastRune sorts after every key that continues with a valid character.
const lastRune = "\U0010FFFF"

// Split returns up to about want sub-ranges of r (r itself when it cannot
// or need not be cut: a flat range, or a range already bounded).
func Split(ctx context.Context, src Lister, r Range, want int) ([]Range, error) {
	if want < 2 || r.Flat || r.After != "" || r.Through != "" {
		return []Range{r}, nil
	}
	pr := &prober{src: src, prefix: r.Prefix}
	p, k0, ok, err := pr.fanOut(ctx)
	if err != nil || !ok {
		return []Range{r}, err
	}
	cuts, err := pr.children(ctx, p, k0)
	if err != nil {
		return []Range{r}, err
	}
	if len(cuts) < 2 {
		return []Range{r}, nil
	}
	return group(r, cuts, want), nil
}

// prober asks a lister for one key at a time below prefix, counting its
// requests.
type prober struct {
	src    Lister
	prefix string
	probes int
}

// first returns the first key after after.
func (pr *prober) first(ctx context.Context, after string) (string, bool, error) {
	pr.probes++
	var k string
	found := false
	err := pr.src.List(ctx, Query{Prefix: pr.prefix, StartAfter: after, Max: 1}, func(es []Entry) error {
		if len(es) > 0 {
			k, found = es[0].Key, true
		}
		return errStopListing
	})
	if err != nil && !errors.Is(err, errStopListing) {
		return "", false, err
	}
	return k, found, nil
}

// fanOut goes down from the prefix while every key shares the next byte
// (the last key is found from the end of the key space), and returns
// where the keys fan out, p, with the first key below it, k0; not ok if
// there are no keys.
func (pr *prober) fanOut(ctx context.Context) (p, k0 string, ok bool, err error) {
	if k0, ok, err = pr.first(ctx, ""); err != nil || !ok {
		return "", "", false, err
	}
	p = pr.prefix
	for pr.probes < maxProbes {
		if k0 == p {
			// The key equal to the prefix goes to the first piece; the
			// fan-out is in the keys after it.
			if k0, ok, err = pr.first(ctx, p); err != nil || !ok {
				return "", "", false, err
			}
		}
		next := p + k0[len(p):len(p)+1]
		kn, found, err := pr.first(ctx, next+lastRune)
		if err != nil {
			return "", "", false, err
		}
		if found && strings.HasPrefix(kn, p) && kn > next+lastRune {
			break // another byte follows p: fan out here
		}
		p = next
	}
	return p, k0, true, nil
}

// children returns the distinct next bytes below p, in order, from the
// key k on: the strings the pieces are cut at.
func (pr *prober) children(ctx context.Context, p, k string) ([]string, error) {
	var cuts []string
	for pr.probes < maxProbes && len(k) > len(p) {
		child := p + k[len(p):len(p)+1]
		cuts = append(cuts, child)
		kn, ok, err := pr.first(ctx, child+lastRune)
		if err != nil {
			return nil, err
		}
		if !ok || kn <= k {
			break
		}
		k = kn
	}
	return cuts, nil
}

// group groups the children into about want pieces of r; the first piece
// also takes the keys before the first child (e.g. p itself).
func group(r Range, cuts []string, want int) []Range {
	step := max(1, (len(cuts)+want-1)/want)
	var out []Range
	after := ""
	for i := step; i < len(cuts); i += step {
		through := cuts[i] // the key equal to a cut belongs to the piece before it
		out = append(out, Range{Prefix: r.Prefix, After: after, Through: through})
		after = through
	}
	return append(out, Range{Prefix: r.Prefix, After: after})
}
