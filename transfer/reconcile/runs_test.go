package reconcile_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

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
	// Key ranges at the source keys' first bytes, a, b, c, d (d, dir1/x)
	// and g; fewer than the shards wanted, so g is cut again at g1..g5.
	if st.Shards != 9 {
		t.Errorf("shards = %d, want 9", st.Shards)
	}
	st = waitRun(t, r.svc, st.ID)
	if st.Error != "" || st.Listed != 10 || st.Missing != 2 || st.Different != 2 || st.Extraneous != 3 || st.Queued != 0 {
		t.Fatalf("report run: %+v", st)
	}
	assertReportRunCounted(t, r, st)
	assertReportRunReport(t, r, st)

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
	// A run over the whole bucket knows its total from the bucket's stat
	// (here exact: the listing finds what the stat counted).
	if st.SourceObjects != 10 || st.SourceBytes != st.ListedBytes || st.ListedBytes == 0 {
		t.Fatalf("copy run's totals: %d objects, %d bytes; listed %d, %d bytes", st.SourceObjects, st.SourceBytes, st.Listed, st.ListedBytes)
	}
	// b, c, d and dir1/x: 7 + 11 + 10 + 14 bytes.
	if st.QueuedBytes != 42 {
		t.Fatalf("copy run queued %d bytes, want 42", st.QueuedBytes)
	}
	st = reportUntilClean(t, r)
	if st.Extraneous != 3 {
		t.Fatalf("after copies: %+v", st)
	}
	awaitCopied(t, r, copyID, 4)
	assertCopyRunDone(t, r, copyID)

	// Sync deletes the destination-only objects, and nothing else.
	st, err = r.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeSync, MaxDeletes: 10}, "test")
	if err != nil {
		t.Fatal(err)
	}
	st = waitRun(t, r.svc, st.ID)
	if st.Error != "" || st.Deleted != 3 {
		t.Fatalf("sync run: %+v", st)
	}
	assertExist(t, e, false, "survived sync", "backup/e", "backup/f", "backup/dir2/y")
	assertExist(t, e, true, "deleted by sync", "backup/a", "backup/b", "backup/dir1/x", "other/a", "a")
}

// assertReportRunCounted checks the metrics of the report run st.
func assertReportRunCounted(t *testing.T, r *replica, st reconcile.RunState) {
	t.Helper()
	if got := testutil.ToFloat64(r.m.ReconcileRuns.WithLabelValues("t1", metrics.RunSucceeded)); got != 1 {
		t.Errorf("reconcile_runs_total{succeeded} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.m.ReconcileObjects.WithLabelValues("t1", metrics.ReconcileListed)); got != 10 {
		t.Errorf("reconcile_objects_total{listed} = %v, want 10", got)
	}
	if got := testutil.ToFloat64(r.m.ReconcileLastSuccess.WithLabelValues("t1")); got < float64(st.Started.Unix()) {
		t.Errorf("reconcile_last_success_timestamp_seconds = %v", got)
	}
}

// assertReportRunReport checks the report of the report run st.
func assertReportRunReport(t *testing.T, r *replica, st reconcile.RunState) {
	t.Helper()
	var buf bytes.Buffer
	if err := r.svc.WriteReport(context.Background(), st.ID, &buf); err != nil {
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
}

// reportUntilClean runs report runs until one finds nothing missing or
// different (the copies landed), and returns it.
func reportUntilClean(t *testing.T, r *replica) reconcile.RunState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := r.svc.Start(context.Background(), "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
		if err != nil {
			t.Fatal(err)
		}
		st = waitRun(t, r.svc, st.ID)
		if st.Missing == 0 && st.Different == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("copies never landed: %+v", st)
		}
	}
}

// awaitCopied polls run id until its status counts n copies.
func awaitCopied(t *testing.T, r *replica, id string, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := r.svc.Get(context.Background(), id)
		if st.Copied == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("copy run's copies not counted: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertExist checks that each destination key exists (or, if !exist,
// does not); failing, it says the key was why.
func assertExist(t *testing.T, e *env, exist bool, why string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if e.exists(t, k) != exist {
			t.Errorf("%s %s", k, why)
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

// TestServiceListsRunsNewestFirst: List gives a task's runs newest first,
// as Get shows them, at most limit, and none of a task that had none.
func TestServiceListsRunsNewestFirst(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 2)
	seed(t, e)
	r := startReplica(t, e, ns.ClientURL(), true)
	ctx := context.Background()
	if runs, err := r.svc.List(ctx, "", 10); err != nil || len(runs) != 0 {
		t.Fatalf("before any run: %v, %v", runs, err)
	}
	var ids []string
	for range 3 {
		st, err := r.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
		if err != nil {
			t.Fatal(err)
		}
		waitRun(t, r.svc, st.ID)
		ids = append(ids, st.ID)
		time.Sleep(1100 * time.Millisecond) // ids begin with the start time, in seconds
	}
	runs, err := r.svc.List(ctx, "t1", 2)
	if err != nil {
		t.Fatal(err)
	}
	last, err := r.svc.Get(ctx, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ID != ids[2] || runs[1].ID != ids[1] || !runs[0].Done || runs[0].Counts != last.Counts {
		t.Errorf("List(t1, 2) = %+v, want runs %s and %s, done", runs, ids[2], ids[1])
	}
	if all, err := r.svc.List(ctx, "", 10); err != nil || len(all) != 3 {
		t.Errorf("List(\"\", 10): %d runs, %v", len(all), err)
	}
	if none, err := r.svc.List(ctx, "other", 10); err != nil || len(none) != 0 {
		t.Errorf("List(other): %v, %v", none, err)
	}
}

// assertCopyRunDone checks the progress of the copy run id whose copies
// all ended: both phases and the run at 100%, nothing left.
func assertCopyRunDone(t *testing.T, r *replica, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := r.svc.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		p := st.Progress
		if p.Phase == reconcile.PhaseDone {
			if st.BytesDone != 42 || p.Copies.Bytes != 42 || p.Copies.BytesTotal != 42 || p.Listing.Objects != 10 ||
				p.Listing.ObjectsTotal != 10 || *p.Percent != 100 || *p.ETASeconds != 0 || *p.Copies.Percent != 100 {
				t.Fatalf("progress of a run done: %+v; copies %+v", p, p.Copies)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("copy run's progress not done: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A task's reconcile.shards says how many key ranges a run is cut into:
// three here (of the source keys' first bytes a, b, c, d and g), not the
// nine of the default.
func TestTaskSetsTheShardsOfItsRuns(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 2)
	seed(t, e)
	e.task.Reconcile.Shards = 3
	r := startReplica(t, e, ns.ClientURL(), true)
	st, err := r.svc.Start(context.Background(), "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Shards != 3 {
		t.Errorf("shards = %d, want 3", st.Shards)
	}
	st = waitRun(t, r.svc, st.ID)
	if st.Error != "" || st.Listed != 9 || st.Missing != 1 || st.Different != 2 || st.Extraneous != 2 {
		t.Fatalf("run: %+v", st)
	}
}
