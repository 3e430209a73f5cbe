package transfer_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

func TestRouter(t *testing.T) {
	t.Parallel()
	r := transfer.NewRouter([]*transfer.Task{
		{Name: "photos", Source: transfer.SourceConfig{Bucket: "b", Prefixes: []string{"photos/", "img/"}, Suffixes: []string{".jpg", ".png"}}},
		{Name: "all-of-b", Source: transfer.SourceConfig{Bucket: "b"}},
		{Name: "logs", Source: transfer.SourceConfig{Bucket: "c", Prefixes: []string{"logs/"}}},
		{Name: "many", Source: transfer.SourceConfig{Bucket: "e", Prefixes: manyPrefixes(1000)}},
	})
	for _, tc := range []struct {
		bucket, key string
		want        []string
	}{
		{"b", "photos/cat.jpg", []string{"photos", "all-of-b"}},
		{"b", "img/x.png", []string{"photos", "all-of-b"}},
		{"b", "photos/readme.txt", []string{"all-of-b"}},
		{"b", "docs/cat.jpg", []string{"all-of-b"}},
		{"c", "logs/a", []string{"logs"}},
		{"c", "logs/", []string{"logs"}}, // a key that is the prefix itself
		{"c", "logs", nil},
		{"c", "other/a", nil},
		{"d", "logs/a", nil},
		{"e", "p/0999/x", []string{"many"}},
		{"e", "p/1000/x", nil},
	} {
		if got := r.Route(tc.bucket, tc.key); !slices.Equal(got, tc.want) {
			t.Errorf("Route(%s, %s) = %v, want %v", tc.bucket, tc.key, got, tc.want)
		}
	}
}

// TestRouteOneTaskAllocatesNothing: the usual answer, one task, is a slice
// shared by every call; answers of several tasks are each their own, so a
// caller that kept one never sees it change.
func TestRouteOneTaskAllocatesNothing(t *testing.T) {
	r := transfer.NewRouter([]*transfer.Task{
		{Name: "first", Source: transfer.SourceConfig{Bucket: "b", Prefixes: []string{"x/"}}},
		{Name: "second", Source: transfer.SourceConfig{Bucket: "b"}},
		{Name: "third", Source: transfer.SourceConfig{Bucket: "b", Suffixes: []string{".jpg"}}},
	})
	if n := testing.AllocsPerRun(100, func() { r.Route("b", "y/a") }); n != 0 {
		t.Errorf("one task: %v allocations per Route, want 0", n)
	}
	all := r.Route("b", "x/a.jpg")
	two := r.Route("b", "x/a")
	one := r.Route("b", "y/a")
	if !slices.Equal(all, []string{"first", "second", "third"}) || !slices.Equal(two, []string{"first", "second"}) || !slices.Equal(one, []string{"second"}) {
		t.Errorf("got %v, %v, %v", all, two, one)
	}
}

func manyPrefixes(n int) []string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("p/%04d/", i)
	}
	return p
}

func BenchmarkRouteWithThousandsOfPrefixes(b *testing.B) {
	r := transfer.NewRouter([]*transfer.Task{{Name: "many", Source: transfer.SourceConfig{Bucket: "e", Prefixes: manyPrefixes(5000)}}})
	for b.Loop() {
		if r.Route("e", "p/4999/some/key.jpg") == nil {
			b.Fatal("not routed")
		}
	}
}
