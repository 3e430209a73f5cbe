// Package faultset owns the bookkeeping the emulators' fault injection
// shares: a list of injected faults, each used up request by request after
// skipping its first matches, and what every emulator's faults do alike to
// a request (add latency, answer an error status). What else a fault is
// and does stays with each emulator.
package faultset

import (
	"context"
	"sync"
	"time"
)

// Set is a list of faults of type F, safe for concurrent requests.
type Set[F any] struct {
	mu   sync.Mutex
	list []*entry[F]
}

type entry[F any] struct {
	fault     F
	skip      int // matches to let through before the fault applies
	remaining int // applications left; only counted when limited
	limited   bool
}

// Add injects f: it lets its first skip matching requests through, then
// applies to times of them (0: to every one until Clear).
func (s *Set[F]) Add(f F, skip, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, &entry[F]{fault: f, skip: skip, remaining: times, limited: times > 0})
}

// Clear removes every fault.
func (s *Set[F]) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = nil
}

// Take goes through the faults in injection order for one request: a
// fault for which affects reports true (it matches the request and has an
// effect on it) first uses up its skips, then is passed to apply and uses
// up one of its times; a fault with none left is removed.
func (s *Set[F]) Take(affects func(*F) bool, apply func(*F)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.list[:0]
	for _, e := range s.list {
		if !affects(&e.fault) {
			kept = append(kept, e)
			continue
		}
		if e.skip > 0 {
			e.skip--
			kept = append(kept, e)
			continue
		}
		apply(&e.fault)
		if e.limited {
			if e.remaining--; e.remaining <= 0 {
				continue
			}
		}
		kept = append(kept, e)
	}
	clear(s.list[len(kept):])
	s.list = kept
}

// Outcome is what the faults applied to one request do alike in every
// emulator: their latencies add up, and the first status (in injection
// order) is answered, with its error code or "InternalError".
type Outcome struct {
	Status  int
	Code    string
	Latency time.Duration
}

// Add counts one applied fault's status, error code and latency.
func (o *Outcome) Add(status int, code string, latency time.Duration) {
	o.Latency += latency
	if status != 0 && o.Status == 0 {
		o.Status, o.Code = status, code
		if o.Code == "" {
			o.Code = "InternalError"
		}
	}
}

// Wait sleeps the latency, or returns ctx's error if the client leaves
// first.
func (o Outcome) Wait(ctx context.Context) error { return Sleep(ctx, o.Latency) }

// Sleep waits d, or returns ctx's error if the client leaves first.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
