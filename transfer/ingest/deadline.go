package ingest

import (
	"context"
	"sync/atomic"
	"time"
)

// publishDeadlines hands out the contexts that bound how long a request
// waits for JetStream to store its jobs. Requests that start within the
// same slice of time (a hundredth of the timeout) share one context, so
// the hot path makes no context or timer of its own: a context.WithTimeout
// per request, linked to the request's, and its cancel were 2.4% of the
// gateway's CPU at full rate. A wait is bounded by the timeout plus at most one slice.
//
// The contexts do not end when a client goes away: the request still
// waits for the acknowledgements it asked for, which takes no longer than
// its publish would anyway, and its answer then goes nowhere.
type publishDeadlines struct {
	timeout, slice time.Duration
	cur            atomic.Pointer[deadlineSlice]
}

type deadlineSlice struct {
	until  time.Time // requests starting before this share ctx
	ctx    context.Context
	cancel context.CancelFunc // never called: the slice's timer ends ctx
}

func newPublishDeadlines(timeout time.Duration) *publishDeadlines {
	return &publishDeadlines{timeout: timeout, slice: max(timeout/100, time.Millisecond)}
}

// context returns a context that ends no sooner than the timeout from now.
func (d *publishDeadlines) context() context.Context {
	now := time.Now()
	if s := d.cur.Load(); s != nil && now.Before(s.until) {
		return s.ctx
	}
	s := &deadlineSlice{until: now.Add(d.slice)}
	s.ctx, s.cancel = context.WithDeadline(context.Background(), s.until.Add(d.timeout)) //nolint:gosec // G118: kept in the slice; its deadline ends it (see deadlineSlice.cancel)
	d.cur.Store(s)
	return s.ctx
}
