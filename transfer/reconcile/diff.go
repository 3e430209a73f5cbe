package reconcile

// Diff: one diff of one task (what it needs, what it counts) and its
// entry points, Run and RunRange.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// Publisher durably queues copy jobs (transfer.Queue).
type Publisher interface {
	Publish(ctx context.Context, jobs []transfer.Job) (transfer.PublishResult, error)
}

// Opener streams a destination object, for verify: content.
type Opener interface {
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// Progress counts what a run found and did. Every field is updated
// atomically while the run goes on.
type Progress struct {
	Listed     atomic.Int64 // source objects listed
	DstListed  atomic.Int64 // destination objects listed
	Missing    atomic.Int64
	Different  atomic.Int64
	Extraneous atomic.Int64
	Queued     atomic.Int64
	Deleted    atomic.Int64
	Heads      atomic.Int64 // destination HEADs the listing could not spare
	Errors     atomic.Int64
	// ListedBytes and QueuedBytes are the sizes of the source objects
	// listed and of those queued for a copy (a run's progress in bytes).
	ListedBytes atomic.Int64
	QueuedBytes atomic.Int64
}

// Counts is a snapshot of Progress.
type Counts struct {
	Listed     int64 `json:"listed"`
	DstListed  int64 `json:"dst_listed"`
	Missing    int64 `json:"missing"`
	Different  int64 `json:"different"`
	Extraneous int64 `json:"extraneous"`
	Queued     int64 `json:"queued"`
	Deleted    int64 `json:"deleted"`
	Heads      int64 `json:"heads"`
	Errors     int64 `json:"errors"`
	// ListedBytes and QueuedBytes: see Progress.
	ListedBytes int64 `json:"listed_bytes"`
	QueuedBytes int64 `json:"queued_bytes"`
}

// Restore sets the counters to c (a shard resumed from its checkpoint).
func (p *Progress) Restore(c Counts) {
	p.Listed.Store(c.Listed)
	p.DstListed.Store(c.DstListed)
	p.Missing.Store(c.Missing)
	p.Different.Store(c.Different)
	p.Extraneous.Store(c.Extraneous)
	p.Queued.Store(c.Queued)
	p.Deleted.Store(c.Deleted)
	p.Heads.Store(c.Heads)
	p.Errors.Store(c.Errors)
	p.ListedBytes.Store(c.ListedBytes)
	p.QueuedBytes.Store(c.QueuedBytes)
}

// Snapshot reads the counters.
func (p *Progress) Snapshot() Counts {
	return Counts{Listed: p.Listed.Load(), DstListed: p.DstListed.Load(), Missing: p.Missing.Load(),
		Different: p.Different.Load(), Extraneous: p.Extraneous.Load(), Queued: p.Queued.Load(),
		Deleted: p.Deleted.Load(), Heads: p.Heads.Load(), Errors: p.Errors.Load(),
		ListedBytes: p.ListedBytes.Load(), QueuedBytes: p.QueuedBytes.Load()}
}

// Add sums two snapshots.
func (c Counts) Add(o Counts) Counts {
	return Counts{Listed: c.Listed + o.Listed, DstListed: c.DstListed + o.DstListed, Missing: c.Missing + o.Missing,
		Different: c.Different + o.Different, Extraneous: c.Extraneous + o.Extraneous, Queued: c.Queued + o.Queued,
		Deleted: c.Deleted + o.Deleted, Heads: c.Heads + o.Heads, Errors: c.Errors + o.Errors,
		ListedBytes: c.ListedBytes + o.ListedBytes, QueuedBytes: c.QueuedBytes + o.QueuedBytes}
}

// ReportLine is one line of a run's report (JSON lines): an object that
// differs, and what the run did about it.
type ReportLine struct {
	Key    string `json:"key"`
	Result string `json:"result"` // missing, different, extraneous, deleted, error
	Why    string `json:"why,omitempty"`
	Src    *Entry `json:"src,omitempty"`
	Dst    *Entry `json:"dst,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Reporter takes report lines; it must be safe for concurrent use.
type Reporter interface {
	Report(ctx context.Context, l ReportLine) error
}

// Diff is everything one run of one task needs.
type Diff struct {
	Task        *transfer.Task
	Src, Dst    Lister
	Source      transfer.Source      // for verify: content; may be nil
	Destination transfer.Destination // HEADs and sync's deletes
	DstOpener   Opener               // for verify: content; may be nil
	Queue       Publisher            // nil only in report mode
	Report      Reporter             // may be nil
	Metrics     *metrics.Metrics     // may be nil
	Log         *slog.Logger
	RunID       string
	Options     Options
	Progress    *Progress

	// OnCheckpoint, if set, is called by RunRange's march between two
	// keys, every CheckpointKeys keys or CheckpointEvery, whichever comes
	// first (either <= 0 is never), once every key of the range through
	// cp.Key is fully handled: both sides compared (its HEAD, if any,
	// done), its report lines handed to Report and its copy jobs
	// acknowledged by the queue. An error stops the march.
	OnCheckpoint    func(ctx context.Context, cp Checkpoint) error
	CheckpointKeys  int
	CheckpointEvery time.Duration
}

// Checkpoint is how far a march got: a range listed again after Key (on
// both sides) and counted from Counts ends as if it had never stopped.
type Checkpoint struct {
	Key    string
	Counts Counts
	// Extraneous is the range's destination-only keys so far (sync).
	Extraneous []string
}

// Run diffs every range and acts as the mode says, Parallel ranges at a
// time (a single range is first split, see Split). Deletes (sync) happen
// only after every range was listed without an error.
func (d *Diff) Run(ctx context.Context, ranges []Range) error {
	r, err := d.start()
	if err != nil {
		return err
	}
	if n := r.opts.Parallel; n > 1 && len(ranges) < n {
		var pieces []Range
		for _, rg := range ranges {
			ps, serr := Split(ctx, d.Src, rg, 2*n)
			if serr != nil {
				err = serr
				break
			}
			pieces = append(pieces, ps...)
		}
		ranges = pieces
	}
	if err == nil {
		err = r.marchAll(ctx, ranges)
	}
	if ferr := r.finish(ctx); err == nil {
		err = ferr
	}
	if err == nil {
		err = r.deletes(ctx)
	}
	return err
}

// marchAll marches the ranges, Parallel at a time; the first error stops
// the others.
func (r *runner) marchAll(ctx context.Context, ranges []Range) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan Range)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(r.opts.Parallel, len(ranges)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rg := range next {
				if err := r.march(ctx, rg); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, rg := range ranges {
		select {
		case next <- rg:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// RunRange diffs one range (a shard) without deleting anything, and
// returns the destination-only keys a sync may delete (at most cap+1 of
// them: more than cap already means none will be).
func (d *Diff) RunRange(ctx context.Context, rg Range) ([]string, error) {
	r, err := d.start()
	if err != nil {
		return nil, err
	}
	err = r.march(ctx, rg)
	if ferr := r.finish(ctx); err == nil {
		err = ferr
	}
	return r.extraneous, err
}

// DeleteExtraneous deletes the destination copies of keys (source keys),
// unless there are more than maxDeletes of them: then it deletes none.
func DeleteExtraneous(ctx context.Context, d *Diff, keys []string, maxDeletes int) error {
	if d.Progress == nil {
		d.Progress = &Progress{}
	}
	if len(keys) > maxDeletes {
		return fmt.Errorf("%w: more than %d destination-only objects", ErrDeleteCap, maxDeletes)
	}
	for _, k := range keys {
		dstKey := d.Task.DestinationKey(k)
		if err := d.Destination.Delete(ctx, dstKey); err != nil && !errors.Is(err, transfer.ErrNotFound) {
			d.Progress.Errors.Add(1)
			return fmt.Errorf("sync delete: %w", err)
		}
		d.Progress.Deleted.Add(1)
		if d.Metrics != nil {
			d.Metrics.ReconcileObjects.WithLabelValues(d.Task.Name, metrics.ReconcileDeleted).Inc()
		}
		if d.Report != nil {
			if err := d.Report.Report(ctx, ReportLine{Key: k, Result: metrics.ReconcileDeleted}); err != nil {
				return err
			}
		}
		if d.Log != nil {
			d.Log.Info("sync: destination-only object deleted", "task", d.Task.Name, "key", k, "dst_key", dstKey, "run", d.RunID)
		}
	}
	return nil
}
