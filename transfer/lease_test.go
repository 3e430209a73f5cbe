package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// TestLeases holds how a multipart copy's worker keeps it (a heartbeat in
// its checkpoint), gives it up, and how a copy whose worker died is
// noticed by its lease and resumed elsewhere, from its last part.
func TestLeases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("AWorkerThatKeepsCopyingKeepsItsLease", func(t *testing.T) {
		t.Parallel()
		cfg := multipartCopy
		cfg.Lease = time.Second
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: cfg, replicas: 2})
		data := randomBytes(16<<20, 31) // 4 parts
		b.src.put("big", data, nil)
		// Each part takes longer than a lease to read: only a heartbeat
		// between parts keeps the other replica from taking the copy
		// over.
		b.src.getWait = func(ctx context.Context, _ string) error {
			select {
			case <-time.After(2500 * time.Millisecond):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// Two jobs for the one version, one for each replica.
		first, second := job("t", "big", ""), job("t", "big", "")
		first.Nonce, second.Nonce = "a", "b"
		publish(t, b.q, first, second)
		b.waitDone("big", data)
		if n := b.dst.parts.Load(); n != 4 {
			t.Fatalf("%d parts uploaded for a 4-part object: the copy was taken over while its worker was alive", n)
		}
		if n := b.count(metrics.CopyCopied); n != 1 {
			t.Fatalf("copied %v times, want 1", n)
		}
	})

	t.Run("ExpiredLeaseIsResumedFromItsLastPartWithoutItsJob", func(t *testing.T) {
		t.Parallel()
		cfg := multipartCopy
		// The dead worker's heartbeat is a minute old; the resuming
		// worker's lease must outlast a slow, loaded machine, or its own
		// lease runs out too and is counted.
		cfg.Lease = 5 * time.Second
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: cfg, sweep: &transfer.SweeperConfig{Lease: cfg.Lease}})
		data := randomBytes(16<<20, 32) // 4 parts
		b.src.put("big", data, nil)
		// A worker died after parts 1 and 2, its job held by JetStream
		// until its ack wait: no job is in the queue.
		saveCheckpoint(t, b, "big", "dead-worker", time.Now().Add(-time.Minute), cfg, 1, 2)
		b.waitDone("big", data)
		if n := b.src.gets.Load(); n != 2 {
			t.Fatalf("%d source GETs, want the 2 parts not yet done", n)
		}
		if n := b.value("oss2s3_leases_expired_total"); n != 1 {
			t.Fatalf("expired leases counted %v, want 1", n)
		}
	})

	t.Run("ExpiredLeaseOfACopyAlreadyDoneIsForgotten", func(t *testing.T) {
		t.Parallel()
		cfg := multipartCopy
		cfg.Lease = time.Second
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: cfg, sweep: &transfer.SweeperConfig{Lease: cfg.Lease}})
		data := randomBytes(12<<20, 35)
		b.src.put("big", data, nil)
		// A worker completed the upload and died before it forgot the
		// checkpoint.
		info, _ := b.src.Head(ctx, "big")
		if err := b.dst.Put(ctx, "copy/big", bytes.NewReader(data), int64(len(data)), &transfer.WriteInfo{Source: info}); err != nil {
			t.Fatal(err)
		}
		cp, _ := saveCheckpoint(t, b, "big", "dead-worker", time.Now().Add(-time.Minute), cfg)
		testkit.WaitFor(t, waitLimit, "the checkpoint to be forgotten", func() bool {
			got, _, err := b.q.Checkpoints().Get(ctx, "t", "big", cp.ETag)
			return err == nil && got == nil
		})
		if b.dst.hasUpload(cp.UploadID) {
			t.Fatal("its upload is still open")
		}
		testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
		time.Sleep(3 * cfg.Lease) // sweeps that would find it again
		if n := b.value("oss2s3_leases_expired_total"); n != 1 {
			t.Fatalf("expired leases counted %v, want 1: it was found again", n)
		}
	})

	t.Run("ACopyHandedBackAtShutdownIsTakenOverAtOnce", func(t *testing.T) {
		t.Parallel()
		cfg := multipartCopy
		cfg.Lease = time.Hour // a lease left to run out would hold the test up
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: cfg, grace: 50 * time.Millisecond})
		data := randomBytes(16<<20, 33)
		b.src.put("big", data, nil)
		var gets, released atomic.Int32
		b.src.getWait = func(ctx context.Context, _ string) error {
			if released.Load() == 0 && gets.Add(1) > 2 { // the first replica reads two parts, then hangs
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}
		publish(t, b.q, job("t", "big", ""))
		testkit.WaitFor(t, waitLimit, "the first replica to be stuck in part 3", func() bool { return gets.Load() > 2 })
		b.stops[0]()
		released.Store(1)
		b.addReplica("w1")
		b.waitDone("big", data)
		// One redelivery, the hand-back: the second replica did not find
		// the copy busy.
		if n := b.value("oss2s3_job_redeliveries_total"); n != 1 {
			t.Fatalf("%v redeliveries, want 1: the lease was not given up", n)
		}
	})

	t.Run("SourceGoneAbortsItsUploads", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: multipartCopy})
		b.src.put("big", randomBytes(12<<20, 34), nil)
		cp, _ := saveCheckpoint(t, b, "big", "", time.Now(), multipartCopy, 1)
		b.src.del("big")
		publish(t, b.q, removeJob("big"))
		testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
		if b.dst.hasUpload(cp.UploadID) {
			t.Fatal("the upload of a deleted source object is still open")
		}
		if got, _, err := b.q.Checkpoints().Get(ctx, "t", "big", cp.ETag); err != nil || got != nil {
			t.Fatalf("checkpoint %+v, %v: want it gone", got, err)
		}
	})
}

// TestOrphanSweep: uploads oss2s3 started that no live copy owns are
// aborted once old enough; anyone else's, and live ones, are left alone.
func TestOrphanSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := multipartCopy
	cfg.GiantThreshold = 20 * transfer.MiB
	b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: cfg,
		sweep: &transfer.SweeperConfig{OrphanAge: time.Minute, OrphanEvery: 50 * time.Millisecond}})
	long := time.Now().Add(-time.Hour)
	for i, k := range []string{"crashed", "foreign", "given-up", "live", "giant", "litter"} {
		size := 12 << 20
		if k == "giant" {
			size = 21 << 20
		}
		b.src.put(k, randomBytes(size, uint64(40+i)), nil)
	}
	// A worker that died between creating the upload and saving its
	// checkpoint: only the note made before the upload says it is ours.
	crashed, err := b.dst.CreateUpload(ctx, "copy/crashed", &transfer.WriteInfo{Source: &transfer.ObjectInfo{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.q.Checkpoints().NotePending(ctx, "t", "copy/crashed", long.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	b.dst.backdate(crashed, long)
	// Someone else's upload under the same prefix.
	foreign, _ := b.dst.CreateUpload(ctx, "copy/foreign", &transfer.WriteInfo{Source: &transfer.ObjectInfo{}})
	b.dst.backdate(foreign, long)
	// A copy given up an hour ago (its job dead-lettered).
	givenUp, _ := saveCheckpoint(t, b, "given-up", "", long, cfg, 1)
	b.dst.backdate(givenUp.UploadID, long)
	// A copy whose worker is alive.
	live, _ := saveCheckpoint(t, b, "live", "live-worker", time.Now().Add(time.Hour), cfg, 1)
	b.dst.backdate(live.UploadID, long)
	// A giant upload none of whose parts was counted for an hour.
	giant, _ := saveUpload(t, b, "giant", "", true, long, cfg, 1)
	b.dst.backdate(giant.UploadID, long)
	// A checkpoint whose upload was completed by a worker that died
	// before it could forget it.
	litter, _ := saveCheckpoint(t, b, "litter", "", long, cfg)
	if err := b.dst.AbortUpload(ctx, litter.DstKey, litter.UploadID); err != nil {
		t.Fatal(err)
	}

	testkit.WaitFor(t, waitLimit, "three orphans aborted", func() bool { return b.value("oss2s3_orphan_uploads_aborted_total") == 3 })
	for id, open := range map[string]bool{crashed: false, foreign: true, givenUp.UploadID: false, live.UploadID: true} {
		if b.dst.hasUpload(id) != open {
			t.Errorf("upload %s open: %v, want %v", id, !open, open)
		}
	}
	// (The key is copied again, with an upload of its own.)
	if cp, _, _ := b.q.Checkpoints().Get(ctx, "t", "given-up", givenUp.ETag); cp != nil && cp.UploadID == givenUp.UploadID {
		t.Error("the given-up copy's checkpoint is still there")
	}
	testkit.WaitFor(t, waitLimit, "the checkpoint of an upload no longer open to be forgotten", func() bool {
		cp, _, err := b.q.Checkpoints().Get(ctx, "t", "litter", litter.ETag)
		return err == nil && cp == nil
	})
	if cp, _, _ := b.q.Checkpoints().Get(ctx, "t", "live", live.ETag); cp == nil {
		t.Error("the live copy's checkpoint was forgotten")
	}
	// The giant object's part jobs would have dropped themselves: it is
	// copied again from the start.
	data, _ := b.src.object("giant")
	b.waitDoneKeeping("giant", data, 2)
	// Whoever ended the litter's upload, its key is looked at again: the
	// object, which never reached the destination, is copied.
	data, _ = b.src.object("litter")
	b.waitDoneKeeping("litter", data, 2)
	data, _ = b.src.object("given-up")
	b.waitDoneKeeping("given-up", data, 2)
}

// TestASweeperDyingAsItAbortsAGiantUploadLosesNothing: the orphan sweeper
// aborts a stalled giant upload (its part jobs will drop themselves) and
// dies at once; the object is copied all the same, because the job that
// starts it again was queued before the abort.
func TestASweeperDyingAsItAbortsAGiantUploadLosesNothing(t *testing.T) {
	t.Parallel()
	cfg := multipartCopy
	cfg.GiantThreshold = 20 * transfer.MiB
	b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: cfg}) // its replica has no sweeper
	data := randomBytes(21<<20, 91)
	b.src.put("giant", data, nil)
	long := time.Now().Add(-time.Hour)
	giant, _ := saveUpload(t, b, "giant", "", true, long, cfg, 1)
	b.dst.backdate(giant.UploadID, long)

	ctx, die := context.WithCancel(context.Background())
	defer die()
	b.dst.onAbort = func(_, id string) {
		if id == giant.UploadID {
			die()
		}
	}
	s := transfer.NewSweeper(b.q, transfer.NewCopier(0, b.q.Checkpoints(), "sweeper"), b.tasks,
		transfer.SweeperConfig{OrphanAge: time.Minute, OrphanEvery: 10 * time.Millisecond}, b.m, testLogger(t))
	swept := make(chan struct{})
	go func() { defer close(swept); _ = s.Run(ctx) }()
	<-swept
	if b.dst.hasUpload(giant.UploadID) {
		t.Fatal("the stalled upload was not aborted")
	}
	b.waitDone("giant", data)
}

// TestAnUploadWhoseCreationWasNeverAnsweredIsAborted: S3 created an upload
// but its answer was lost; the job, retried, copies the object with
// another upload, and the orphan sweeper aborts the first, which only the
// note made before the request names.
func TestAnUploadWhoseCreationWasNeverAnsweredIsAborted(t *testing.T) {
	t.Parallel()
	b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: multipartCopy,
		sweep: &transfer.SweeperConfig{OrphanAge: 200 * time.Millisecond, OrphanEvery: 50 * time.Millisecond}})
	data := randomBytes(12<<20, 61)
	b.src.put("big", data, nil)
	var lost atomic.Bool
	b.dst.lostCreate = func(string) bool { return lost.CompareAndSwap(false, true) }
	publish(t, b.q, job("t", "big", ""))
	// At least one: the sweeper may also abort the retry's own upload in
	// the moment between its completion and its listing (harmless, S3
	// answers NoSuchUpload; the orphan age, 200 ms here, is 24 h in
	// production). waitDone holds what matters: the lost upload is gone.
	testkit.WaitFor(t, waitLimit, "the lost upload to be aborted", func() bool {
		return b.value("oss2s3_orphan_uploads_aborted_total") >= 1 && b.dst.openUploads() == 0
	})
	b.waitDone("big", data) // no upload left open, nothing dead-lettered
}

// TestAnUploadBroughtBackAfterItsAbortIsAbortedAgain: a part upload the
// destination was still finishing when the copy aborted its upload brings
// the upload back (the soak saw versitygw do it; S3 documents it); the
// orphan sweeper knows it is oss2s3's by the abort's note.
func TestAnUploadBroughtBackAfterItsAbortIsAbortedAgain(t *testing.T) {
	t.Parallel()
	b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: multipartCopy,
		sweep: &transfer.SweeperConfig{OrphanAge: 200 * time.Millisecond, OrphanEvery: 50 * time.Millisecond}})
	data := randomBytes(12<<20, 71)
	b.src.put("big", data, nil)
	var gets, parts atomic.Int32
	b.src.getErr = func(string) error {
		if gets.Add(1) == 2 { // the first attempt's second part: the source changed, the copy aborts its upload
			return fmt.Errorf("get: %w", transfer.ErrSourceChanged)
		}
		return nil
	}
	b.dst.partErr = func(key string, n int32) error {
		if parts.Add(1) == 1 { // the first part: the destination is still writing it when the abort lands
			b.dst.bringBack(key)
		}
		return nil
	}
	publish(t, b.q, job("t", "big", ""))
	testkit.WaitFor(t, waitLimit, "the upload brought back to be aborted again", func() bool {
		return b.value("oss2s3_orphan_uploads_aborted_total") >= 1 // see TestAnUploadWhoseCreationWasNeverAnsweredIsAborted
	})
	b.waitDone("big", data)
}

// TestAnUploadTheSweeperIsAbortingIsNotResumed: the job that copies a
// stalled giant object again is queued before the sweeper aborts its
// upload, and may run first; it must not resume that upload, whose abort
// is on its way (the parts it queued would be dropped, and the object
// never copied).
func TestAnUploadTheSweeperIsAbortingIsNotResumed(t *testing.T) {
	t.Parallel()
	cfg := multipartCopy
	cfg.GiantThreshold = 20 * transfer.MiB
	b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: cfg}) // its replica has no sweeper
	data := randomBytes(21<<20, 93)
	b.src.put("giant", data, nil)
	long := time.Now().Add(-time.Hour)
	giant, _ := saveUpload(t, b, "giant", "", true, long, cfg, 1, 2)
	b.dst.backdate(giant.UploadID, long)

	// The sweeper's abort is slow to land: it waits (up to 5 s) for the
	// object to be copied.
	var first atomic.Bool
	b.dst.beforeAbort = func(key, id string) {
		if id != giant.UploadID || !first.CompareAndSwap(false, true) {
			return
		}
		testkit.Eventually(5*time.Second, 10*time.Millisecond, func() bool { _, ok := b.dst.object(key); return ok })
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := transfer.NewSweeper(b.q, transfer.NewCopier(0, b.q.Checkpoints(), "sweeper"), b.tasks,
		transfer.SweeperConfig{OrphanAge: time.Minute, OrphanEvery: 50 * time.Millisecond}, b.m, testLogger(t))
	go func() { _ = s.Run(ctx) }()
	b.waitDone("giant", data)
	b.dst.mu.Lock()
	defer b.dst.mu.Unlock()
	if len(b.dst.completed) != 1 || b.dst.completed[0] == giant.UploadID {
		t.Fatalf("completed uploads %v: the one being aborted, %s, was resumed", b.dst.completed, giant.UploadID)
	}
}

// TestTwoCopiesOfOneVersionInOneProcessDoNotShareTheLease: a retry and a
// new event's job of the same version, in one process, at once: the second
// finds the upload busy, rather than taking the lease the first holds as
// if it were its own (both would upload parts, and one's late parts land
// after the other completed the upload: the soak saw versitygw bring an
// upload back that way).
func TestTwoCopiesOfOneVersionInOneProcessDoNotShareTheLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := openQueue(t, transfer.QueueConfig{})
	src, dst := newMemSource(), newMemDest()
	src.put("big", randomBytes(12<<20, 95), nil)
	info, err := src.Head(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var gets atomic.Int32
	src.getWait = func(ctx context.Context, _ string) error {
		gets.Add(1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := transfer.NewCopier(0, q.Checkpoints(), "one-process")
	o := transfer.Object{Task: "t", Src: src, Dst: dst, Info: info, DstKey: "copy/big", Write: &transfer.WriteInfo{Source: info}}
	first := make(chan error, 1)
	go func() { _, err := c.Copy(ctx, o, multipartCopy); first <- err }()
	testkit.WaitFor(t, waitLimit, "the first copy in its parts", func() bool { return gets.Load() > 0 })

	second := make(chan error, 1)
	go func() { _, err := c.Copy(ctx, o, multipartCopy); second <- err }()
	select {
	case err := <-second:
		if !errors.Is(err, transfer.ErrBusy) {
			t.Fatalf("second copy: %v, want ErrBusy", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second copy took the first one's lease and is copying parts too")
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}
