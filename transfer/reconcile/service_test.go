package reconcile_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// replica is one oss2s3 process's queue, workers and reconciler.
type replica struct {
	m      *metrics.Metrics
	q      *transfer.Queue
	js     jetstream.JetStream // the reconciler's, as the server makes it
	svc    *reconcile.Service
	cancel context.CancelFunc
	done   chan struct{}
}

func startReplica(t *testing.T, e *env, url string, workers bool) *replica {
	t.Helper()
	return startReplicaWith(t, e, url, workers, replicaOpts{cfg: reconcile.ServiceConfig{LockTTL: 3 * time.Second, Poll: 50 * time.Millisecond}})
}

// replicaOpts varies a replica: its reconciler's config, listers wrapped
// (tap, if set), and the queue its reconciler publishes to (pub, if set).
type replicaOpts struct {
	cfg reconcile.ServiceConfig
	// deaf: the workers do not tell the reconciler how jobs end.
	deaf bool
	// unsaved: the replica never saves its tallies on its own (no
	// SaveTallies ticker), as when that ticker falls behind.
	unsaved bool
	tap     func(side string, l reconcile.Lister) reconcile.Lister
	pub     func(q *transfer.Queue) reconcile.Publisher
	// list: the task's prefix list (source.prefix_list), read through
	// the task's clients.
	list string
	// tasks, if set, is where the reconciler and the workers read the
	// tasks (a test replaces them, as a reload does); it starts with the
	// env's task.
	tasks *swapTasks
}

// swapTasks is a task set a test replaces while the replica runs, as a
// configuration reload does: the reconciler's reconcile.Tasks and the
// workers' transfer.TaskSet.
type swapTasks struct {
	mu       sync.Mutex
	sides    map[string]*reconcile.TaskSides
	replaced chan struct{}
}

func (s *swapTasks) Current() (map[string]*reconcile.TaskSides, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sides, s.replaced
}

func (s *swapTasks) Tasks() map[string]*transfer.TaskRuntime {
	sides, _ := s.Current()
	out := map[string]*transfer.TaskRuntime{}
	for name, ts := range sides {
		out[name] = ts.Runtime
	}
	return out
}

func (s *swapTasks) set(sides map[string]*reconcile.TaskSides) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replaced != nil {
		close(s.replaced)
	}
	s.sides, s.replaced = sides, make(chan struct{})
}

func startReplicaWith(t *testing.T, e *env, url string, workers bool, o replicaOpts) *replica {
	t.Helper()
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	q, err := transfer.OpenQueue(context.Background(), transfer.QueueConfig{URL: url, AckWait: 2 * time.Second, MaxAttempts: 5}, log)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry(), []string{e.task.Name})
	rt := &transfer.TaskRuntime{Task: e.task, Source: e.src, Destination: e.dst}
	var src, dst reconcile.Lister = &reconcile.OSSLister{Bucket: e.src.Bucket(), PageSize: e.page},
		&reconcile.S3Lister{Client: e.dst.Client(), Bucket: "dst", PageSize: e.page}
	if o.tap != nil {
		src, dst = o.tap("source", src), o.tap("destination", dst)
	}
	tasks := map[string]*reconcile.TaskSides{e.task.Name: {Runtime: rt, Src: src, Dst: dst}}
	if o.list != "" {
		l, err := reconcile.NewPrefixList(o.list, e.src, e.dst)
		if err != nil {
			t.Fatal(err)
		}
		tasks[e.task.Name].List = l
	}
	var pub reconcile.Publisher = q
	if o.pub != nil {
		pub = o.pub(q)
	}
	js, err := jetstream.New(q.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var rtasks reconcile.Tasks = reconcile.StaticTasks(tasks)
	var wtasks transfer.TaskSet = transfer.StaticTasks{e.task.Name: rt}
	if o.tasks != nil {
		o.tasks.set(tasks)
		rtasks, wtasks = o.tasks, o.tasks
	}
	svc, err := reconcile.NewService(ctx, js, pub, rtasks, o.cfg, m, log)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{m: m, q: q, js: js, svc: svc, cancel: cancel, done: make(chan struct{})}
	if workers {
		wcfg := transfer.WorkerConfig{Concurrency: 4, RetryBase: 50 * time.Millisecond, RetryMax: time.Second, ShutdownGrace: time.Second,
			Kinds: map[string]transfer.JobWorker{transfer.KindReconcile: transfer.JobWorkerFunc(svc.RunShard)}}
		if !o.deaf {
			wcfg.Observer = svc
		}
		w := transfer.NewWorkers(q, transfer.NewCopier(64*transfer.MiB, q.Checkpoints(), "w"), wtasks, wcfg, m, log)
		if !o.unsaved {
			go svc.SaveTallies(ctx)
		}
		go func() { defer close(r.done); _ = w.Run(ctx) }()
	} else {
		close(r.done)
	}
	t.Cleanup(func() { r.cancel(); <-r.done; svc.Wait(); q.Close() })
	return r
}

func waitRun(t *testing.T, svc *reconcile.Service, id string) reconcile.RunState {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := svc.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Done {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not done: %+v", id, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
