package transfer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A multipart copy's checkpoint names the worker copying it (Owner) and
// when that worker last said it was alive (Heartbeat). The worker renews
// it every lease/5 while it copies and gives it up when the copy ends
// without completing; a checkpoint whose owner has not renewed it for a
// whole lease belongs to a dead worker, and any worker may take it over
// (openUpload) and resume from the parts already recorded. The sweeper
// queues such copies (Sweeper.resumeExpired), so that a replica killed in
// the middle of a copy is noticed by its lease, in seconds, rather than
// by the job's ack wait.

// Held reports whether a live worker other than owner holds c at now.
// Giant uploads have no owner: their parts are jobs of their own.
func (c *Checkpoint) Held(owner string, now time.Time, lease time.Duration) bool {
	return c.Owner != "" && c.Owner != owner && now.Sub(c.Heartbeat) < lease
}

// Expired reports whether c was held by a worker that has not renewed its
// lease for lease: a worker that died while copying.
func (c *Checkpoint) Expired(now time.Time, lease time.Duration) bool {
	return !c.Giant && c.Owner != "" && now.Sub(c.Heartbeat) >= lease
}

// heldLease is a lease a copy holds, renewed in the background.
type heldLease struct {
	c    *Copier
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex // guards cp's lease fields and rev
	cp   *Checkpoint
	rev  uint64
}

// holdLease renews this worker's lease on cp (saved at revision rev) every
// lease/5 until end. If another worker has taken the checkpoint over (this
// one could not renew it for a lease, cut off from JetStream, or stalled),
// lost is called with an ErrBusy: the copy must stop, the other worker
// carries on. A renewal that fails for another reason is tried again at
// the next beat.
func (c *Copier) holdLease(ctx context.Context, cp *Checkpoint, rev uint64, lease time.Duration, lost context.CancelCauseFunc) *heldLease {
	h := &heldLease{c: c, stop: make(chan struct{}), done: make(chan struct{}), cp: cp, rev: rev}
	if c.ckpt == nil {
		close(h.done)
		return h
	}
	go func() {
		defer close(h.done)
		t := time.NewTicker(max(lease/5, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := h.renew(ctx, lease); errors.Is(err, ErrCheckpointConflict) {
				lost(fmt.Errorf("%w: lost the lease of the upload to another worker", ErrBusy))
				return
			}
		}
	}()
	return h
}

func (h *heldLease) renew(ctx context.Context, lease time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	hb := h.cp.Heartbeat
	h.cp.Heartbeat = h.c.now()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lease/2)
	defer cancel()
	rev, err := h.c.ckpt.Save(rctx, h.cp, h.rev)
	if err != nil {
		h.cp.Heartbeat = hb
		return err
	}
	h.rev = rev
	return nil
}

// end stops the renewals. With release (the copy ended without completing)
// the lease is given up, so that the job's next attempt, here or on
// another replica, takes the checkpoint over at once.
func (h *heldLease) end(release bool) {
	if h.c.ckpt == nil {
		return
	}
	close(h.stop)
	<-h.done
	if !release {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cp.Owner, h.cp.Heartbeat = "", h.c.now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A conflict means someone else took it over or it is gone
	// (completed, aborted): nothing to give up.
	_, _ = h.c.ckpt.Save(ctx, h.cp, h.rev)
}
