package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func openQueue(t *testing.T, cfg transfer.QueueConfig) *transfer.Queue {
	t.Helper()
	if cfg.URL == "" && cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	q, err := transfer.OpenQueue(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return q
}

func job(task, key, etag string) transfer.Job {
	return transfer.Job{Task: task, Kind: "converge", ObjectArgs: transfer.ObjectArgs{Bucket: "src", Key: key, ETag: etag, Event: "ObjectCreated:PutObject"}}
}

// waitLimit is how long a test waits for what it expects to happen.
const waitLimit = 20 * time.Second

func depth(t *testing.T, q *transfer.Queue) uint64 {
	t.Helper()
	n, err := q.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("ResentEventIsADuplicate", func(t *testing.T) {
		t.Parallel()
		q := openQueue(t, transfer.QueueConfig{})
		res, err := q.Publish(ctx, []transfer.Job{job("t", "a", "E1"), job("t", "b", "E1")})
		if err != nil || res.Queued != 2 || res.Duplicate != 0 {
			t.Fatalf("first publish: %+v, %v", res, err)
		}
		res, err = q.Publish(ctx, []transfer.Job{job("t", "a", "E1"), job("t", "a", "E2")})
		if err != nil || res.Queued != 1 || res.Duplicate != 1 {
			t.Fatalf("second publish: %+v, %v (want the same version deduplicated, the new version queued)", res, err)
		}
		if n := depth(t, q); n != 3 {
			t.Fatalf("depth %d, want 3", n)
		}
	})

	t.Run("JobsSurviveARestartOfTheEmbeddedServer", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		q, err := transfer.OpenQueue(ctx, transfer.QueueConfig{DataDir: dir}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.Publish(ctx, []transfer.Job{job("t", "a", "1"), job("t", "b", "1")}); err != nil {
			t.Fatal(err)
		}
		q.Close()
		q2 := openQueue(t, transfer.QueueConfig{DataDir: dir})
		if n := depth(t, q2); n != 2 {
			t.Fatalf("after restart depth %d, want 2", n)
		}
		// The duplicate window survives too: the re-sent event is still a no-op.
		if res, err := q2.Publish(ctx, []transfer.Job{job("t", "a", "1")}); err != nil || res.Duplicate != 1 {
			t.Fatalf("re-sent after restart: %+v, %v", res, err)
		}
	})

	t.Run("ExternalServerIsUsedWhenAURLIsGiven", func(t *testing.T) {
		t.Parallel()
		ns := jstest.Start(t)
		q := openQueue(t, transfer.QueueConfig{URL: ns.ClientURL()})
		if err := q.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		// A second replica opening the same streams is fine (idempotent setup).
		q2 := openQueue(t, transfer.QueueConfig{URL: ns.ClientURL()})
		if _, err := q2.Publish(ctx, []transfer.Job{job("t", "a", "1")}); err != nil {
			t.Fatal(err)
		}
		if n := depth(t, q); n != 1 {
			t.Fatalf("depth seen by the other replica %d, want 1", n)
		}
	})

	t.Run("FullStreamRefusesNewJobs", func(t *testing.T) {
		t.Parallel()
		q := openQueue(t, transfer.QueueConfig{MaxMsgs: 2})
		_, err := q.Publish(ctx, []transfer.Job{job("t", "a", "1"), job("t", "b", "1"), job("t", "c", "1")})
		if !errors.Is(err, transfer.ErrQueueUnavailable) {
			t.Fatalf("err = %v, want ErrQueueUnavailable", err)
		}
		if n := depth(t, q); n != 2 {
			t.Fatalf("depth %d, want 2", n)
		}
	})
}

type workerBed struct {
	q     *transfer.Queue
	src   *memSource
	dst   *memDest
	reg   *prometheus.Registry
	m     *metrics.Metrics
	tasks *swappableTasks
	opts  bedOptions
	t     *testing.T
	stops []func() // of each replica, in the order they were added
}

type bedOptions struct {
	task     transfer.TaskOptions
	copy     transfer.CopyConfig
	replicas int
	whole    bool // the destination takes small objects whole (a BytesPutter, as S3Destination)
	// largeConcurrency is the large lane's pool (default
	// transfer.DefaultLargeConcurrency).
	largeConcurrency int
	// queue, if set, is the queue the workers read (else one is opened
	// with the bed's QueueConfig).
	queue *transfer.Queue
	// shards, if set, runs the reconcile shard jobs.
	shards *shardStub
	// sweep, if set, runs a sweeper beside every replica.
	sweep *transfer.SweeperConfig
	// grace is the workers' shutdown grace (default 5s).
	grace time.Duration
	// unknownTaskGrace is how long a job of a task not configured is
	// kept (default transfer.DefaultUnknownTaskGrace).
	unknownTaskGrace time.Duration
}

// swappableTasks is a TaskSet a test replaces while the workers run, as a
// configuration reload does.
type swappableTasks struct {
	p atomic.Pointer[map[string]*transfer.TaskRuntime]
}

func (s *swappableTasks) Tasks() map[string]*transfer.TaskRuntime { return *s.p.Load() }

func (s *swappableTasks) set(m map[string]*transfer.TaskRuntime) { s.p.Store(&m) }

func startWorkers(t *testing.T, qcfg transfer.QueueConfig, opts ...bedOptions) *workerBed {
	t.Helper()
	var o bedOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	q := o.queue
	if q == nil {
		q = openQueue(t, qcfg)
	}
	b := &workerBed{q: q, src: newMemSource(), dst: newMemDest(), reg: prometheus.NewRegistry(), opts: o, t: t}
	b.m = metrics.New(b.reg, []string{"t"})
	var dst transfer.Destination = b.dst
	if o.whole {
		dst = &memBytesDest{memDest: b.dst}
	}
	b.tasks = &swappableTasks{}
	b.tasks.set(map[string]*transfer.TaskRuntime{"t": {
		Task:   &transfer.Task{Name: "t", Source: transfer.SourceConfig{Bucket: "src"}, Destination: transfer.DestinationConfig{Prefix: "copy/"}, Options: o.task},
		Source: b.src, Destination: dst,
	}})
	for i := range max(o.replicas, 1) {
		b.stops = append(b.stops, b.addReplica(fmt.Sprintf("w%d", i)))
	}
	return b
}

// addReplica starts the workers of one more replica, sharing the queue and
// the checkpoints as processes on one NATS cluster do, and returns what
// stops it as SIGTERM would (its copies in flight get the grace, then are
// handed back).
func (b *workerBed) addReplica(owner string) (stop func()) {
	t := b.t
	t.Helper()
	copier := transfer.NewCopier(0, b.q.Checkpoints(), owner)
	cfg := transfer.WorkerConfig{
		Concurrency: 2, LargeConcurrency: b.opts.largeConcurrency, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, Copy: b.opts.copy,
		ShutdownGrace: b.opts.grace, UnknownTaskGrace: b.opts.unknownTaskGrace,
	}
	if b.opts.shards != nil {
		cfg.Kinds = map[string]transfer.JobWorker{transfer.KindReconcile: transfer.JobWorkerFunc(b.opts.shards.RunShard)}
	}
	w := transfer.NewWorkers(b.q, copier, b.tasks, cfg, b.m, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Go(func() { _ = w.Run(ctx) })
	if b.opts.sweep != nil {
		s := transfer.NewSweeper(b.q, copier, b.tasks, *b.opts.sweep, b.m, testLogger(t))
		running.Go(func() { _ = s.Run(ctx) })
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); running.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// value sums the series of the metric named name (all labels).
func (b *workerBed) value(name string) float64 {
	mfs, err := b.reg.Gather()
	if err != nil {
		b.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func (b *workerBed) count(result string) float64 {
	return testutil.ToFloat64(mustCounter(b.reg, result))
}

func mustCounter(reg *prometheus.Registry, result string) prometheus.Collector {
	return counterView{reg: reg, result: result}
}

// counterView exposes one series of oss2s3_objects_total for testutil.
type counterView struct {
	reg    *prometheus.Registry
	result string
}

func (c counterView) Describe(ch chan<- *prometheus.Desc) {}
func (c counterView) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := c.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "oss2s3_objects_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == c.result {
					ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("x", "x", nil, nil), prometheus.CounterValue, m.GetCounter().GetValue())
				}
			}
		}
	}
}

func TestWorkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("CopiesAJobUnderTheDestinationPrefix", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{})
		data := randomBytes(2048, 9)
		b.src.put("dir/x y.bin", data, nil)
		if _, err := b.q.Publish(ctx, []transfer.Job{job("t", "dir/x y.bin", "")}); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { got, ok := b.dst.object("copy/dir/x y.bin"); return ok && bytes.Equal(got, data) })
		testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
		if n := b.count(metrics.CopyCopied); n != 1 {
			t.Fatalf("copied counter %v, want 1", n)
		}
	})

	t.Run("SourceGoneIsAcknowledged", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{})
		if _, err := b.q.Publish(ctx, []transfer.Job{job("t", "gone", "E")}); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, waitLimit, "source_gone", func() bool { return b.count(metrics.CopySourceGone) == 1 })
		testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
	})

	t.Run("TransientErrorIsRetriedUntilItSucceeds", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 5})
		b.src.put("k", []byte("hello"), nil)
		var fails atomic.Int32
		b.dst.putErr = func(string) error {
			if fails.Add(1) <= 2 {
				return errors.New("503 SlowDown")
			}
			return nil
		}
		if _, err := b.q.Publish(ctx, []transfer.Job{job("t", "k", "")}); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { _, ok := b.dst.object("copy/k"); return ok })
		if n := b.count(metrics.CopyRetried); n != 2 {
			t.Fatalf("retried %v times, want 2", n)
		}
		testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
	})

	t.Run("JobThatKeepsFailingIsDeadLetteredWithItsCause", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 3})
		b.src.put("k", []byte("hello"), nil)
		b.dst.putErr = func(string) error { return errors.New("connection reset by peer") }
		if _, err := b.q.Publish(ctx, []transfer.Job{job("t", "k", "")}); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, waitLimit, "a dead letter", func() bool { return b.count(metrics.CopyFailed) == 1 })
		dl, err := b.q.DeadLetters(ctx, transfer.DeadLetterFilter{}, 10)
		if err != nil || len(dl) != 1 {
			t.Fatalf("dead letters %+v, %v", dl, err)
		}
		if dl[0].Job.Key != "k" || !strings.Contains(dl[0].Error, "connection reset") || dl[0].Attempts != "3" {
			t.Fatalf("dead letter %+v", dl[0])
		}
		if b.count(metrics.CopyRetried) != 2 {
			t.Fatalf("retried %v, want 2", b.count(metrics.CopyRetried))
		}
		testkit.WaitFor(t, waitLimit, "the job to leave the work queue", func() bool { return depth(t, b.q) == 0 })
	})

	t.Run("PermanentErrorIsDeadLetteredAtOnce", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 5})
		b.src.getErr = func(string) error { return transfer.Permanent(errors.New("AccessDenied")) }
		b.src.put("k", []byte("hello"), nil)
		if _, err := b.q.Publish(ctx, []transfer.Job{job("t", "k", "")}); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, waitLimit, "a dead letter", func() bool { return b.count(metrics.CopyFailed) == 1 })
		if n := b.count(metrics.CopyRetried); n != 0 {
			t.Fatalf("retried %v times, want none", n)
		}
		dl, _ := b.q.DeadLetters(ctx, transfer.DeadLetterFilter{}, 10)
		if len(dl) != 1 || !strings.Contains(dl[0].Error, "AccessDenied") || dl[0].Attempts != "1" {
			t.Fatalf("dead letters %+v", dl)
		}
	})

	// A job whose task a reload removed (or that a replica with an older
	// configuration takes) is not lost: handed back, no attempt spent,
	// until the task is there again.
	t.Run("JobOfAnUnknownTaskWaitsForItsTask", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{AckWait: time.Second, MaxAttempts: 1})
		b.src.put("k", []byte("hello"), nil)
		if _, err := b.q.Publish(ctx, []transfer.Job{job("t2", "k", "")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3500 * time.Millisecond) // three hand-backs
		if dl, err := b.q.DeadLetters(ctx, transfer.DeadLetterFilter{}, 10); err != nil || len(dl) != 0 {
			t.Fatalf("dead letters %+v, %v; want none", dl, err)
		}
		if n := depth(t, b.q); n != 1 {
			t.Fatalf("queue depth %d, want the job still there", n)
		}
		if n := b.count(metrics.CopyRetried) + b.count(metrics.CopyFailed); n != 0 {
			t.Fatalf("%v attempts spent, want none", n)
		}
		// The task comes back (a reload): the job is copied, with its one
		// attempt unspent.
		b.tasks.set(map[string]*transfer.TaskRuntime{
			"t": b.tasks.Tasks()["t"],
			"t2": {Task: &transfer.Task{Name: "t2", Source: transfer.SourceConfig{Bucket: "src"}, Destination: transfer.DestinationConfig{Prefix: "two/"}},
				Source: b.src, Destination: b.dst},
		})
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { _, ok := b.dst.object("two/k"); return ok })
		testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
	})

	// Past the grace, it is dead-lettered with a cause that says why, never
	// acknowledged away.
	t.Run("JobOfAnUnknownTaskIsDeadLetteredAfterTheGrace", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{AckWait: time.Second}, bedOptions{unknownTaskGrace: 1500 * time.Millisecond})
		if _, err := b.q.Publish(ctx, []transfer.Job{job("other", "k", "")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if dl, _ := b.q.DeadLetters(ctx, transfer.DeadLetterFilter{}, 10); len(dl) != 0 {
			t.Fatalf("dead-lettered within the grace: %+v", dl)
		}
		testkit.WaitFor(t, waitLimit, "a dead letter", func() bool { dl, _ := b.q.DeadLetters(ctx, transfer.DeadLetterFilter{}, 10); return len(dl) == 1 })
		dl, _ := b.q.DeadLetters(ctx, transfer.DeadLetterFilter{}, 10)
		if !strings.Contains(dl[0].Error, `no task named "other" is configured (removed from the configuration?)`) ||
			!strings.Contains(dl[0].Error, "redrive it once the task is configured again") || dl[0].Job.Key != "k" {
			t.Fatalf("dead letter %+v", dl[0])
		}
		testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
	})
}

var _ io.Reader = (*bytes.Reader)(nil)
