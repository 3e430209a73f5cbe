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

// TestOutcomeAddsLatenciesAndKeepsTheFirstStatus: the faults applied to one
// request add their latencies; the first with a status decides the answer,
// "InternalError" when it names no code.
func TestOutcomeAddsLatenciesAndKeepsTheFirstStatus(t *testing.T) {
	t.Parallel()
	var o Outcome
	o.Add(0, "", time.Second)
	o.Add(503, "", 2*time.Second)
	o.Add(403, "AccessDenied", 0)
	if want := (Outcome{Status: 503, Code: "InternalError", Latency: 3 * time.Second}); o != want {
		t.Fatalf("%+v, want %+v", o, want)
	}
	var coded Outcome
	coded.Add(403, "AccessDenied", 0)
	if coded.Code != "AccessDenied" {
		t.Fatalf("code %q, want the fault's own", coded.Code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := o.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
}
