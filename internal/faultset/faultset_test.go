package faultset

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSkipThenTimes: a fault lets its first matches through, applies to
// its count of them, then is gone; one without a count stays.
func TestSkipThenTimes(t *testing.T) {
	t.Parallel()
	var s Set[string]
	s.Add("limited", 2, 3)
	s.Add("forever", 0, 0)
	var got []string
	for range 7 {
		s.Take(func(*string) bool { return true }, func(f *string) { got = append(got, *f) })
	}
	limited := 0
	for _, f := range got {
		if f == "limited" {
			limited++
		}
	}
	if limited != 3 || len(got)-limited != 7 {
		t.Fatalf("applied %v: want limited 3 times (after 2 skips), forever 7", got)
	}
	if len(s.list) != 1 {
		t.Fatalf("%d faults left, want the unlimited one", len(s.list))
	}
	n := 0
	s.Take(func(*string) bool { return false }, func(*string) { n++ })
	s.Clear()
	s.Take(func(*string) bool { return true }, func(*string) { n++ })
	if n != 0 {
		t.Fatalf("applied %d times to requests it does not affect or after Clear", n)
	}
}

func TestSleepEndsWhenTheClientLeaves(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
}
