package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/metrics"
)

// WorkerConfig shapes the copy workers of one process.
type WorkerConfig struct {
	Concurrency   int           // jobs worked on at once by this process
	Copy          CopyConfig    // defaults for every task
	RetryBase     time.Duration // first retry delay; doubles per attempt, with jitter
	RetryMax      time.Duration // longest retry delay
	JobTimeout    time.Duration // one attempt at one job
	ShutdownGrace time.Duration // how long in-flight jobs may run on after shutdown starts
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 5 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = 6 * time.Hour
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	return c
}

// TaskRuntime is a task with its clients.
type TaskRuntime struct {
	Task        *Task
	Source      Source
	Destination Destination
}

// Workers take jobs from the shared durable consumer and copy them. Every
// replica runs its own Workers on the same consumer, so JetStream spreads
// the jobs over all of them.
type Workers struct {
	shards   ShardRunner
	observer JobObserver
	q        *Queue
	copier   *Copier
	tasks    map[string]*TaskRuntime
	cfg      WorkerConfig
	m        *metrics.Metrics
	log      *slog.Logger
}

// NewWorkers prepares workers; Run starts them.
func NewWorkers(q *Queue, copier *Copier, tasks map[string]*TaskRuntime, cfg WorkerConfig, m *metrics.Metrics, log *slog.Logger) *Workers {
	return &Workers{q: q, copier: copier, tasks: tasks, cfg: cfg.withDefaults(), m: m, log: log}
}

// ShardRunner runs the reconcile shard a job of kind KindReconcile
// describes. An error hands the job back to the queue (it is retried like a
// copy); a shard whose diff failed records that itself and returns nil.
type ShardRunner interface {
	RunShard(ctx context.Context, job Job, log *slog.Logger) error
}

// JobObserver hears how each job ended (the reconciler counts the copies
// its runs queued). It must not block.
type JobObserver interface {
	JobDone(job Job, result string)
}

// SetJobObserver makes the workers report each finished job to o.
func (w *Workers) SetJobObserver(o JobObserver) { w.observer = o }

// SetShardRunner makes the workers take reconcile shard jobs.
func (w *Workers) SetShardRunner(r ShardRunner) { w.shards = r }

// Run works jobs until ctx is done, then stops taking new ones, gives the
// jobs in flight ShutdownGrace to finish and hands the rest back to the
// queue (another replica, or this one after a restart, takes them).
func (w *Workers) Run(ctx context.Context) error {
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	w.log.Info("copy workers started", "concurrency", w.cfg.Concurrency)
	// A streaming pull that keeps about one job per worker waiting in the
	// client: a finished worker starts its next job without a round trip to
	// the server (one pull per job halved the small-object rate).
	it, err := w.q.consumer.Messages(jetstream.PullMaxMessages(w.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("consume jobs: %w", err)
	}
	// Long-lived workers, not a goroutine per job: a job runs deep in the
	// SDKs' stacks, and growing a fresh goroutine's stack for every small
	// object cost about a tenth of the CPU.
	jobs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range w.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range jobs {
				w.handle(jobCtx, msg)
			}
		}()
	}
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		it.Drain()
	}()
	handedBack := 0
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				break
			}
			w.log.Warn("fetch jobs", "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		// Once shutdown starts, the jobs already pulled into the client's
		// buffer (Drain hands them over until it is empty) are not started:
		// straight back to the queue, so another replica takes them now
		// rather than after ack_wait. (A select alone would pick a free
		// worker half of the time.)
		if ctx.Err() != nil {
			_ = msg.Nak()
			handedBack++
			continue
		}
		select {
		case jobs <- msg:
		case <-ctx.Done():
			_ = msg.Nak()
			handedBack++
		}
	}
	close(stopped)
	if handedBack > 0 {
		w.log.Info("shutdown: jobs taken but not started handed back to the queue", "jobs", handedBack)
	}
	close(jobs)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownGrace):
		w.log.Warn("shutdown grace over: handing in-flight jobs back to the queue")
		cancelJobs()
		<-done
	}
	w.log.Info("copy workers stopped")
	return nil
}

func (w *Workers) handle(ctx context.Context, msg jetstream.Msg) {
	var attempt uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	job, err := decodeJob(msg.Data())
	if err != nil {
		w.deadLetter(ctx, msg, job, attempt, Permanent(err), w.log.With("attempt", attempt))
		return
	}
	log := w.log.With("task", job.Task, "key", job.Key, "attempt", attempt)
	if job.Kind == KindPart {
		log = log.With("part", job.Part)
	}
	if wait := time.Until(job.NotBefore); wait > 0 {
		_ = msg.NakWithDelay(wait)
		return
	}
	if job.Kind == KindReconcile {
		w.shard(ctx, msg, job, attempt, log)
		return
	}
	rt, ok := w.tasks[job.Task]
	if !ok {
		w.deadLetter(ctx, msg, job, attempt, Permanent(fmt.Errorf("no task named %q is configured", job.Task)), log)
		return
	}
	w.m.JobsInFlight.Inc()
	defer w.m.JobsInFlight.Dec()
	if attempt > 1 {
		w.m.Redeliveries.WithLabelValues(job.Task).Inc()
	}

	stop := keepAlive(msg, w.q.cfg.AckWait/3)
	ctx2, cancel := context.WithTimeout(ctx, w.timeout(rt))
	var out outcome
	if job.Kind == KindPart {
		out, err = w.part(ctx2, rt, job, log)
	} else {
		out, err = w.converge(ctx2, rt, job, log)
	}
	cancel()
	stop()

	switch {
	case err == nil:
		_ = msg.Ack()
		if out.result != "" {
			w.m.ObjectsCopied.WithLabelValues(job.Task, out.result).Inc()
			if w.observer != nil {
				w.observer.JobDone(job, out.result)
			}
		}
		if out.result == metrics.CopyCopied || out.result == metrics.CopyDeleted {
			w.m.ObserveLag(job.Task, job.EventTime, time.Now())
		}
		if out.copy != nil {
			w.m.BytesCopied.WithLabelValues(job.Task).Add(float64(out.copy.Bytes))
			w.m.CopyDuration.WithLabelValues(job.Task).Observe(out.copy.Duration.Seconds())
			log.Info("copied", "bytes", out.copy.Bytes, "parts", out.copy.Parts, "resumed_parts", out.copy.Resumed,
				"crc64", out.copy.CRC64, "duration", out.copy.Duration.Round(time.Millisecond))
		} else if out.why != "" {
			log.Info(out.why, "result", out.result)
		}
	case ctx.Err() != nil:
		_ = msg.Nak()
		log.Warn("copy interrupted by shutdown, handed back to the queue", "err", err)
	case errors.Is(err, ErrBusy):
		_ = msg.NakWithDelay(w.q.cfg.AckWait)
		log.Info("object busy, will look again", "err", err)
	case IsPermanent(err) || attempt >= uint64(w.q.cfg.MaxDeliver):
		w.deadLetter(ctx, msg, job, attempt, err, log)
	default:
		delay := w.backoff(attempt)
		_ = msg.NakWithDelay(delay)
		w.m.ObjectsCopied.WithLabelValues(job.Task, metrics.CopyRetried).Inc()
		log.Warn("copy failed, will retry", "err", err, "retry_in", delay.Round(time.Millisecond),
			"attempts_left", uint64(w.q.cfg.MaxDeliver)-attempt)
	}
}

// shard runs a reconcile shard, telling JetStream it is alive meanwhile:
// if this replica dies, the shard is redelivered to another after AckWait.
func (w *Workers) shard(ctx context.Context, msg jetstream.Msg, job Job, attempt uint64, log *slog.Logger) {
	if w.shards == nil {
		_ = msg.NakWithDelay(w.q.cfg.AckWait)
		log.Warn("reconcile shard job, but this process runs no reconciler: handed back")
		return
	}
	stop := keepAlive(msg, w.q.cfg.AckWait/3)
	err := w.shards.RunShard(ctx, job, log)
	stop()
	switch {
	case err == nil:
		_ = msg.Ack()
	case ctx.Err() != nil:
		_ = msg.Nak()
		log.Warn("reconcile shard interrupted by shutdown, handed back to the queue", "err", err)
	case attempt >= uint64(w.q.cfg.MaxDeliver):
		w.deadLetter(ctx, msg, job, attempt, err, log)
	default:
		_ = msg.NakWithDelay(w.backoff(attempt))
		log.Warn("reconcile shard failed, will retry", "err", err)
	}
}

// outcome is what a job did, for the metrics and the log.
type outcome struct {
	result string // a metrics.Copy* value; "" counts nothing
	why    string
	copy   *CopyResult
}

func (w *Workers) timeout(rt *TaskRuntime) time.Duration {
	if rt.Task.Options.Timeout > 0 {
		return rt.Task.Options.Timeout
	}
	return w.cfg.JobTimeout
}

func (w *Workers) copyConfig(rt *TaskRuntime) CopyConfig {
	cfg := w.cfg.Copy
	o := rt.Task.Options
	if o.PartSize > 0 {
		cfg.PartSize = o.PartSize
	}
	if o.MultipartThreshold > 0 {
		cfg.MultipartThreshold = o.MultipartThreshold
	}
	if o.PartsInFlight > 0 {
		cfg.PartsInFlight = o.PartsInFlight
	}
	if o.GiantThreshold > 0 {
		cfg.GiantThreshold = o.GiantThreshold
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * w.q.cfg.AckWait
	}
	return cfg.withDefaults()
}

// converge makes the destination match the source's current state of the
// job's key, whatever the event said: late, repeated and reordered events
// all end in the same state.
func (w *Workers) converge(ctx context.Context, rt *TaskRuntime, job Job, log *slog.Logger) (outcome, error) {
	task, opts := rt.Task, rt.Task.Options
	key := job.Key
	cfg := w.copyConfig(rt)
	if op, ok := rt.Source.(Opener); ok && job.Kind == KindConverge && job.Size < int64(cfg.MultipartThreshold) {
		if out, handled, err := w.convergeSmall(ctx, rt, op, job, cfg, log); handled {
			return out, err
		}
	}
	info, err := rt.Source.Head(ctx, key)
	if errors.Is(err, ErrNotFound) && strings.ContainsAny(key, "%+") {
		// REFERENCE.md 2: be defensive about how the event encoded the key.
		if dec, derr := url.QueryUnescape(key); derr == nil && dec != key {
			if i, e := rt.Source.Head(ctx, dec); e == nil {
				key, info, err = dec, i, nil
			}
		}
	}
	dstKey := task.DestinationKey(key)
	if errors.Is(err, ErrNotFound) {
		if job.Kind == KindRemove && opts.Deletes == DeletesPropagate {
			return w.deleteCopy(ctx, rt, dstKey)
		}
		return outcome{result: metrics.CopySourceGone, why: "source object gone, nothing to copy"}, nil
	}
	if err != nil {
		return outcome{}, err
	}
	if info.ObjectType == ObjectTypeSymlink && opts.Symlinks == SymlinksSkip {
		return outcome{result: metrics.CopySkipped, why: "symlink skipped (options.symlinks: skip)"}, nil
	}
	if info.NeedsRestore() {
		return w.archived(ctx, rt, job, info, log)
	}
	if opts.Compares() && !job.Force {
		cur, err := rt.Destination.Head(ctx, dstKey)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return outcome{}, err
		}
		if err == nil && HoldsVersion(cur, info) {
			return outcome{result: metrics.CopySkipped, why: "destination already holds this source version"}, nil
		}
	}
	write := &WriteInfo{Source: info, StorageClass: task.Destination.StorageClassMap[info.StorageClass]}
	if opts.CopyTags && info.TagCount > 0 {
		if tg, ok := rt.Source.(Tagger); ok {
			if write.Tags, err = tg.Tags(ctx, key); err != nil {
				return outcome{}, err
			}
		}
	}
	o := Object{Task: task.Name, Src: rt.Source, Dst: rt.Destination, Info: info, DstKey: dstKey, Write: write}
	if info.Size >= int64(cfg.GiantThreshold) && w.copier.ckpt != nil {
		return w.startGiant(ctx, o, job, cfg, log)
	}
	res, err := w.copier.Copy(ctx, o, cfg)
	if err != nil {
		return outcome{}, err
	}
	return w.copied(ctx, rt, o, res, log), nil
}

// copied finishes a successful copy: where the source published no CRC-64,
// the one computed on the way is recorded on the copy.
func (w *Workers) copied(ctx context.Context, rt *TaskRuntime, o Object, res *CopyResult, log *slog.Logger) outcome {
	if !o.Info.HasCRC64 {
		if r, ok := rt.Destination.(CRCRecorder); ok {
			if err := r.RecordCRC64(ctx, o.DstKey, res.CRC64); err != nil {
				log.Warn("source has no CRC-64; recording the computed one failed", "crc64", res.CRC64, "err", err)
			}
		}
	}
	return outcome{result: metrics.CopyCopied, copy: res}
}

// convergeSmall is the path of a small object: one GET gives its headers
// and its bytes, and one PUT writes it. Whether the destination already
// holds the version is asked in the cheapest way: for an object written
// whole (up to 1 MiB) by a create-only PUT that looks only if the key
// exists (Object.KeepCurrent); for a bigger one by a HEAD sent together
// with the GET. Anything unusual (an error, a big or archived object, tags
// to copy) is left to the full path: handled is false.
func (w *Workers) convergeSmall(ctx context.Context, rt *TaskRuntime, op Opener, job Job, cfg CopyConfig, log *slog.Logger) (out outcome, handled bool, err error) {
	task, opts := rt.Task, rt.Task.Options
	key, dstKey := job.Key, task.DestinationKey(job.Key)
	compare := opts.Compares() && !job.Force // a copy_all reconcile copies whatever is there
	var (
		cur     *ObjectInfo
		headErr error
		headed  = make(chan struct{})
	)
	// job.Size is the event's word for the size; the GET's is the truth.
	headFirst := compare && !WritesWhole(rt.Destination, job.Size)
	if headFirst {
		// The HEAD does not depend on the GET's answer: send both at once,
		// so the object costs two round trips, not three.
		go func() {
			defer close(headed)
			cur, headErr = rt.Destination.Head(ctx, dstKey)
		}()
	} else {
		close(headed)
	}
	info, body, err := op.Open(ctx, key)
	<-headed
	if err != nil {
		return outcome{}, false, nil
	}
	defer body.Close()
	if info.Size >= int64(cfg.MultipartThreshold) || info.NeedsRestore() || (opts.CopyTags && info.TagCount > 0) ||
		(info.ObjectType == ObjectTypeSymlink && opts.Symlinks == SymlinksSkip) {
		return outcome{}, false, nil
	}
	keepCurrent := compare && WritesWhole(rt.Destination, info.Size)
	if compare && !keepCurrent {
		if !headFirst { // the event said small, the object is not
			cur, headErr = rt.Destination.Head(ctx, dstKey)
		}
		if headErr != nil && !errors.Is(headErr, ErrNotFound) {
			return outcome{}, true, headErr
		}
		if headErr == nil && HoldsVersion(cur, info) {
			return outcome{result: metrics.CopySkipped, why: "destination already holds this source version"}, true, nil
		}
	}
	o := Object{Task: task.Name, Src: rt.Source, Dst: rt.Destination, Info: info, DstKey: dstKey, KeepCurrent: keepCurrent,
		Write: &WriteInfo{Source: info, StorageClass: task.Destination.StorageClassMap[info.StorageClass]}}
	res, err := w.copier.CopyBody(ctx, o, body)
	if err != nil {
		return outcome{}, true, err
	}
	if res.Skipped {
		return outcome{result: metrics.CopySkipped, why: "destination already holds this source version"}, true, nil
	}
	return w.copied(ctx, rt, o, res, log), true, nil
}

// deleteCopy deletes the copy of a key deleted at the source, but only a
// copy oss2s3 wrote (unless the task says delete_foreign).
func (w *Workers) deleteCopy(ctx context.Context, rt *TaskRuntime, dstKey string) (outcome, error) {
	cur, err := rt.Destination.Head(ctx, dstKey)
	if errors.Is(err, ErrNotFound) {
		return outcome{result: metrics.CopySourceGone, why: "deleted at the source; no copy to delete"}, nil
	}
	if err != nil {
		return outcome{}, err
	}
	if !WrittenByUs(cur) && !rt.Task.Options.DeleteForeign {
		return outcome{result: metrics.CopySkipped, why: "deleted at the source, but the destination object was not written by oss2s3: kept"}, nil
	}
	if err := rt.Destination.Delete(ctx, dstKey); err != nil {
		return outcome{}, err
	}
	return outcome{result: metrics.CopyDeleted, why: "deleted at the source: copy deleted"}, nil
}

// archived handles an object in an archive class: skip it, or restore it
// and come back when the restore has finished.
func (w *Workers) archived(ctx context.Context, rt *TaskRuntime, job Job, info *ObjectInfo, log *slog.Logger) (outcome, error) {
	if rt.Task.Options.Archive != ArchiveRestore {
		return outcome{result: metrics.CopySkipped, why: "archived object skipped (options.archive: skip): " + info.StorageClass}, nil
	}
	r, ok := rt.Source.(Restorer)
	if !ok {
		return outcome{}, Permanent(errors.New("source cannot restore archived objects"))
	}
	if !strings.Contains(info.Restore, "ongoing-request") {
		if err := r.Restore(ctx, info.Key); err != nil {
			return outcome{}, err
		}
		log.Info("archived object: restore requested", "storage_class", info.StorageClass)
	}
	poll := rt.Task.Options.RestorePoll
	if poll <= 0 {
		poll = 10 * time.Minute
	}
	// A fresh job with a start time, rather than NakWithDelay: a restore
	// can take hours, and waiting must not use up the job's attempts.
	next := job
	next.NotBefore, next.Waits, next.Nonce, next.QueuedAt = time.Now().Add(poll), job.Waits+1, newNonce(), time.Time{}
	next.Parent = job.Lineage()
	if _, err := w.q.Publish(ctx, []Job{next}); err != nil {
		return outcome{}, err
	}
	return outcome{result: metrics.CopyDeferred, why: "archived object: restore in progress, looking again in " + poll.String()}, nil
}

// startGiant splits a giant object into part jobs for every replica.
func (w *Workers) startGiant(ctx context.Context, o Object, job Job, cfg CopyConfig, log *slog.Logger) (outcome, error) {
	cp, missing, err := w.copier.StartGiant(ctx, o, cfg)
	if err != nil {
		return outcome{}, err
	}
	jobs := make([]Job, 0, len(missing))
	for _, n := range missing {
		jobs = append(jobs, Job{
			Task: job.Task, Bucket: job.Bucket, Key: o.Info.Key, ETag: o.Info.ETag, Size: o.Info.Size,
			Kind: KindPart, Origin: job.Origin, EventTime: job.EventTime, UploadID: cp.UploadID, Part: n, Redo: job.Redo,
			Parent: job.Lineage(),
		})
	}
	for len(jobs) > 0 {
		batch := jobs[:min(len(jobs), 1000)]
		if _, err := w.q.Publish(ctx, batch); err != nil {
			return outcome{}, err
		}
		jobs = jobs[len(batch):]
	}
	log.Info("giant object: parts queued for every replica", "size", o.Info.Size, "parts", cp.TotalParts,
		"queued", len(missing), "part_size", cp.PartSize)
	return outcome{result: metrics.CopyDeferred}, nil
}

// part copies one part of a giant object; the worker whose part completes
// the set completes the upload.
func (w *Workers) part(ctx context.Context, rt *TaskRuntime, job Job, log *slog.Logger) (outcome, error) {
	start := time.Now()
	res, err := w.copier.CopyPart(ctx, job.Task, job.Key, job.ETag, job.UploadID, job.Part, rt.Source, rt.Destination)
	switch {
	case errors.Is(err, ErrStalePart):
		return outcome{why: "part of an upload that is gone: dropped"}, nil
	case errors.Is(err, ErrSourceChanged), errors.Is(err, ErrChecksumMismatch) && job.Redo+1 < w.q.cfg.MaxDeliver:
		// The upload was abandoned; start over from a fresh HEAD.
		next := Job{Task: job.Task, Bucket: job.Bucket, Key: job.Key, Kind: KindConverge, Origin: job.Origin,
			EventTime: job.EventTime, Redo: job.Redo + 1, Nonce: newNonce(), Parent: job.Lineage()}
		if _, perr := w.q.Publish(ctx, []Job{next}); perr != nil {
			return outcome{}, perr
		}
		log.Warn("giant object abandoned, copying it again from the start", "err", err, "redo", next.Redo)
		return outcome{result: metrics.CopyRetried}, nil
	case err != nil:
		return outcome{}, err
	}
	if !res.Completed {
		return outcome{}, nil
	}
	return outcome{result: metrics.CopyCopied, copy: &CopyResult{Bytes: res.Size, Multipart: true, CRC64: res.CRC64,
		Parts: res.Parts, Duration: time.Since(start)}}, nil
}

func newNonce() string {
	return fmt.Sprintf("%x", rand.Uint64())
}

// deadLetter parks the job with its cause in the dead-letter stream and
// removes it from the work queue. If the dead-letter stream cannot take it,
// the job stays in the work queue (never dropped) and is tried again later.
func (w *Workers) deadLetter(ctx context.Context, msg jetstream.Msg, job Job, attempt uint64, cause error, log *slog.Logger) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.q.deadLetter(dctx, msg.Data(), job.Task, attempt, cause); err != nil {
		_ = msg.NakWithDelay(w.cfg.RetryMax)
		log.Error("dead-lettering failed, job left in the queue", "err", err, "cause", cause)
		return
	}
	_ = msg.TermWithReason("dead-lettered")
	if job.Task != "" {
		w.m.ObjectsCopied.WithLabelValues(job.Task, metrics.CopyFailed).Inc()
		if w.observer != nil {
			w.observer.JobDone(job, metrics.CopyFailed)
		}
	}
	log.Error("copy failed for good, moved to the dead-letter queue", "err", cause, "permanent", IsPermanent(cause))
}

// backoff is exponential from RetryBase, capped at RetryMax, with jitter
// (half fixed, half random) so that retries of a failed burst spread out.
func (w *Workers) backoff(attempt uint64) time.Duration {
	d := w.cfg.RetryBase
	for i := uint64(1); i < attempt && d < w.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.cfg.RetryMax)
	return d/2 + rand.N(d/2+1)
}

// keepAlive tells JetStream the job is still being worked on, so a long copy
// is not redelivered to another worker while it runs.
func keepAlive(msg jetstream.Msg, every time.Duration) (stop func()) {
	if every <= 0 {
		every = 10 * time.Second
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
