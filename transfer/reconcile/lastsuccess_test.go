package reconcile_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// run starts a report run of t1 on r and waits for its end.
func run(t *testing.T, r *replica) reconcile.RunState {
	t.Helper()
	st, err := r.svc.Start(context.Background(), "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return waitRun(t, r.svc, st.ID)
}

// lastSuccess is r's oss2s3_reconcile_last_success_timestamp_seconds of
// t1, and whether the series exists at all.
func lastSuccess(t *testing.T, r *replica) (float64, bool) {
	t.Helper()
	if testutil.CollectAndCount(r.m.ReconcileLastSuccess) == 0 {
		return 0, false
	}
	return testutil.ToFloat64(r.m.ReconcileLastSuccess.WithLabelValues("t1")), true
}

// awaitLastSuccess polls r's gauge until it is want (absent if want is 0).
func awaitLastSuccess(t *testing.T, r *replica, want float64, why string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, ok := lastSuccess(t, r)
		if want == 0 && !ok || ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last success = %v (present %v), want %v", why, got, ok, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func assertLastSuccess(t *testing.T, r *replica, want float64, why string) {
	t.Helper()
	got, ok := lastSuccess(t, r)
	if want == 0 && ok || want != 0 && (!ok || got != want) {
		t.Fatalf("%s: last success = %v (present %v), want %v", why, got, ok, want)
	}
}

// The last-success gauge is the newest successful run the runs bucket
// records: a replica that starts (a restart) exports it before running
// anything, a failed run after it changes nothing, every replica learns a
// success another replica finished, and a purged run gives way to the
// newest success still recorded.
func TestLastSuccessIsTheNewestSuccessRecorded(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 2)
	seed(t, e)
	ctx := context.Background()
	first := startReplica(t, e, ns.ClientURL(), true)
	second := startReplica(t, e, ns.ClientURL(), false) // coordinates nothing
	assertLastSuccess(t, first, 0, "before any run")

	fail := func() {
		t.Helper()
		e.emu.InjectFault(ossemu.Fault{API: "S3", Op: "ListObjectsV2", Status: http.StatusForbidden, Code: "AccessDenied"})
		defer e.emu.ClearFaults()
		if st := run(t, first); st.Error == "" {
			t.Fatalf("run with a forbidden destination listing succeeded: %+v", st)
		}
	}
	fail()
	assertLastSuccess(t, first, 0, "after a failed run only")
	if got := testutil.ToFloat64(first.m.ReconcileRuns.WithLabelValues("t1", metrics.RunFailed)); got != 1 {
		t.Fatalf("failed runs = %v, want 1", got)
	}

	ok := run(t, first)
	if ok.Error != "" {
		t.Fatalf("run: %+v", ok)
	}
	want := float64(ok.Finished.Unix())
	assertLastSuccess(t, first, want, "on the replica that ran it")
	awaitLastSuccess(t, second, want, "on the other replica")

	fail() // newer, and failed
	assertLastSuccess(t, first, want, "after a newer failed run")

	restarted := startReplica(t, e, ns.ClientURL(), false)
	assertLastSuccess(t, restarted, want, "on a replica started after the run")
	for _, res := range []string{metrics.RunSucceeded, metrics.RunFailed} {
		if got := testutil.ToFloat64(restarted.m.ReconcileRuns.WithLabelValues("t1", res)); got != 0 {
			t.Fatalf("the restarted replica finished %v %s runs itself", got, res)
		}
	}

	// An older success, recorded by another replica, does not move the
	// gauge back; once the newer one is purged, it takes its place.
	kv, err := first.js.KeyValue(ctx, reconcile.RunsBucket)
	if err != nil {
		t.Fatal(err)
	}
	older := reconcile.RunState{ID: "20260101T000000Z-0123456789ab", Task: "t1", Mode: reconcile.ModeReport, Owner: "elsewhere",
		Started: ok.Finished.Add(-2 * time.Hour), Finished: ok.Finished.Add(-time.Hour), Done: true}
	raw, err := json.Marshal(older)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "run."+older.ID, raw); err != nil {
		t.Fatal(err)
	}
	check := startReplica(t, e, ns.ClientURL(), false) // it reads both
	assertLastSuccess(t, check, want, "with an older success recorded too")
	if err := kv.Purge(ctx, "run."+ok.ID); err != nil {
		t.Fatal(err)
	}
	wantOlder := float64(older.Finished.Unix())
	for _, r := range []*replica{first, second, restarted, check} {
		awaitLastSuccess(t, r, wantOlder, "after the newest success was purged")
	}
	assertLastSuccess(t, startReplica(t, e, ns.ClientURL(), false), wantOlder, "restarted after the purge")

	if err := kv.Delete(ctx, "run."+older.ID); err != nil {
		t.Fatal(err)
	}
	awaitLastSuccess(t, first, 0, "with no success recorded")
	assertLastSuccess(t, startReplica(t, e, ns.ClientURL(), false), 0, "restarted with no success recorded")
}
