package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// pageLister serves keys in pages of n as a bucket would (the query's
// prefix and start-after honoured), or, with raw set, exactly the pages
// in raw whatever the query: a server that misbehaves.
type pageLister struct {
	keys []string
	n    int
	raw  [][]string
}

func (l *pageLister) List(ctx context.Context, q reconcile.Query, page func([]reconcile.Entry) error) error {
	pages := l.raw
	if pages == nil {
		var sel []string
		for _, k := range l.keys {
			if strings.HasPrefix(k, q.Prefix) && k > q.StartAfter {
				sel = append(sel, k)
			}
		}
		for len(sel) > 0 {
			n := min(l.n, len(sel))
			pages, sel = append(pages, sel[:n]), sel[n:]
		}
	}
	for _, p := range pages {
		es := make([]reconcile.Entry, len(p))
		for i, k := range p {
			es[i] = reconcile.Entry{Key: k, Size: 1}
		}
		if err := page(es); err != nil {
			return err
		}
	}
	return nil
}

// marchLog is a Handler that writes down what the march found.
type marchLog struct{ got []string }

func (m *marchLog) SrcOnly(_ context.Context, e reconcile.Entry) error {
	m.got = append(m.got, "src "+e.Key)
	return nil
}

func (m *marchLog) DstOnly(_ context.Context, e reconcile.Entry) error {
	m.got = append(m.got, "dst "+e.Key)
	return nil
}

func (m *marchLog) Match(_ context.Context, s, _ reconcile.Entry) error {
	m.got = append(m.got, "both "+s.Key)
	return nil
}

// A range with an end, listed in pages smaller than it, sees every key up
// to and including its end and none after, on both sides.
func TestMarchRangeOverManyPages(t *testing.T) {
	t.Parallel()
	var src, dst []string
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		if i%3 != 0 {
			src = append(src, k)
		}
		if i%3 != 1 {
			dst = append(dst, k)
		}
	}
	var want []string
	for i := 5; i <= 15; i++ {
		k := fmt.Sprintf("k%02d", i)
		switch i % 3 {
		case 0:
			want = append(want, "dst "+k)
		case 1:
			want = append(want, "src "+k)
		default:
			want = append(want, "both "+k)
		}
	}
	for _, depth := range []int{0, 1, 3} {
		h := &marchLog{}
		s := reconcile.Sides{Src: &pageLister{keys: src, n: 2}, Dst: &pageLister{keys: dst, n: 3}, Depth: depth}
		if err := reconcile.March(context.Background(), s, reconcile.Range{After: "k04", Through: "k15"}, h); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(h.got, want) {
			t.Fatalf("depth %d: march found\n%v\nwant\n%v", depth, h.got, want)
		}
	}
}

// A listing that breaks its contract stops the march: a key repeated, a
// key not after the range's start, a nested key in a top-level range.
// Empty pages are no breach.
func TestMarchRefusesAListingOutOfOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		rng   reconcile.Range
		pages [][]string
		bad   bool
	}{
		{"InOrderWithEmptyPages", reconcile.Range{Through: "c"}, [][]string{{"a"}, {}, {"b", "c"}, {}, {"d"}}, false},
		{"KeyRepeated", reconcile.Range{}, [][]string{{"a", "b"}, {"b", "c"}}, true},
		{"KeyBackwards", reconcile.Range{}, [][]string{{"b", "a"}}, true},
		{"TheStartKeyItself", reconcile.Range{After: "b"}, [][]string{{"b", "c"}}, true},
		{"AKeyBeforeTheStart", reconcile.Range{After: "b"}, [][]string{{"a", "c"}}, true},
		{"NestedKeyInATopLevelRange", reconcile.Range{Prefix: "p/", Flat: true}, [][]string{{"p/a", "p/b/c"}}, true},
		{"NestedKeyThatIsTheEnd", reconcile.Range{Prefix: "p/", Flat: true, Through: "p/b/c"}, [][]string{{"p/a", "p/b/c"}}, true},
		{"AnotherPrefix", reconcile.Range{Prefix: "p/"}, [][]string{{"p/a", "q/b"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := reconcile.Sides{Src: &pageLister{raw: tc.pages}, Dst: &pageLister{raw: [][]string{}}}
			err := reconcile.March(context.Background(), s, tc.rng, &marchLog{})
			if got := errors.Is(err, reconcile.ErrOutOfOrder); got != tc.bad {
				t.Fatalf("march error %v; want out of order: %v", err, tc.bad)
			}
		})
	}
}

// A range names itself in logs and errors by what bounds it.
func TestMarchRangeString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		r    reconcile.Range
		want string
	}{
		{reconcile.Range{}, `prefix ""`},
		{reconcile.Range{Prefix: "p/", After: "p/a"}, `prefix "p/" after "p/a"`},
		{reconcile.Range{Through: "m"}, `prefix "" through "m"`},
		{reconcile.Range{Prefix: "p/", After: "p/a", Through: "p/m", Flat: true}, `prefix "p/" after "p/a" through "p/m" (top level)`},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}
