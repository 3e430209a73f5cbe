// Package testkit holds what the tests of every package share: waiting for
// a condition, and a buffer that goroutines write while a test reads it.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Eventually calls cond every tick until it returns true, and says whether
// it did before timeout ran out. The last call may come after the deadline,
// so a condition that came true while the caller slept still counts. The
// caller says what failed, with what it saw last.
func Eventually(timeout, tick time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(tick)
	}
	return true
}

// WaitFor is Eventually every 10ms for a test: it ends t with "timed out
// after <timeout> waiting for <what>" if cond does not come true.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Eventually(timeout, 10*time.Millisecond, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// SyncBuffer collects what several goroutines write (a process's log)
// while a test reads it. Its zero value is ready to use.
type SyncBuffer struct {
	// Max, if not zero, bounds the buffer: a write that would take it past
	// Max empties it first, so a test that logs without end (a fuzz
	// target's gateway) does not pay for one ever-growing copy.
	Max int

	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Max > 0 && s.b.Len()+len(p) > s.Max {
		s.b.Reset()
	}
	return s.b.Write(p)
}

// String returns everything written so far (since the last emptying).
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
