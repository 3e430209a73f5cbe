package reconcile

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
	probes := 0
	first := func(after string) (string, bool, error) {
		probes++
		var k string
		found := false
		err := src.List(ctx, Query{Prefix: r.Prefix, StartAfter: after, Max: 1}, func(es []Entry) error {
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
	k0, ok, err := first("")
	if err != nil || !ok {
		return []Range{r}, err
	}
	// Go down while every key shares the next byte: the last key is
	// found from the end of the key space.
	p := r.Prefix
	for probes < maxProbes {
		if k0 == p {
			// The key equal to the prefix goes to the first piece; the
			// fan-out is in the keys after it.
			if k0, ok, err = first(p); err != nil || !ok {
				return []Range{r}, err
			}
		}
		next := p + k0[len(p):len(p)+1]
		kn, ok, err := first(next + lastRune)
		if err != nil {
			return []Range{r}, err
		}
		if ok && strings.HasPrefix(kn, p) && kn > next+lastRune {
			break // another byte follows p: fan out here
		}
		p = next
	}
	// The distinct next bytes below p, in order.
	var cuts []string
	k := k0
	for probes < maxProbes && len(k) > len(p) {
		child := p + k[len(p):len(p)+1]
		cuts = append(cuts, child)
		kn, ok, err := first(child + lastRune)
		if err != nil {
			return []Range{r}, err
		}
		if !ok || kn <= k {
			break
		}
		k = kn
	}
	if len(cuts) < 2 {
		return []Range{r}, nil
	}
	// Group the children into about want pieces; the first piece also
	// takes the keys before the first child (e.g. p itself).
	step := max(1, (len(cuts)+want-1)/want)
	var out []Range
	after := ""
	for i := step; i < len(cuts); i += step {
		through := cuts[i] // the key equal to a cut belongs to the piece before it
		out = append(out, Range{Prefix: r.Prefix, After: after, Through: through})
		after = through
	}
	out = append(out, Range{Prefix: r.Prefix, After: after})
	return out, nil
}
