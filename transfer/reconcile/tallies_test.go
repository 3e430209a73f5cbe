package reconcile_test

import (
	"context"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

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
	putGiant(t, e, "giant", 7)
	r := startReplica(t, e, ns.ClientURL(), true)
	ctx := context.Background()

	st := runWith(t, r, reconcile.Options{})
	if st.Error != "" || st.Jobs != 4 || st.Queued != 4 {
		t.Fatalf("copy run: %+v", st)
	}
	st = waitCopies(t, r.svc, st.ID)
	if st.Copied != 4 || st.Failed != 0 || st.Skipped != 0 || st.CopiesDoneBy != "tally" {
		t.Fatalf("copies of a run with a giant object: %+v, want copied 4 by tally", st)
	}
	assertExist(t, e, true, "not copied when the run said its copies were done", "backup/a", "backup/b", "backup/c", "backup/giant")

	// copy_all queues every object again, and the workers copy them all
	// (forced): the giant object is split into parts again, counted once.
	st = waitCopies(t, r.svc, runWith(t, r, reconcile.Options{Mode: reconcile.ModeCopyAll}).ID)
	if st.Jobs != 4 || st.Copied != 4 || st.Failed != 0 || st.CopiesDoneBy != "tally" {
		t.Fatalf("copy_all run: %+v", st)
	}

	// Every part of a second giant object fails for good: it counts as
	// one failure, not three.
	putGiant(t, e, "giant2", 8)
	e.emu.InjectFault(ossemu.Fault{API: "S3", Op: "UploadPart", Key: "backup/giant2", Status: 400, Code: "InvalidArgument"})
	st = waitCopies(t, r.svc, runWith(t, r, reconcile.Options{}).ID)
	if st.Jobs != 1 || st.Copied != 0 || st.Failed != 1 || st.CopiesDoneBy != "tally" {
		t.Fatalf("run with a failing giant object: %+v, want 1 job failed once", st)
	}
	// The object failed for good with its first dead-lettered part; the
	// others end in the dead-letter queue too, and change nothing.
	awaitDeadLetters(t, r, 3, "the giant object's 3 parts")
	time.Sleep(200 * time.Millisecond) // > Poll: every tally saved
	st, err := r.svc.Get(ctx, st.ID)
	if err != nil || st.Failed != 1 || st.Copied != 0 {
		t.Fatalf("after all 3 parts were dead-lettered: %+v, %v; want failed 1", st, err)
	}
}

// putGiant puts a source object of 15 MiB (3 parts of 5) made from seed.
func putGiant(t *testing.T, e *env, key string, seed uint64) {
	t.Helper()
	if _, err := e.emu.PutSynthetic("src", key, int64(15*transfer.MiB), seed, nil); err != nil {
		t.Fatal(err)
	}
}

// runWith starts a run of t1 with o on r and waits for its end.
func runWith(t *testing.T, r *replica, o reconcile.Options) reconcile.RunState {
	t.Helper()
	st, err := r.svc.Start(context.Background(), "t1", o, "test")
	if err != nil {
		t.Fatal(err)
	}
	return waitRun(t, r.svc, st.ID)
}

// awaitDeadLetters polls t1's dead-letter queue until it holds n jobs.
func awaitDeadLetters(t *testing.T, r *replica, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		dead, err := r.q.DeadLetters(context.Background(), transfer.DeadLetterFilter{Task: "t1"}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters: %d, want %s", len(dead), what)
		}
		time.Sleep(50 * time.Millisecond)
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
