package ingest

import (
	"testing"
	"time"
)

// Every context ends no sooner than the timeout after it was asked for,
// and no later than one slice after that; requests in one slice share it.
func TestPublishDeadlines(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	d := newPublishDeadlines(timeout)
	if d.slice != 2*time.Millisecond {
		t.Fatalf("slice %v, want 2ms", d.slice)
	}
	for range 50 {
		before := time.Now()
		ctx := d.context()
		after := time.Now()
		dl, ok := ctx.Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		if dl.Before(before.Add(timeout)) || dl.After(after.Add(timeout+d.slice)) {
			t.Fatalf("deadline %v after the call returned, %v after it began: want between %v and %v", dl.Sub(after), dl.Sub(before), timeout, timeout+d.slice)
		}
		time.Sleep(time.Millisecond / 2)
	}
	first := d.context()
	if d.context() != first {
		// Two calls this close can straddle a slice's end; a third cannot
		// be in a third slice as well.
		if d.context() != d.context() {
			t.Fatal("calls within one slice got different contexts")
		}
	}
	time.Sleep(d.slice)
	if d.context() == first {
		t.Fatal("a call after the slice got its context")
	}
	select {
	case <-first.Done():
	case <-time.After(timeout + d.slice + time.Second):
		t.Fatal("context never ended")
	}
}
