package transfer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/crc64"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer"
)

// saveCheckpoint plays another worker that started a multipart copy of key
// (as the bed's task copies it with cfg): its upload is open, parts done
// are in it, and the checkpoint says owner last renewed its lease at
// heartbeat.
func saveCheckpoint(t *testing.T, b *workerBed, key, owner string, heartbeat time.Time, cfg transfer.CopyConfig, done ...int32) (*transfer.Checkpoint, uint64) {
	t.Helper()
	return saveUpload(t, b, key, owner, false, heartbeat, cfg, done...)
}

// saveUpload is saveCheckpoint, also for a giant upload (its parts are
// jobs; no owner).
func saveUpload(t *testing.T, b *workerBed, key, owner string, giant bool, heartbeat time.Time, cfg transfer.CopyConfig, done ...int32) (*transfer.Checkpoint, uint64) {
	t.Helper()
	ctx := context.Background()
	info, err := b.src.Head(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := b.src.object(key)
	partSize := transfer.PartSizeFor(cfg.PartSize, info.Size)
	dstKey := "copy/" + key
	id, err := b.dst.CreateUpload(ctx, dstKey, &transfer.WriteInfo{Source: info})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(info)
	cp := &transfer.Checkpoint{Task: "t", Key: key, DstKey: dstKey, ETag: info.ETag, Size: info.Size, PartSize: partSize,
		TotalParts: int((info.Size + partSize - 1) / partSize), UploadID: id, Owner: owner, Heartbeat: heartbeat,
		Created: heartbeat, Info: raw, Parts: map[int32]transfer.Part{}, Giant: giant, Done: len(done)}
	// The parts first: a sweeper that sees the checkpoint sees them too.
	for _, n := range done {
		off := int64(n-1) * partSize
		chunk := data[off:min(off+partSize, int64(len(data)))]
		p, err := b.dst.UploadPart(ctx, dstKey, id, n, chunk)
		if err != nil {
			t.Fatal(err)
		}
		p.CRC64 = crc64.Checksum(chunk, crc64.MakeTable(crc64.ECMA))
		if _, err := b.q.Checkpoints().SavePart(ctx, cp, p); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := b.q.Checkpoints().Save(ctx, cp, 0)
	if err != nil {
		t.Fatal(err)
	}
	return cp, rev
}

func (b *workerBed) deadLetters() []transfer.DeadLetter {
	b.t.Helper()
	dl, err := b.q.DeadLetters(context.Background(), transfer.DeadLetterFilter{}, 100)
	if err != nil {
		b.t.Fatal(err)
	}
	return dl
}

// waitDone waits until key is in the destination with data and nothing is
// left in the queue, and checks nothing was dead-lettered or left open.
func (b *workerBed) waitDone(key string, data []byte) {
	b.t.Helper()
	b.waitDoneKeeping(key, data, 0)
}

// waitDoneKeeping is waitDone where open uploads are left on purpose.
func (b *workerBed) waitDoneKeeping(key string, data []byte, open int) {
	b.t.Helper()
	testkit.WaitFor(b.t, waitLimit, "the copy of "+key, func() bool { got, ok := b.dst.object("copy/" + key); return ok && bytes.Equal(got, data) })
	testkit.WaitFor(b.t, waitLimit, "an empty queue", func() bool { return depth(b.t, b.q) == 0 })
	if dl := b.deadLetters(); len(dl) != 0 {
		b.t.Fatalf("dead letters: %+v", dl)
	}
	if n := b.dst.openUploads(); n != open {
		b.t.Fatalf("%d uploads left open, want %d", n, open)
	}
}

// shardStub runs reconcile shards: the first call waits for shutdown, the
// others return fail.
type shardStub struct {
	calls atomic.Int32
	fail  error
}

func (s *shardStub) RunShard(ctx context.Context, _ transfer.Job, _ *slog.Logger) error {
	if s.calls.Add(1) == 1 && s.fail == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.fail
}

// TestAttempts holds the rule that only real failures spend a job's
// attempts: waiting for a busy object, a hand-back at shutdown and a job
// the queue itself stopped delivering all end in the job done, never in a
// job left undelivered and not dead-lettered. Each case gives the job a
// single attempt, so that a wait counted as one would end it.
func TestAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("WaitingForABusyObjectSpendsNoAttempt", func(t *testing.T) {
		t.Parallel()
		cfg := multipartCopy
		cfg.Lease = 400 * time.Millisecond
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 1}, bedOptions{copy: cfg})
		data := randomBytes(12<<20, 21)
		b.src.put("big", data, nil)
		cp, rev := saveCheckpoint(t, b, "big", "other-worker", time.Now(), cfg)
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() { // the other worker, alive: it renews its lease
			defer close(stopped)
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				cp.Heartbeat = time.Now()
				if r, err := b.q.Checkpoints().Save(ctx, cp, rev); err == nil {
					rev = r
				}
			}
		}()
		publish(t, b.q, job("t", "big", ""))
		testkit.WaitFor(t, waitLimit, "the job to find the object busy three times", func() bool {
			return b.value("oss2s3_job_redeliveries_total") >= 2
		})
		close(stop)
		<-stopped
		// The other worker is gone: its lease runs out and the job, its
		// one attempt unspent, takes the copy over.
		b.waitDone("big", data)
	})

	t.Run("ShutdownOnTheLastAttemptHandsTheJobBack", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 1}, bedOptions{grace: 50 * time.Millisecond})
		data := []byte("copied by the second replica")
		b.src.put("k", data, nil)
		var held, released atomic.Bool
		b.src.getWait = func(ctx context.Context, _ string) error {
			if !released.Load() { // the first replica's GETs: until shutdown
				held.Store(true)
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}
		publish(t, b.q, job("t", "k", ""))
		testkit.WaitFor(t, waitLimit, "the first replica to hold the copy", held.Load)
		b.stops[0]()
		if _, ok := b.dst.object("copy/k"); ok {
			t.Fatal("the first replica copied the object: nothing was handed back")
		}
		released.Store(true)
		b.addReplica("w1")
		b.waitDone("k", data)
	})

	t.Run("ShardOnTheLastAttemptIsHandedBackAtShutdown", func(t *testing.T) {
		t.Parallel()
		shards := &shardStub{}
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 1}, bedOptions{shards: shards, grace: 50 * time.Millisecond})
		publish(t, b.q, transfer.Job{Task: "t", Kind: transfer.KindReconcile, Nonce: "reconcile-r1-1", ObjectArgs: transfer.ObjectArgs{Bucket: "src", Key: "shard-1"}})
		testkit.WaitFor(t, waitLimit, "the first replica to run the shard", func() bool { return shards.calls.Load() == 1 })
		b.stops[0]()
		b.addReplica("w1")
		testkit.WaitFor(t, waitLimit, "the shard to run again", func() bool { return shards.calls.Load() == 2 })
		testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
		if dl := b.deadLetters(); len(dl) != 0 {
			t.Fatalf("dead letters: %+v", dl)
		}
	})

	t.Run("AJobOfAKindThisReplicaHasNoWorkerForIsHandedBack", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 1, AckWait: time.Second}) // no reconciler here
		publish(t, b.q, transfer.Job{Task: "t", Kind: transfer.KindReconcile, Nonce: "reconcile-r3-1", ObjectArgs: transfer.ObjectArgs{Bucket: "src", Key: "shard-1"}})
		time.Sleep(300 * time.Millisecond)
		if n := depth(t, b.q); n != 1 || len(b.deadLetters()) != 0 {
			t.Fatalf("queue depth %d, dead letters %d: want the job kept for a replica that runs it", n, len(b.deadLetters()))
		}
		shards := &shardStub{fail: errors.New("ran")} // a failure ends the job: MaxAttempts 1
		b.opts.shards = shards
		b.addReplica("w1")
		testkit.WaitFor(t, waitLimit, "the replica with a reconciler to run the shard", func() bool { return shards.calls.Load() >= 1 })
	})

	t.Run("ShardThatKeepsFailingIsDeadLetteredAfterItsAttempts", func(t *testing.T) {
		t.Parallel()
		shards := &shardStub{fail: errors.New("listing failed: 503")}
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 2}, bedOptions{shards: shards})
		publish(t, b.q, transfer.Job{Task: "t", Kind: transfer.KindReconcile, Nonce: "reconcile-r2-1", ObjectArgs: transfer.ObjectArgs{Bucket: "src", Key: "shard-1"}})
		testkit.WaitFor(t, waitLimit, "a dead letter", func() bool { return len(b.deadLetters()) == 1 })
		dl := b.deadLetters()[0]
		if dl.Attempts != "2" || !strings.Contains(dl.Error, "listing failed") || shards.calls.Load() != 2 {
			t.Fatalf("dead letter %+v after %d runs, want attempts 2 after 2 runs", dl, shards.calls.Load())
		}
		testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
	})

	// In either lane: each has a consumer of its own.
	for _, lane := range transfer.Lanes {
		t.Run("JobTheQueueStoppedDeliveringIsQueuedAfresh/"+lane.Name, func(t *testing.T) {
			t.Parallel()
			ns := jstest.Start(t)
			// The job is 13 bytes: LargeObject 8 puts it in the large lane.
			qcfg := transfer.QueueConfig{URL: ns.ClientURL(), StuckSweep: 50 * time.Millisecond, LargeObject: 1 << 20}
			if lane == transfer.LargeLane {
				qcfg.LargeObject = 8
			}
			old := openQueue(t, qcfg)
			js, err := jetstream.New(old.Conn())
			if err != nil {
				t.Fatal(err)
			}
			// The consumer as oss2s3 configured it before: a delivery limit.
			cons, err := js.Consumer(ctx, transfer.JobStream, lane.Consumer)
			if err != nil {
				t.Fatal(err)
			}
			ccfg := cons.CachedInfo().Config
			ccfg.MaxDeliver = 1
			if cons, err = js.UpdateConsumer(ctx, transfer.JobStream, ccfg); err != nil {
				t.Fatal(err)
			}
			j := job("t", "k", "")
			j.Size = 13
			if got := old.LaneOf(j); got != lane {
				t.Fatalf("job in the %s lane, want %s", got.Name, lane.Name)
			}
			publish(t, old, j)
			batch, err := cons.Fetch(1)
			if err != nil {
				t.Fatal(err)
			}
			for m := range batch.Messages() {
				if err := m.Nak(); err != nil { // its last delivery: never again
					t.Fatal(err)
				}
			}
			testkit.WaitFor(t, waitLimit, "JetStream to give up on the job", func() bool {
				// A pull makes the consumer look at its redeliveries.
				if b, err := cons.Fetch(1, jetstream.FetchMaxWait(50*time.Millisecond)); err == nil {
					for range b.Messages() {
					}
				}
				ci, err := cons.Info(ctx)
				return err == nil && ci.NumAckPending == 0 && ci.NumPending == 0 && depth(t, old) == 1
			})

			// The new oss2s3 starts on that stream: it lifts the limit, and its
			// sweeper finds the job the consumer gave up on.
			q := openQueue(t, qcfg)
			b := startWorkers(t, qcfg, bedOptions{queue: q, sweep: &transfer.SweeperConfig{}})
			data := []byte("stuck no more")
			b.src.put("k", data, nil)
			b.waitDone("k", data)
			if n := b.value("oss2s3_queue_stuck_jobs_total"); n != 1 {
				t.Fatalf("stuck jobs counted %v, want 1", n)
			}
		})
	}
}
