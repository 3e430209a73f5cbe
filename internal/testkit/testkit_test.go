package testkit_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/testkit"
)

func TestEventually(t *testing.T) {
	t.Parallel()
	t.Run("ReturnsTrueOnceTheConditionHolds", func(t *testing.T) {
		t.Parallel()
		calls := 0
		if !testkit.Eventually(time.Minute, time.Millisecond, func() bool { calls++; return calls == 3 }) {
			t.Fatal("gave up on a condition that came true")
		}
		if calls != 3 {
			t.Fatalf("cond called %d times, want 3: polling must stop when it holds", calls)
		}
	})
	t.Run("ReturnsFalseAfterTheTimeout", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		if testkit.Eventually(50*time.Millisecond, 5*time.Millisecond, func() bool { return false }) {
			t.Fatal("a condition that never holds was reported true")
		}
		if waited := time.Since(start); waited < 50*time.Millisecond {
			t.Fatalf("gave up after %s, before the timeout", waited)
		}
	})
	t.Run("LooksOnceMoreAfterTheDeadline", func(t *testing.T) {
		t.Parallel()
		calls := 0
		// The first look fails; the tick sleeps past the deadline; the
		// look after it succeeds and counts.
		if !testkit.Eventually(time.Millisecond, 20*time.Millisecond, func() bool { calls++; return calls == 2 }) {
			t.Fatal("the look after the deadline did not count")
		}
	})
}

func TestWaitForFailsTheTestWithWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() { // Fatalf ends the goroutine, as it ends a test
		defer close(done)
		testkit.WaitFor(ft, 20*time.Millisecond, "the moon", func() bool { return false })
	}()
	<-done
	if want := "timed out after 20ms waiting for the moon"; ft.fatal != want {
		t.Fatalf("Fatalf(%q), want %q", ft.fatal, want)
	}
}

// fakeT records Fatalf instead of failing the test.
type fakeT struct {
	testing.TB
	fatal string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestSyncBuffer(t *testing.T) {
	t.Parallel()
	t.Run("KeepsEveryWriteOfConcurrentWriters", func(t *testing.T) {
		t.Parallel()
		var b testkit.SyncBuffer
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					fmt.Fprint(&b, "x")
					_ = b.String()
				}
			})
		}
		wg.Wait()
		if got := len(b.String()); got != 800 {
			t.Fatalf("%d bytes, want 800", got)
		}
	})
	t.Run("WithMaxStartsAgainRatherThanGrowPastIt", func(t *testing.T) {
		t.Parallel()
		b := testkit.SyncBuffer{Max: 10}
		fmt.Fprint(&b, "0123456")
		fmt.Fprint(&b, "789")
		if got := b.String(); got != "0123456789" {
			t.Fatalf("%q: a write that fits must be kept", got)
		}
		fmt.Fprint(&b, "abc")
		if got := b.String(); got != "abc" {
			t.Fatalf("%q, want only the write past Max", got)
		}
	})
}
