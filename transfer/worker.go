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
	"golang.org/x/sync/semaphore"

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
	q      *Queue
	copier *Copier
	tasks  map[string]*TaskRuntime
	cfg    WorkerConfig
	m      *metrics.Metrics
	log    *slog.Logger
}

// NewWorkers prepares workers; Run starts them.
func NewWorkers(q *Queue, copier *Copier, tasks map[string]*TaskRuntime, cfg WorkerConfig, m *metrics.Metrics, log *slog.Logger) *Workers {
	return &Workers{q: q, copier: copier, tasks: tasks, cfg: cfg.withDefaults(), m: m, log: log}
}

// Run works jobs until ctx is done, then stops taking new ones, gives the
// jobs in flight ShutdownGrace to finish and hands the rest back to the
// queue (another replica, or this one after a restart, takes them).
func (w *Workers) Run(ctx context.Context) error {
	slots := semaphore.NewWeighted(int64(w.cfg.Concurrency))
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	var wg sync.WaitGroup
	w.log.Info("copy workers started", "concurrency", w.cfg.Concurrency)
	for ctx.Err() == nil {
		if err := slots.Acquire(ctx, 1); err != nil {
			break
		}
		free := 1
		for free < w.cfg.Concurrency && slots.TryAcquire(1) {
			free++
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := w.q.consumer.Fetch(free, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			slots.Release(int64(free))
			if ctx.Err() == nil {
				w.log.Warn("fetch jobs", "err", err)
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer slots.Release(1)
				w.handle(jobCtx, msg)
			}()
		}
		cancel()
		slots.Release(int64(free - got))
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) &&
			!errors.Is(err, context.Canceled) && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			w.log.Warn("fetch jobs", "err", err)
			sleepCtx(ctx, time.Second)
		}
	}
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
	rt, ok := w.tasks[job.Task]
	if !ok {
		w.deadLetter(ctx, msg, job, attempt, Permanent(fmt.Errorf("no task named %q is configured", job.Task)), log)
		return
	}
	w.m.JobsInFlight.Inc()
	defer w.m.JobsInFlight.Dec()

	stop := keepAlive(msg, w.q.cfg.AckWait/3)
	res, err := w.copy(ctx, rt, job.Key)
	stop()

	switch {
	case err == nil:
		_ = msg.Ack()
		w.m.ObjectsCopied.WithLabelValues(job.Task, metrics.CopyCopied).Inc()
		w.m.BytesCopied.WithLabelValues(job.Task).Add(float64(res.Bytes))
		w.m.CopyDuration.WithLabelValues(job.Task).Observe(res.Duration.Seconds())
		log.Info("copied", "bytes", res.Bytes, "parts", res.Parts, "etag", res.Info.ETag,
			"crc64", res.CRC64, "duration", res.Duration.Round(time.Millisecond))
	case errors.Is(err, ErrNotFound):
		// Nothing to copy: the key is gone at the source. Deleting the
		// copy is a task option (a later issue); converging here means
		// not resurrecting anything.
		_ = msg.Ack()
		w.m.ObjectsCopied.WithLabelValues(job.Task, metrics.CopySourceGone).Inc()
		log.Info("source object gone, nothing to copy", "event", job.Event)
	case ctx.Err() != nil:
		_ = msg.Nak()
		log.Warn("copy interrupted by shutdown, handed back to the queue", "err", err)
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

// copy copies key, and if the source has no such key but the key looks
// URL-encoded, the decoded key once (REFERENCE.md 2: be defensive about
// how the event encoded the key).
func (w *Workers) copy(ctx context.Context, rt *TaskRuntime, key string) (*CopyResult, error) {
	cfg := w.cfg.Copy
	if o := rt.Task.Options; o.PartSize > 0 || o.MultipartThreshold > 0 || o.PartsInFlight > 0 {
		cfg.PartSize = max(cfg.PartSize, o.PartSize)
		if o.MultipartThreshold > 0 {
			cfg.MultipartThreshold = o.MultipartThreshold
		}
		if o.PartsInFlight > 0 {
			cfg.PartsInFlight = o.PartsInFlight
		}
	}
	timeout := w.cfg.JobTimeout
	if rt.Task.Options.Timeout > 0 {
		timeout = rt.Task.Options.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := w.copier.Copy(ctx, rt.Source, rt.Destination, key, rt.Task.DestinationKey(key), cfg)
	if errors.Is(err, ErrNotFound) && strings.ContainsAny(key, "%+") {
		if dec, derr := url.QueryUnescape(key); derr == nil && dec != key {
			return w.copier.Copy(ctx, rt.Source, rt.Destination, dec, rt.Task.DestinationKey(dec), cfg)
		}
	}
	return res, err
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
		w.m.ObjectsCopied.WithLabelValues(job.Task, metrics.CopyDeadLetter).Inc()
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
