package ossemu

import (
	"slices"
	"sort"
	"strings"
	"testing"
)

// Every way into a generated listing (start-after any entry, a prefix,
// any page size) gives the same keys, in byte order, as the full list.
func TestGeneratedWalk(t *testing.T) {
	g := &generated{Generated: Generated{Count: 1234, Missing: 3, Different: 2, Extra: 5}}
	var all []string
	for after := ""; ; {
		es, more := g.walk("", after, 97)
		for _, e := range es {
			all = append(all, e.key)
		}
		if !more {
			break
		}
		after = es[len(es)-1].key
	}
	if !sort.StringsAreSorted(all) || len(slices.Compact(slices.Clone(all))) != len(all) {
		t.Fatal("keys not strictly increasing")
	}
	base, extra := 0, 0
	for _, k := range all {
		if strings.HasSuffix(k, "x") {
			extra++
		} else {
			base++
		}
	}
	// i%100 < 3 is missing: 13 runs of 3 in 0..1233; i%100 in [5,10) has
	// an extra key: 13 runs of 5.
	if base != 1234-39 || extra != 65 {
		t.Errorf("%d base and %d extra keys, want 1195 and 65", base, extra)
	}
	for _, k := range all {
		o := g.find(k)
		if o == nil || o.info.Key != k {
			t.Fatalf("find(%q) = %v", k, o)
		}
	}
	for _, k := range []string{GeneratedKey(0), GeneratedKey(1) + "x", GeneratedKey(1234), "g1", "h00000000005", GeneratedKey(5) + "y"} {
		if o := g.find(k); o != nil {
			t.Errorf("find(%q) = %+v, want nil", k, o.info)
		}
	}
	for _, i := range []int{0, 1, 2, 3, 7, 100, len(all) - 2} {
		es, _ := g.walk("", all[i], 5)
		if len(es) == 0 || es[0].key != all[i+1] {
			t.Fatalf("start-after %q: got %v, want %q first", all[i], es, all[i+1])
		}
	}
	es, more := g.walk(GeneratedKey(12)[:len(GeneratedKey(12))-1], "", 1000)
	if more || len(es) != 10 || es[0].key != GeneratedKey(10) {
		t.Fatalf("prefix listing: %d entries, more %v, first %v", len(es), more, es)
	}
	for _, e := range es {
		if !strings.HasPrefix(e.key, GeneratedKey(10)[:len(GeneratedKey(10))-1]) {
			t.Fatalf("prefix listing returned %q", e.key)
		}
	}
}
