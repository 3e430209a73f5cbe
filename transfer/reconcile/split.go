package reconcile

// Split: cutting a range into pieces that list at once, where the
// source's keys fan out.

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// One listing is a chain of requests, each waiting for the last one's
// continuation token, so a single range lists no faster than one request
// at a time. Split cuts a range into pieces that list at once: it finds
// how the source's keys fan out below the range's prefix, with one-key
// probes that skip from each next byte to the one after (a skip scan),
// going down while all keys share one more byte. The pieces are cut at
// strings, ("", b1], (b1, b2], ..., so they cover every key once whatever
// the probes found: a probe that misjudges costs balance, never a key.

// maxProbes bounds the requests one Split makes: at 100-300 ms a request,
// probesAtOnce at a time, a Split takes seconds, a trifle beside the
// hours of listing it spreads over the replicas.
const maxProbes = 1000

// probesAtOnce is how many children are probed at once when a level is
// too coarse: each child's probes are a chain (a skip scan), so a level
// of 13 children took two chains' time, about 1.2 s of a run's start at
// 100 ms a request, with 8 at once.
const probesAtOnce = 32

// lastRune sorts after every key that continues with a valid character.
const lastRune = "\U0010FFFF"

// Split returns up to about want sub-ranges of r (r itself when it cannot
// or need not be cut: a flat range, or a range already bounded). When the
// keys fan out into fewer children than want (keys g0000000-g1999999
// fan out into two, dated keys into a few years), each child is cut
// where its own keys fan out, a level at a time, until there are enough
// pieces or the probes run out.
func Split(ctx context.Context, src Lister, r Range, want int) ([]Range, error) {
	if want < 2 || r.Flat || r.After != "" || r.Through != "" {
		return []Range{r}, nil
	}
	pr := &prober{src: src}
	cuts, err := pr.cutsBelow(ctx, r.Prefix)
	for err == nil && len(cuts) > 0 && len(cuts) < want {
		var finer []string
		if finer, err = pr.refine(ctx, cuts); len(finer) <= len(cuts) {
			break
		}
		cuts = finer
	}
	if err != nil {
		return []Range{r}, err
	}
	if len(cuts) < 2 {
		return []Range{r}, nil
	}
	return group(r, cuts, want), nil
}

// prober asks a lister for one key at a time, counting its requests; it
// is safe for concurrent use.
type prober struct {
	src    Lister
	probes atomic.Int64
}

func (pr *prober) spent() bool { return pr.probes.Load() >= maxProbes }

// cutsBelow returns the children of the point where the keys below
// prefix fan out (none if there are no keys).
func (pr *prober) cutsBelow(ctx context.Context, prefix string) ([]string, error) {
	p, k0, ok, err := pr.fanOut(ctx, prefix)
	if err != nil || !ok {
		return nil, err
	}
	return pr.children(ctx, prefix, p, k0)
}

// refine replaces each child by its own children, where it has two or
// more, probing several children at once. The result is still in order:
// every string below a child sorts between it and the next child.
func (pr *prober) refine(ctx context.Context, cuts []string) ([]string, error) {
	below := make([][]string, len(cuts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(probesAtOnce)
	for i, c := range cuts {
		g.Go(func() error {
			if pr.spent() {
				return nil
			}
			sub, err := pr.cutsBelow(gctx, c)
			if len(sub) >= 2 {
				below[i] = sub
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []string
	for i, c := range cuts {
		if below[i] == nil {
			out = append(out, c)
			continue
		}
		out = append(out, below[i]...)
	}
	return out, nil
}

// first returns the first key below prefix after after.
func (pr *prober) first(ctx context.Context, prefix, after string) (string, bool, error) {
	pr.probes.Add(1)
	var k string
	found := false
	err := pr.src.List(ctx, Query{Prefix: prefix, StartAfter: after, Max: 1}, func(es []Entry) error {
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

// fanOut goes down from prefix while every key below it shares the next
// byte (the last key is found from the end of the key space), and returns
// where the keys fan out, p, with the first key below it, k0; not ok if
// there are no keys.
func (pr *prober) fanOut(ctx context.Context, prefix string) (p, k0 string, ok bool, err error) {
	if k0, ok, err = pr.first(ctx, prefix, ""); err != nil || !ok {
		return "", "", false, err
	}
	p = prefix
	for !pr.spent() {
		if k0 == p {
			// The key equal to the prefix goes to the first piece; the
			// fan-out is in the keys after it.
			if k0, ok, err = pr.first(ctx, prefix, p); err != nil || !ok {
				return "", "", false, err
			}
		}
		next := p + k0[len(p):len(p)+1]
		kn, found, err := pr.first(ctx, prefix, next+lastRune)
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

// children returns the distinct next bytes below p (where the keys below
// prefix fan out), in order, from the key k on: the strings the pieces
// are cut at.
func (pr *prober) children(ctx context.Context, prefix, p, k string) ([]string, error) {
	var cuts []string
	for !pr.spent() && len(k) > len(p) {
		child := p + k[len(p):len(p)+1]
		cuts = append(cuts, child)
		kn, ok, err := pr.first(ctx, prefix, child+lastRune)
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

// group groups the children into want pieces of r (one a child, if there
// are fewer), as many children to each as can be: 20 children make 8
// pieces of 2 or 3, not 7 of 3. The first piece also takes the keys
// before the first child (e.g. p itself).
func group(r Range, cuts []string, want int) []Range {
	n := min(want, len(cuts))
	out := make([]Range, 0, n)
	after := ""
	for i := 1; i < n; i++ {
		through := cuts[i*len(cuts)/n] // the key equal to a cut belongs to the piece before it
		out = append(out, Range{Prefix: r.Prefix, After: after, Through: through})
		after = through
	}
	return append(out, Range{Prefix: r.Prefix, After: after})
}
