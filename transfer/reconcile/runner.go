package reconcile

// Runner: the march's handler, which counts, reports and queues what
// differs and checkpoints how far it got.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

type runner struct {
	*Diff
	opts  Options
	cmp   CompareOptions
	keep  func(string) bool
	prog  *Progress
	log   *slog.Logger
	nonce string

	checks chan Entry2
	wg     sync.WaitGroup
	// pending counts the pairs handed to the checkers and not yet
	// decided; only the march adds to it, and it waits for zero at a
	// checkpoint.
	pending sync.WaitGroup
	sinceCP int       // keys handled since the last checkpoint
	lastCP  time.Time // when it was

	mu         sync.Mutex
	batch      []transfer.Job
	extraneous []string
	firstErr   error
}

// Entry2 is a pair the listing could not decide.
type Entry2 struct{ Src, Dst Entry }

func (d *Diff) start() (*runner, error) {
	o := d.Options.withDefaults()
	if !ValidMode(o.Mode) {
		return nil, fmt.Errorf("mode %q: want report, copy, sync or copy_all", o.Mode)
	}
	if !ValidVerify(o.Verify) {
		return nil, fmt.Errorf("verify %q: want size, etag or content", o.Verify)
	}
	if o.Mode != ModeReport && d.Queue == nil {
		return nil, fmt.Errorf("mode %s queues copies: no queue", o.Mode)
	}
	if d.Progress == nil {
		d.Progress = &Progress{}
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &runner{Diff: d, opts: o, prog: d.Progress, nonce: "reconcile-" + d.RunID,
		log:    log.With("task", d.Task.Name, "run", d.RunID, "mode", o.Mode),
		checks: make(chan Entry2, 4*o.Checkers),
		cmp:    CompareOptions{Verify: o.Verify, ETagsNotMD5: strings.EqualFold(d.Task.Destination.SSE, "aws:kms")},
		lastCP: time.Now(),
	}
	if sfx := d.Task.Source.Suffixes; len(sfx) > 0 {
		r.keep = func(k string) bool {
			for _, s := range sfx {
				if strings.HasSuffix(k, s) {
					return true
				}
			}
			return false
		}
	}
	for range o.Checkers {
		r.wg.Add(1)
		// The checks finish on their own once the march stops feeding
		// them; each request has its own timeout.
		go r.checker(context.Background())
	}
	return r, nil
}

func (r *runner) march(ctx context.Context, rg Range) error {
	err := March(ctx, Sides{Src: r.Src, Dst: r.Dst, DstPrefix: r.Task.Destination.Prefix, Keep: r.keep}, rg, r)
	if err != nil {
		r.prog.Errors.Add(1)
		r.log.Error("reconcile listing failed: run stops, nothing deleted", "range", rg.String(), "err", err)
	}
	return err
}

// finish waits for the checks and flushes the last jobs.
func (r *runner) finish(ctx context.Context) error {
	close(r.checks)
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.flushLocked(ctx); err != nil && r.firstErr == nil {
		r.firstErr = err
	}
	return r.firstErr
}

func (r *runner) count(result string, n int64) {
	if r.Metrics != nil && n > 0 {
		r.Metrics.ReconcileObjects.WithLabelValues(r.Task.Name, result).Add(float64(n))
	}
}

func (r *runner) report(ctx context.Context, l ReportLine) {
	if r.Report == nil {
		return
	}
	if err := r.Report.Report(ctx, l); err != nil {
		r.fail(fmt.Errorf("write report: %w", err))
	}
}

func (r *runner) fail(err error) {
	r.prog.Errors.Add(1)
	r.mu.Lock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.mu.Unlock()
}

// SrcOnly implements Handler.
func (r *runner) SrcOnly(ctx context.Context, src Entry) error {
	r.prog.Listed.Add(1)
	r.prog.ListedBytes.Add(src.Size)
	r.count(metrics.ReconcileListed, 1)
	r.prog.Missing.Add(1)
	r.count(metrics.ReconcileMissing, 1)
	r.report(ctx, ReportLine{Key: src.Key, Result: metrics.ReconcileMissing, Src: &src})
	if err := r.queue(ctx, src); err != nil {
		return err
	}
	return r.handled(ctx, src.Key)
}

// DstOnly implements Handler.
func (r *runner) DstOnly(ctx context.Context, dst Entry) error {
	r.prog.DstListed.Add(1)
	r.prog.Extraneous.Add(1)
	r.count(metrics.ReconcileExtraneous, 1)
	r.report(ctx, ReportLine{Key: dst.Key, Result: metrics.ReconcileExtraneous, Dst: &dst})
	if r.opts.Mode == ModeSync {
		r.mu.Lock()
		if len(r.extraneous) <= r.opts.MaxDeletes {
			r.extraneous = append(r.extraneous, dst.Key)
		}
		r.mu.Unlock()
	}
	if err := r.err(); err != nil {
		return err
	}
	return r.handled(ctx, dst.Key)
}

// Match implements Handler.
func (r *runner) Match(ctx context.Context, src, dst Entry) error {
	if err := r.match(ctx, src, dst); err != nil {
		return err
	}
	return r.handled(ctx, src.Key)
}

func (r *runner) match(ctx context.Context, src, dst Entry) error {
	r.prog.Listed.Add(1)
	r.prog.ListedBytes.Add(src.Size)
	r.prog.DstListed.Add(1)
	r.count(metrics.ReconcileListed, 1)
	if r.opts.Mode == ModeCopyAll {
		return r.queue(ctx, src)
	}
	v, why := Compare(src, dst, r.cmp)
	switch v {
	case Same:
		return r.err()
	case Different:
		return r.different(ctx, src, dst, why)
	}
	r.pending.Add(1)
	select {
	case r.checks <- Entry2{src, dst}:
	case <-ctx.Done():
		r.pending.Done()
		return ctx.Err()
	}
	return r.err()
}

// handled is called by the march after each key it handed over: every so
// often it waits until every key through key is fully handled (the
// pending checks decided, the jobs queued and acknowledged) and tells
// OnCheckpoint. The march waits meanwhile, so nothing is added behind it.
func (r *runner) handled(ctx context.Context, key string) error {
	if r.OnCheckpoint == nil {
		return nil
	}
	r.sinceCP++
	if (r.CheckpointKeys <= 0 || r.sinceCP < r.CheckpointKeys) &&
		(r.CheckpointEvery <= 0 || time.Since(r.lastCP) < r.CheckpointEvery) {
		return nil
	}
	r.pending.Wait()
	r.mu.Lock()
	if err := r.flushLocked(ctx); err != nil && r.firstErr == nil {
		r.firstErr = err
	}
	err := r.firstErr
	ex := slices.Clone(r.extraneous)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if err := r.OnCheckpoint(ctx, Checkpoint{Key: key, Counts: r.prog.Snapshot(), Extraneous: ex}); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	r.sinceCP, r.lastCP = 0, time.Now()
	return nil
}

func (r *runner) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstErr
}

func (r *runner) different(ctx context.Context, src, dst Entry, why string) error {
	r.prog.Different.Add(1)
	r.count(metrics.ReconcileDifferent, 1)
	r.report(ctx, ReportLine{Key: src.Key, Result: metrics.ReconcileDifferent, Why: why, Src: &src, Dst: &dst})
	return r.queue(ctx, src)
}

// queue adds a copy job for src (not in report mode), publishing in batches.
func (r *runner) queue(ctx context.Context, src Entry) error {
	if r.opts.Mode == ModeReport {
		return r.err()
	}
	j := transfer.Job{
		Task:       r.Task.Name,
		Kind:       transfer.KindConverge,
		Origin:     "reconcile",
		Nonce:      r.nonce,
		ObjectArgs: transfer.ObjectArgs{Bucket: r.Task.Source.Bucket, Key: src.Key, ETag: src.ETag, Size: src.Size, Force: r.opts.Mode == ModeCopyAll},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batch = append(r.batch, j)
	if len(r.batch) >= 1000 {
		if err := r.flushLocked(ctx); err != nil && r.firstErr == nil {
			r.firstErr = err
		}
	}
	return r.firstErr
}

func (r *runner) flushLocked(ctx context.Context) error {
	if len(r.batch) == 0 {
		return nil
	}
	res, err := r.Queue.Publish(ctx, r.batch)
	n := int64(res.Queued + res.Duplicate)
	r.prog.Queued.Add(n)
	r.prog.QueuedBytes.Add(queuedBytes(r.batch, res, err))
	r.count(metrics.ReconcileQueued, int64(res.Queued))
	r.batch = r.batch[:0]
	if err != nil {
		return fmt.Errorf("queue copies: %w", err)
	}
	return nil
}

// deletes removes the destination-only objects of a clean sync run.
func (r *runner) deletes(ctx context.Context) error {
	if r.opts.Mode != ModeSync {
		return nil
	}
	return DeleteExtraneous(ctx, r.Diff, r.extraneous, r.opts.MaxDeletes)
}

// queuedBytes is the size of the jobs of batch that are queued, new or
// already there, as Queued counts them: the whole batch when the publish
// succeeded; after an error, those stored new (the duplicates are not told
// apart from the jobs not stored then, and are left out).
func queuedBytes(batch []transfer.Job, res transfer.PublishResult, err error) int64 {
	var n int64
	for i, j := range batch {
		if err == nil || res.IsQueued(i) {
			n += j.Size
		}
	}
	return n
}
