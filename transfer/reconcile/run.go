package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/crc64ecma"
)

// Modes of a run.
const (
	ModeReport  = "report"   // a dry run: what differs, nothing queued or deleted
	ModeCopy    = "copy"     // queue copies of what is missing or different (the default)
	ModeSync    = "sync"     // copy, and delete destination-only objects (capped)
	ModeCopyAll = "copy_all" // queue every source object, compared or not
)

// ValidMode reports whether m names a mode ("" is the default, copy).
func ValidMode(m string) bool {
	switch m {
	case "", ModeReport, ModeCopy, ModeSync, ModeCopyAll:
		return true
	}
	return false
}

// ValidVerify reports whether v names a verify setting ("" is etag).
func ValidVerify(v string) bool {
	switch v {
	case "", VerifySize, VerifyETag, VerifyContent:
		return true
	}
	return false
}

// DefaultMaxDeletes caps the deletes of one sync run when the task sets no cap.
const DefaultMaxDeletes = 1000

// ErrDeleteCap means a sync run found more destination-only objects than its
// cap allows: it deletes none of them (a diff that wants to delete that much
// more likely lists the wrong prefix, or an empty source, than it is right).
var ErrDeleteCap = errors.New("delete cap hit: nothing deleted")

// Options shape one run.
type Options struct {
	Mode       string   `json:"mode,omitempty"`
	Verify     string   `json:"verify,omitempty"`
	MaxDeletes int      `json:"max_deletes,omitempty"`
	Prefixes   []string `json:"prefixes,omitempty"` // instead of the task's
	// Checkers is how many HEADs (or content reads) run at once for the
	// objects the listing cannot decide (default 16).
	Checkers int `json:"-"`
	// Parallel is how many ranges Run lists at once (default 4); a run of
	// fewer ranges splits them first.
	Parallel int `json:"-"`
}

// Ranges are the key ranges a run of task diffs: the run's prefixes if it
// names any, else the task's (none: the whole bucket).
func (o Options) Ranges(task *transfer.Task) []Range {
	if len(o.Prefixes) > 0 {
		return Ranges(o.Prefixes)
	}
	return Ranges(task.Source.Prefixes)
}

func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = ModeCopy
	}
	if o.Verify == "" {
		o.Verify = VerifyETag
	}
	if o.MaxDeletes <= 0 {
		o.MaxDeletes = DefaultMaxDeletes
	}
	if o.Checkers <= 0 {
		o.Checkers = 16
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	return o
}

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
}

// Snapshot reads the counters.
func (p *Progress) Snapshot() Counts {
	return Counts{Listed: p.Listed.Load(), DstListed: p.DstListed.Load(), Missing: p.Missing.Load(),
		Different: p.Different.Load(), Extraneous: p.Extraneous.Load(), Queued: p.Queued.Load(),
		Deleted: p.Deleted.Load(), Heads: p.Heads.Load(), Errors: p.Errors.Load()}
}

// Add sums two snapshots.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.Listed + o.Listed, c.DstListed + o.DstListed, c.Missing + o.Missing, c.Different + o.Different,
		c.Extraneous + o.Extraneous, c.Queued + o.Queued, c.Deleted + o.Deleted, c.Heads + o.Heads, c.Errors + o.Errors}
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

const checkTimeout = 5 * time.Minute

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

// checker HEADs (or reads) the pairs the listing could not decide.
func (r *runner) checker(ctx context.Context) {
	defer r.wg.Done()
	for p := range r.checks {
		r.checkOne(ctx, p)
		r.pending.Done()
	}
}

func (r *runner) checkOne(ctx context.Context, p Entry2) {
	if r.err() != nil {
		return // the run failed: drain
	}
	v, why, err := r.check(ctx, p)
	if err != nil {
		r.prog.Errors.Add(1)
		r.log.Warn("reconcile check failed", "key", p.Src.Key, "err", err)
		r.report(ctx, ReportLine{Key: p.Src.Key, Result: "error", Error: err.Error(), Src: &p.Src, Dst: &p.Dst})
		return
	}
	if v == Different {
		_ = r.different(ctx, p.Src, p.Dst, why)
	}
}

func (r *runner) check(ctx context.Context, p Entry2) (Verdict, string, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	r.prog.Heads.Add(1)
	dstKey := r.Task.DestinationKey(p.Src.Key)
	head, err := r.Destination.Head(ctx, dstKey)
	if errors.Is(err, transfer.ErrNotFound) {
		return Different, "gone from the destination since the listing", nil
	}
	if err != nil {
		return 0, "", err
	}
	srcCRC := ""
	if head.Meta[transfer.MetaSourceCRC64] != "" && r.Source != nil && !IsPlainMD5(p.Src.ETag) {
		// Multipart source ETags can repeat for different content only
		// with the same part layout; the CRC-64 settles it.
		if info, err := r.Source.Head(ctx, p.Src.Key); err == nil && info.ETag == p.Src.ETag {
			srcCRC = crcString(info)
		}
	}
	v, why := Decide(p.Src, srcCRC, head, r.cmp)
	if v != NeedContent {
		return v, why, nil
	}
	return r.compareContent(ctx, p.Src, dstKey)
}

// compareContent reads both objects and compares their CRC-64s.
func (r *runner) compareContent(ctx context.Context, src Entry, dstKey string) (Verdict, string, error) {
	if r.Source == nil || r.DstOpener == nil {
		return 0, "", errors.New("verify: content needs readers for both sides")
	}
	sum := func(open func() (io.ReadCloser, error)) (uint64, int64, error) {
		rc, err := open()
		if err != nil {
			return 0, 0, err
		}
		defer rc.Close()
		h := crc64ecma.New()
		n, err := io.Copy(h, rc)
		return h.Sum64(), n, err
	}
	sc, sn, err := sum(func() (io.ReadCloser, error) { return r.Source.Get(ctx, src.Key, src.ETag, 0, -1) })
	if err != nil {
		return 0, "", err
	}
	dc, dn, err := sum(func() (io.ReadCloser, error) { return r.DstOpener.Open(ctx, dstKey) })
	if err != nil {
		return 0, "", err
	}
	if sc != dc || sn != dn {
		return Different, "content crc64", nil
	}
	return Same, "content crc64", nil
}

// queue adds a copy job for src (not in report mode), publishing in batches.
func (r *runner) queue(ctx context.Context, src Entry) error {
	if r.opts.Mode == ModeReport {
		return r.err()
	}
	j := transfer.Job{Task: r.Task.Name, Bucket: r.Task.Source.Bucket, Key: src.Key, ETag: src.ETag, Size: src.Size,
		Kind: transfer.KindConverge, Origin: "reconcile", Nonce: r.nonce, Force: r.opts.Mode == ModeCopyAll}
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
