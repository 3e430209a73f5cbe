package reconcile_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
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
}

func startReplicaWith(t *testing.T, e *env, url string, workers bool, o replicaOpts) *replica {
	t.Helper()
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	q, err := transfer.OpenQueue(context.Background(), transfer.QueueConfig{URL: url, AckWait: 2 * time.Second, MaxDeliver: 5}, log)
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
	var pub reconcile.Publisher = q
	if o.pub != nil {
		pub = o.pub(q)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := reconcile.NewService(ctx, q.JetStream(), pub, tasks, o.cfg, m, log)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{m: m, q: q, svc: svc, cancel: cancel, done: make(chan struct{})}
	if workers {
		w := transfer.NewWorkers(q, transfer.NewCopier(64*transfer.MiB, q.Checkpoints(), "w"), map[string]*transfer.TaskRuntime{e.task.Name: rt},
			transfer.WorkerConfig{Concurrency: 4, RetryBase: 50 * time.Millisecond, RetryMax: time.Second, ShutdownGrace: time.Second}, m, log)
		w.SetShardRunner(svc)
		if !o.deaf {
			w.SetJobObserver(svc)
		}
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

func TestServiceRunsShardsOnTheQueue(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 2)
	seed(t, e)
	e.put(t, "src", "dir1/x", "in a directory", nil)
	e.put(t, "dst", "backup/dir2/y", "only at the destination", nil)
	r := startReplica(t, e, ns.ClientURL(), true)
	ctx := context.Background()

	st, err := r.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Shards != 5 { // key ranges at the source keys' first bytes: a, b, c, d (d, dir1/x), g
		t.Errorf("shards = %d, want 5", st.Shards)
	}
	st = waitRun(t, r.svc, st.ID)
	if st.Error != "" || st.Listed != 10 || st.Missing != 2 || st.Different != 2 || st.Extraneous != 3 || st.Queued != 0 {
		t.Fatalf("report run: %+v", st)
	}
	if got := testutil.ToFloat64(r.m.ReconcileRuns.WithLabelValues("t1", metrics.RunSucceeded)); got != 1 {
		t.Errorf("reconcile_runs_total{succeeded} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.m.ReconcileObjects.WithLabelValues("t1", metrics.ReconcileListed)); got != 10 {
		t.Errorf("reconcile_objects_total{listed} = %v, want 10", got)
	}
	if got := testutil.ToFloat64(r.m.ReconcileLastSuccess.WithLabelValues("t1")); got < float64(st.Started.Unix()) {
		t.Errorf("reconcile_last_success_timestamp_seconds = %v", got)
	}
	var buf bytes.Buffer
	if err := r.svc.WriteReport(ctx, st.ID, &buf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 7 {
		t.Fatalf("report has %d lines, want 7:\n%s", n, buf.String())
	}
	for _, want := range []string{`"key":"dir1/x","result":"missing"`, `"key":"dir2/y","result":"extraneous"`, `"key":"c","result":"different"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %s:\n%s", want, buf.String())
		}
	}

	// Copy: the workers copy what the diff queued; a second diff is clean.
	st, err = r.svc.Start(ctx, "t1", reconcile.Options{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	st = waitRun(t, r.svc, st.ID)
	if st.Error != "" || st.Queued != 4 {
		t.Fatalf("copy run: %+v", st)
	}
	copyID := st.ID
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err = r.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
		if err != nil {
			t.Fatal(err)
		}
		st = waitRun(t, r.svc, st.ID)
		if st.Missing == 0 && st.Different == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("copies never landed: %+v", st)
		}
	}
	if st.Extraneous != 3 {
		t.Fatalf("after copies: %+v", st)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if st, _ = r.svc.Get(ctx, copyID); st.Copied == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("copy run's copies not counted: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Sync deletes the destination-only objects, and nothing else.
	st, err = r.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeSync, MaxDeletes: 10}, "test")
	if err != nil {
		t.Fatal(err)
	}
	st = waitRun(t, r.svc, st.ID)
	if st.Error != "" || st.Deleted != 3 {
		t.Fatalf("sync run: %+v", st)
	}
	for _, k := range []string{"backup/e", "backup/f", "backup/dir2/y"} {
		if e.exists(t, k) {
			t.Errorf("%s survived sync", k)
		}
	}
	for _, k := range []string{"backup/a", "backup/b", "backup/dir1/x", "other/a", "a"} {
		if !e.exists(t, k) {
			t.Errorf("sync deleted %s", k)
		}
	}
}

func TestOneRunPerTask(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 2)
	seed(t, e)
	// The shards' destination listings crawl (the plan probes only the
	// source): the first run is still going when the second asks.
	e.emu.InjectFault(ossemu.Fault{API: "S3", Op: "ListObjectsV2", Latency: time.Second, Times: 3})
	r1 := startReplica(t, e, ns.ClientURL(), true)
	r2 := startReplica(t, e, ns.ClientURL(), false)
	ctx := context.Background()
	st, err := r1.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r2.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
	var re *reconcile.RunningError
	if !errors.As(err, &re) || re.ID != st.ID {
		t.Fatalf("second start on another replica = %v, want RunningError{%s}", err, st.ID)
	}
	// Any replica answers for the run.
	waitRun(t, r2.svc, st.ID)
	if _, err := r2.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test"); err != nil {
		t.Fatalf("start after the run ended: %v", err)
	}
}

// A replica takes a shard and dies without a word: after AckWait the shard
// is delivered to another replica, which runs it to the end.
func TestShardOfADeadReplicaIsRedelivered(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 2)
	seed(t, e)
	coord := startReplica(t, e, ns.ClientURL(), false)
	ctx := context.Background()
	st, err := coord.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
	if err != nil {
		t.Fatal(err)
	}
	// The dead replica: it pulls every shard and never acknowledges.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	c, err := js.Consumer(ctx, transfer.JobStream, transfer.WorkerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	taken := 0
	for m := range batch.Messages() {
		if strings.Contains(string(m.Data()), `"kind":"reconcile"`) {
			taken++
		}
	}
	if taken != st.Shards {
		t.Fatalf("dead replica took %d of %d shards", taken, st.Shards)
	}
	nc.Close()
	startReplica(t, e, ns.ClientURL(), true) // the survivor
	st = waitRun(t, coord.svc, st.ID)
	if st.Error != "" || st.Listed != 9 || st.Missing != 1 || st.Different != 2 || st.Extraneous != 2 {
		t.Fatalf("run after redelivery: %+v", st)
	}
}

// The replica coordinating a run dies: its lock expires, and another
// replica adopts the run and finishes it.
func TestRunOfADeadCoordinatorIsAdopted(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 2)
	seed(t, e)
	dead := startReplica(t, e, ns.ClientURL(), false)
	ctx := context.Background()
	st, err := dead.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
	if err != nil {
		t.Fatal(err)
	}
	dead.cancel() // the coordinator stops renewing the lock
	dead.svc.Wait()
	survivor := startReplica(t, e, ns.ClientURL(), true)
	deadline := time.Now().Add(30 * time.Second)
	for {
		survivor.svc.Adopt(ctx)
		got, err := survivor.svc.Get(ctx, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Done {
			if got.Error != "" || got.Listed != 9 || got.Missing != 1 || got.Extraneous != 2 {
				t.Fatalf("adopted run: %+v", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run never adopted: %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitCopies polls a finished run until its status says its copy jobs have
// all ended.
func waitCopies(t *testing.T, svc *reconcile.Service, id string) reconcile.RunState {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := svc.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.CopiesDone {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: copies never done: %+v", id, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A replica whose tally ticker has not saved its counts yet still ends a
// copy wait by tally: before falling back on the idle queue it saves its
// own counts and sums again.
func TestCopyWaitCountsThisReplicasUnsavedTallies(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 1000)
	e.put(t, "src", "a", "one", nil)
	e.put(t, "src", "b", "two", nil)
	r := startReplicaWith(t, e, ns.ClientURL(), true, replicaOpts{
		cfg: reconcile.ServiceConfig{LockTTL: 3 * time.Second, Poll: 50 * time.Millisecond}, unsaved: true})
	st, err := r.svc.Start(context.Background(), "t1", reconcile.Options{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	st = waitCopies(t, r.svc, waitRun(t, r.svc, st.ID).ID)
	if st.Jobs != 2 || st.Copied != 2 || st.CopiesDoneBy != "tally" {
		t.Fatalf("copy wait: %+v, want 2 copied by tally", st)
	}
}

// A giant object's job is split into part jobs; the run counts the object
// once, as copied when the part that completes its upload ends, and as
// failed once however many of its parts are dead-lettered. Its status says
// when every copy job it queued has ended.
func TestRunCountsAGiantObjectOnce(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 1000)
	e.task.Options.PartSize = 5 * transfer.MiB
	e.task.Options.MultipartThreshold = 6 * transfer.MiB
	e.task.Options.GiantThreshold = 10 * transfer.MiB
	e.put(t, "src", "a", "small", nil)
	e.put(t, "src", "b", "small too", nil)
	e.put(t, "src", "c", "already there", nil)
	e.put(t, "dst", "backup/c", "stale", nil) // different: queued, copied
	// 3 parts
	if _, err := e.emu.PutSynthetic("src", "giant", int64(15*transfer.MiB), 7, nil); err != nil {
		t.Fatal(err)
	}
	r := startReplica(t, e, ns.ClientURL(), true)
	ctx := context.Background()

	st, err := r.svc.Start(ctx, "t1", reconcile.Options{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	st = waitRun(t, r.svc, st.ID)
	if st.Error != "" || st.Jobs != 4 || st.Queued != 4 {
		t.Fatalf("copy run: %+v", st)
	}
	st = waitCopies(t, r.svc, st.ID)
	if st.Copied != 4 || st.Failed != 0 || st.Skipped != 0 || st.CopiesDoneBy != "tally" {
		t.Fatalf("copies of a run with a giant object: %+v, want copied 4 by tally", st)
	}
	for _, k := range []string{"backup/a", "backup/b", "backup/c", "backup/giant"} {
		if !e.exists(t, k) {
			t.Errorf("%s not copied when the run said its copies were done", k)
		}
	}

	// copy_all queues every object again, and the workers copy them all
	// (forced): the giant object is split into parts again, counted once.
	st, err = r.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeCopyAll}, "test")
	if err != nil {
		t.Fatal(err)
	}
	st = waitCopies(t, r.svc, waitRun(t, r.svc, st.ID).ID)
	if st.Jobs != 4 || st.Copied != 4 || st.Failed != 0 || st.CopiesDoneBy != "tally" {
		t.Fatalf("copy_all run: %+v", st)
	}

	// Every part of a second giant object fails for good: it counts as
	// one failure, not three.
	if _, err := e.emu.PutSynthetic("src", "giant2", int64(15*transfer.MiB), 8, nil); err != nil {
		t.Fatal(err)
	}
	e.emu.InjectFault(ossemu.Fault{API: "S3", Op: "UploadPart", Key: "backup/giant2", Status: 400, Code: "InvalidArgument"})
	st, err = r.svc.Start(ctx, "t1", reconcile.Options{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	st = waitCopies(t, r.svc, waitRun(t, r.svc, st.ID).ID)
	if st.Jobs != 1 || st.Copied != 0 || st.Failed != 1 || st.CopiesDoneBy != "tally" {
		t.Fatalf("run with a failing giant object: %+v, want 1 job failed once", st)
	}
	// The object failed for good with its first dead-lettered part; the
	// others end in the dead-letter queue too, and change nothing.
	deadline := time.Now().Add(60 * time.Second)
	for {
		dead, err := r.q.DeadLetters(ctx, transfer.DeadLetterFilter{Task: "t1"}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters: %d, want the giant object's 3 parts", len(dead))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // > Poll: every tally saved
	if st, err = r.svc.Get(ctx, st.ID); err != nil || st.Failed != 1 || st.Copied != 0 {
		t.Fatalf("after all 3 parts were dead-lettered: %+v, %v; want failed 1", st, err)
	}
}

// Where the ends of a run's jobs go uncounted, its copies are still done
// once the work queue has stayed empty for two polls: the wait for them
// never hangs.
func TestCopiesDoneWhenTheQueueIsIdleThoughEndsWentUncounted(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 1000)
	seed(t, e)
	r := startReplicaWith(t, e, ns.ClientURL(), true, replicaOpts{deaf: true,
		cfg: reconcile.ServiceConfig{LockTTL: 3 * time.Second, Poll: 50 * time.Millisecond}})
	ctx := context.Background()
	st, err := r.svc.Start(ctx, "t1", reconcile.Options{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	st = waitCopies(t, r.svc, waitRun(t, r.svc, st.ID).ID)
	if st.Jobs != 3 || st.Copied+st.Failed+st.Skipped != 0 || st.CopiesDoneBy != "idle_queue" {
		t.Fatalf("run whose ends were not counted: %+v, want 3 jobs done by idle_queue", st)
	}
	for _, k := range []string{"backup/b", "backup/c", "backup/d"} {
		if !e.exists(t, k) {
			t.Errorf("%s not copied when the queue was idle", k)
		}
	}
}
