package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/metrics"
)

// The defaults of WorkerConfig.
const (
	DefaultConcurrency = 16
	// DefaultLargeConcurrency is the large lane's pool: four multipart
	// copies at once, each with PartsInFlight parts, fill the part budget.
	DefaultLargeConcurrency = 4
	DefaultRetryBase        = 5 * time.Second
	DefaultRetryMax         = 5 * time.Minute
	DefaultJobTimeout       = 6 * time.Hour
	DefaultShutdownGrace    = 30 * time.Second
	// DefaultUnknownTaskGrace is how long a job whose task is not
	// configured is kept before it is dead-lettered (see
	// Workers.unknownTask): longer than replicas take to reload one after
	// another, shorter than the backlog alert's 30 minutes.
	DefaultUnknownTaskGrace = 15 * time.Minute
)

// WorkerConfig shapes the copy workers of one process.
type WorkerConfig struct {
	Concurrency int // small-lane jobs worked on at once by this process
	// LargeConcurrency is the large lane's pool: large objects and the
	// parts of giant ones (see Lane), worked beside the small lane's.
	LargeConcurrency int
	Copy             CopyConfig    // defaults for every task
	RetryBase        time.Duration // first retry delay; doubles per attempt, with jitter
	RetryMax         time.Duration // longest retry delay
	JobTimeout       time.Duration // one attempt at one job
	ShutdownGrace    time.Duration // how long in-flight jobs may run on after shutdown starts
	// Kinds are the workers of the kinds of jobs other packages queue,
	// registered by them (the reconciler's shard jobs); a job of a kind
	// this process has no worker for is handed back for a replica that
	// has one. Observer, if set, hears how each copy job ended.
	Kinds    map[string]JobWorker
	Observer JobObserver
	// UnknownTaskGrace: a job of a task this process is not configured
	// with is handed back (no attempt spent) until it has been this long
	// in the queue, then dead-lettered with that cause.
	UnknownTaskGrace time.Duration
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.LargeConcurrency <= 0 {
		c.LargeConcurrency = DefaultLargeConcurrency
	}
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = DefaultJobTimeout
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.UnknownTaskGrace <= 0 {
		c.UnknownTaskGrace = DefaultUnknownTaskGrace
	}
	return c
}

// TaskRuntime is a task with its clients.
type TaskRuntime struct {
	Task        *Task
	Source      Source
	Destination Destination
}

// TaskSet is the tasks as the configuration has them now. A configuration
// reload may replace them while the workers and the sweeper run, so these
// look a task up for each job (each sweep) rather than keep a map of their
// own; a job in flight keeps the TaskRuntime it started with.
type TaskSet interface {
	// Tasks returns the current tasks by name; the map is not modified
	// after it is returned (a reload replaces it whole).
	Tasks() map[string]*TaskRuntime
}

// StaticTasks is a TaskSet that never changes (the one-shot commands,
// tests).
type StaticTasks map[string]*TaskRuntime

// Tasks returns s.
func (s StaticTasks) Tasks() map[string]*TaskRuntime { return s }

// Workers take jobs from the shared durable consumer and hand each to the
// worker of its kind. Every replica runs its own Workers on the same
// consumer, so JetStream spreads the jobs over all of them.
type Workers struct {
	kinds    map[string]jobWorker
	tasks    TaskSet
	observer JobObserver
	q        *Queue
	policy   retryPolicy
	cfg      WorkerConfig
	m        *metrics.Metrics
	log      *slog.Logger
}

// jobWorker works the jobs of one kind; its error says what becomes of the
// job (see settle.go). The outcome is for the metrics and the log.
type jobWorker interface {
	work(ctx context.Context, job Job, log *slog.Logger) (outcome, error)
}

// NewWorkers prepares workers; Run starts them. The worker of each kind of
// job is registered here: converge, remove and part jobs (the parts of
// giant objects) copy with copier into tasks' destinations; the other
// kinds' workers come in cfg.Kinds.
func NewWorkers(q *Queue, copier *Copier, tasks TaskSet, cfg WorkerConfig, m *metrics.Metrics, log *slog.Logger) *Workers {
	cfg = cfg.withDefaults()
	w := &Workers{q: q, tasks: tasks, cfg: cfg, m: m, log: log, observer: cfg.Observer, policy: newRetryPolicy(cfg, q.cfg.MaxAttempts)}
	objects := &objectWorkers{q: q, copier: copier, tasks: tasks, cfg: cfg}
	w.kinds = map[string]jobWorker{
		KindConverge: convergeWorker{objects},
		KindRemove:   convergeWorker{objects},
		KindPart:     partWorker{objects},
	}
	for kind, kw := range cfg.Kinds {
		w.kinds[kind] = otherWorker{kw}
	}
	return w
}

// A JobWorker works the jobs of one kind that another package queues. Its
// error says what becomes of the job, as for every kind: nil done,
// Snooze(d, ...) look again after d, Permanent(err) dead-letter now,
// another error retry after a backoff (see settle.go).
type JobWorker interface {
	Work(ctx context.Context, job Job, log *slog.Logger) error
}

// JobWorkerFunc is a function that is a JobWorker.
type JobWorkerFunc func(ctx context.Context, job Job, log *slog.Logger) error

// Work calls f.
func (f JobWorkerFunc) Work(ctx context.Context, job Job, log *slog.Logger) error {
	return f(ctx, job, log)
}

// JobObserver hears how each job ended (the reconciler counts the copies
// its runs queued). It must not block.
type JobObserver interface {
	JobDone(job Job, result string)
}

// otherWorker is a registered JobWorker: its jobs copy nothing themselves,
// so they count in no copy metric.
type otherWorker struct{ JobWorker }

func (o otherWorker) work(ctx context.Context, job Job, log *slog.Logger) (outcome, error) {
	return outcome{}, o.Work(ctx, job, log)
}

// isObjectJob reports whether job is about one object (and counts in the
// copy metrics by task).
func isObjectJob(job Job) bool {
	switch job.Kind {
	case KindConverge, KindRemove, KindPart:
		return true
	}
	return false
}

// Run works jobs until ctx is done, then stops taking new ones, gives the
// jobs in flight ShutdownGrace to finish and hands the rest back to the
// queue (another replica, or this one after a restart, takes them). Each
// lane has its own consumer and pool, so a burst of large copies never
// holds up a small object.
func (w *Workers) Run(ctx context.Context) error {
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	w.log.Info("copy workers started", "concurrency", w.cfg.Concurrency, "large_concurrency", w.cfg.LargeConcurrency)
	// A lane that cannot start stops the other: a process working one
	// lane only would look healthy while its other lane's jobs wait.
	ctx, stopLanes := context.WithCancel(ctx)
	defer stopLanes()
	var wg sync.WaitGroup
	errs := make(chan error, len(Lanes))
	for _, l := range Lanes {
		n := w.cfg.Concurrency
		if l == LargeLane {
			n = w.cfg.LargeConcurrency
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.runLane(ctx, jobCtx, l, n); err != nil {
				errs <- err
				stopLanes()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		select {
		case <-done:
		case <-time.After(w.cfg.ShutdownGrace):
			w.log.Warn("shutdown grace over: handing in-flight jobs back to the queue")
			cancelJobs()
			<-done
		}
	}
	close(errs)
	var err error
	for e := range errs {
		err = errors.Join(err, e)
	}
	w.log.Info("copy workers stopped")
	return err
}

// runLane works the jobs of lane l with n workers until ctx is done and
// the jobs it took have ended (or been handed back when jobCtx is
// cancelled at the end of the shutdown grace).
func (w *Workers) runLane(ctx, jobCtx context.Context, l Lane, n int) error {
	// A streaming pull that keeps about one job per worker waiting in the
	// client: a finished worker starts its next job without a round trip to
	// the server (one pull per job halved the small-object rate).
	it, err := w.q.consumerOf(l).Messages(jetstream.PullMaxMessages(n))
	if err != nil {
		return fmt.Errorf("consume jobs of the %s lane: %w", l.Name, err)
	}
	// Long-lived workers, not a goroutine per job: a job runs deep in the
	// SDKs' stacks, and growing a fresh goroutine's stack for every small
	// object cost about a tenth of the CPU.
	jobs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range n {
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
			w.log.Warn("fetch jobs", "lane", l.Name, "err", err)
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
		w.log.Info("shutdown: jobs taken but not started handed back to the queue", "lane", l.Name, "jobs", handedBack)
	}
	close(jobs)
	wg.Wait()
	return nil
}

// delivery is one delivery of a job: the message, and what the worker
// knows of it before it starts.
type delivery struct {
	msg    jetstream.Msg
	seq    uint64    // stream sequence
	n      uint64    // how often JetStream delivered this message
	stored time.Time // when the stream stored it; zero if unknown
}

func (w *Workers) handle(ctx context.Context, msg jetstream.Msg) {
	d := delivery{msg: msg, n: 1}
	if md, err := msg.Metadata(); err == nil {
		d.seq, d.n, d.stored = md.Sequence.Stream, md.NumDelivered, md.Timestamp
	}
	job, err := decodeJob(msg.Data())
	if err != nil {
		w.deadLetter(ctx, d, job, Permanent(err), w.log.With("delivery", d.n))
		return
	}
	log := w.log.With("task", job.Task, "key", job.Key, "attempt", job.Attempts+1)
	if job.Kind == KindPart {
		log = log.With("part", job.Part)
	}
	if d.n > 1 {
		log = log.With("delivery", d.n)
	}
	if wait := time.Until(job.NotBefore); wait > 0 {
		_ = msg.NakWithDelay(wait)
		return
	}
	if job.Kind == "" {
		job.Kind = KindConverge // as every release before kinds were checked read it
	}
	kw, ok := w.kinds[job.Kind]
	if !ok {
		// Another replica may have a worker for it (one that runs the
		// reconciler, for its shard jobs).
		_ = msg.NakWithDelay(w.q.cfg.AckWait)
		log.Warn("no worker for this kind of job in this process: handed back", "kind", job.Kind)
		return
	}
	switch _, ok := w.tasks.Tasks()[job.Task]; {
	case ok:
	case job.Task != "":
		w.unknownTask(ctx, d, job, log)
		return
	case isObjectJob(job): // no reload can bring it a task
		w.deadLetter(ctx, d, job, Permanent(errors.New("the job names no task")), log)
		return
	}
	if isObjectJob(job) {
		w.m.JobsInFlight.Inc()
		defer w.m.JobsInFlight.Dec()
		// A job seen before: delivered again (a crash, an expired ack
		// wait) or a retry, which is a message of its own since attempts
		// are oss2s3's (counting only JetStream's deliveries missed a
		// retry that arrived after its backoff, as on a slow machine).
		if d.n > 1 || job.Attempts > 0 {
			w.m.Redeliveries.WithLabelValues(job.Task).Inc()
		}
	}
	stop := keepAlive(msg, w.q.cfg.AckWait/3)
	out, err := kw.work(ctx, job, log)
	stop()
	w.apply(ctx, d, job, out, err, w.policy.settle(job, d.n, err, ctx.Err() != nil), log)
}

// outcome is what a job did, for the metrics and the log.
type outcome struct {
	result string // a metrics.Copy* value; "" counts nothing
	why    string
	copy   *CopyResult
}

func newNonce() string {
	return fmt.Sprintf("%x", rand.Uint64())
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
