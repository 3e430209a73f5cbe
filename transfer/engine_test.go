package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"hash/crc64"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// multipartCopy is a copy configuration where a few MiB make a multipart
// object, so that the tests stay small.
var multipartCopy = transfer.CopyConfig{PartSize: 5 * transfer.MiB, MultipartThreshold: 6 * transfer.MiB, PartsInFlight: 2}

func publish(t *testing.T, q *transfer.Queue, jobs ...transfer.Job) {
	t.Helper()
	if _, err := q.Publish(context.Background(), jobs); err != nil {
		t.Fatal(err)
	}
}

func removeJob(key string) transfer.Job {
	return transfer.Job{Task: "t", Kind: transfer.KindRemove, EventTime: time.Now(), ObjectArgs: transfer.ObjectArgs{Bucket: "src", Key: key, Event: "ObjectRemoved:DeleteObject"}}
}

func TestCopyEngine(t *testing.T) {
	t.Parallel()

	t.Run("SmallObjectCostsOneGETAndNoHEADOfTheSource", func(t *testing.T) {
		t.Parallel()
		// As S3Destination: a create-only PUT, which overwrites nothing,
		// so no second look at the source after it.
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{whole: true})
		b.src.put("small", []byte("tiny"), map[string]string{"k": "v"})
		publish(t, b.q, job("t", "small", ""))
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { return b.count(metrics.CopyCopied) == 1 })
		if h, g := b.src.heads.Load(), b.src.gets.Load(); h != 0 || g != 1 {
			t.Fatalf("%d HEADs and %d GETs of the source, want 0 and 1", h, g)
		}
		if got, _ := b.dst.object("copy/small"); string(got) != "tiny" || b.dst.info["copy/small"].Meta["k"] != "v" {
			t.Fatalf("copy %q %v", got, b.dst.info["copy/small"].Meta)
		}
	})

	t.Run("CompareFalseCopiesEvenWhenTheDestinationHoldsTheVersion", func(t *testing.T) {
		t.Parallel()
		no := false
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{task: transfer.TaskOptions{Compare: &no}})
		b.src.put("k", []byte("v1"), nil)
		publish(t, b.q, job("t", "k", "e1"))
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { return b.count(metrics.CopyCopied) == 1 })
		j := job("t", "k", "e1")
		j.Nonce = "again"
		publish(t, b.q, j)
		testkit.WaitFor(t, waitLimit, "the second copy", func() bool { return b.count(metrics.CopyCopied) == 2 })
		if b.count(metrics.CopySkipped) != 0 {
			t.Fatal("skipped with compare: false")
		}
	})

	t.Run("DestinationThatHoldsTheSourceVersionIsSkipped", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{})
		b.src.put("k", []byte("v1"), nil)
		publish(t, b.q, job("t", "k", "e1"))
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { return b.count(metrics.CopyCopied) == 1 })
		j := job("t", "k", "e1")
		j.Nonce = "again" // a reconcile or a second event for the same version
		publish(t, b.q, j)
		testkit.WaitFor(t, waitLimit, "the skip", func() bool { return b.count(metrics.CopySkipped) == 1 })

		// A same-size overwrite is a new version: copied, not skipped.
		b.src.put("k", []byte("v2"), nil)
		publish(t, b.q, job("t", "k", "e2"))
		testkit.WaitFor(t, waitLimit, "the second copy", func() bool { return b.count(metrics.CopyCopied) == 2 })
		if got, _ := b.dst.object("copy/k"); string(got) != "v2" {
			t.Fatalf("destination holds %q", got)
		}
	})

	t.Run("WholeObjectLooksAtTheDestinationOnlyWhenTheKeyExists", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{whole: true})
		b.src.put("k", []byte("v1"), nil)
		publish(t, b.q, job("t", "k", "e1"))
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { return b.count(metrics.CopyCopied) == 1 })
		if h := b.dst.heads.Load(); h != 0 {
			t.Fatalf("%d destination HEADs for a key it did not have; the create-only PUT is the look", h)
		}
		j := job("t", "k", "e1")
		j.Nonce = "again"
		publish(t, b.q, j)
		testkit.WaitFor(t, waitLimit, "the skip", func() bool { return b.count(metrics.CopySkipped) == 1 })
		if h := b.dst.heads.Load(); h != 1 {
			t.Fatalf("%d destination HEADs after the create-only PUT found the key, want 1", h)
		}
		b.src.put("k", []byte("v2"), nil) // same size, new version
		publish(t, b.q, job("t", "k", "e2"))
		testkit.WaitFor(t, waitLimit, "the second copy", func() bool { return b.count(metrics.CopyCopied) == 2 })
		if got, _ := b.dst.object("copy/k"); string(got) != "v2" {
			t.Fatalf("destination holds %q", got)
		}
	})

	t.Run("InterruptedMultipartCopyResumesFromItsLastPart", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 5}, bedOptions{copy: multipartCopy})
		data := randomBytes(26<<20, 11) // 6 parts of 5 MiB (the last one 1 MiB)
		b.src.put("big", data, nil)
		var failed atomic.Bool
		b.dst.partErr = func(_ string, n int32) error {
			if n == 5 && failed.CompareAndSwap(false, true) {
				return errors.New("connection reset by peer")
			}
			return nil
		}
		publish(t, b.q, job("t", "big", ""))
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { return b.count(metrics.CopyCopied) == 1 })
		got, _ := b.dst.object("copy/big")
		if !bytes.Equal(got, data) {
			t.Fatal("copied bytes differ")
		}
		// 6 parts, plus the retry of part 5 and whatever was in flight
		// beside it; a restart from scratch would upload at least 10.
		if n := b.dst.parts.Load(); n > 8 {
			t.Fatalf("%d parts uploaded for a 6-part object: the retry did not resume", n)
		}
		if n := b.dst.openUploads(); n != 0 {
			t.Fatalf("%d uploads left open", n)
		}
	})

	t.Run("OverwriteDuringACopyRestartsItOnTheNewVersion", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: multipartCopy})
		v1, v2 := randomBytes(16<<20, 12), randomBytes(16<<20, 13)
		b.src.put("big", v1, nil)
		var gets atomic.Int32
		b.src.getErr = func(string) error {
			if gets.Add(1) == 2 {
				b.src.put("big", v2, nil) // overwritten between two ranged GETs
			}
			return nil
		}
		publish(t, b.q, job("t", "big", ""))
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { return b.count(metrics.CopyCopied) == 1 })
		if got, _ := b.dst.object("copy/big"); !bytes.Equal(got, v2) {
			t.Fatal("destination does not hold the new version")
		}
		if b.count(metrics.CopyRetried) < 1 || b.dst.aborted < 1 || b.dst.openUploads() != 0 {
			t.Fatalf("retried %v, aborted %d, open %d", b.count(metrics.CopyRetried), b.dst.aborted, b.dst.openUploads())
		}
	})

	t.Run("GiantObjectIsCopiedAsPartJobsByEveryReplica", func(t *testing.T) {
		t.Parallel()
		cfg := multipartCopy
		cfg.GiantThreshold = 20 * transfer.MiB
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: cfg, replicas: 3})
		data := randomBytes(41<<20, 14) // 9 parts
		b.src.put("giant", data, nil)
		publish(t, b.q, job("t", "giant", ""))
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { return b.count(metrics.CopyCopied) == 1 })
		if got, _ := b.dst.object("copy/giant"); !bytes.Equal(got, data) {
			t.Fatal("copied bytes differ")
		}
		testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
		time.Sleep(100 * time.Millisecond) // a second completion would show by now
		if n := b.count(metrics.CopyCopied); n != 1 {
			t.Fatalf("completed %v times, want exactly once", n)
		}
		if n := b.dst.parts.Load(); n != 9 {
			t.Fatalf("%d parts uploaded, want 9", n)
		}
	})

	t.Run("CorruptSourceIsDeadLetteredAfterTheRetries", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 3}, bedOptions{copy: multipartCopy})
		b.src.put("big", randomBytes(12<<20, 15), nil)
		b.src.corrupt = func(_ string, p []byte) []byte { p[7] ^= 0xff; return p }
		publish(t, b.q, job("t", "big", ""))
		testkit.WaitFor(t, waitLimit, "a dead letter", func() bool { return b.count(metrics.CopyFailed) == 1 })
		dl, _ := b.q.DeadLetters(context.Background(), transfer.DeadLetterFilter{}, 10)
		if len(dl) != 1 || !strings.Contains(dl[0].Error, "checksum mismatch") {
			t.Fatalf("dead letters %+v", dl)
		}
		if _, ok := b.dst.object("copy/big"); ok || b.dst.openUploads() != 0 {
			t.Fatal("a corrupt copy or an open upload was left behind")
		}

		// Fixed at the source: a redrive copies it.
		b.src.corrupt = nil
		if n, err := b.q.Redrive(context.Background(), transfer.DeadLetterFilter{Task: "t"}); err != nil || n != 1 {
			t.Fatalf("redrive: %d, %v", n, err)
		}
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { return b.count(metrics.CopyCopied) == 1 })
		if dl, _ := b.q.DeadLetters(context.Background(), transfer.DeadLetterFilter{}, 10); len(dl) != 0 {
			t.Fatalf("dead letters left after the redrive: %+v", dl)
		}
	})

	t.Run("DeletesArePropagatedOnlyForCopiesWeWrote", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{task: transfer.TaskOptions{Deletes: transfer.DeletesPropagate}})
		b.src.put("ours", []byte("x"), nil)
		publish(t, b.q, job("t", "ours", ""))
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { return b.count(metrics.CopyCopied) == 1 })
		// An object in the destination that oss2s3 did not write.
		_ = b.dst.Put(context.Background(), "copy/theirs", strings.NewReader("y"), 1,
			&transfer.WriteInfo{Source: &transfer.ObjectInfo{Key: "theirs", Size: 1}})
		b.dst.mu.Lock()
		delete(b.dst.info["copy/theirs"].Meta, transfer.MetaSourceETag)
		b.dst.mu.Unlock()
		// "still" is deleted by the event but exists again at the source.
		b.src.put("still", []byte("z"), nil)

		b.src.del("ours")
		publish(t, b.q, removeJob("ours"), removeJob("theirs"), removeJob("still"))
		testkit.WaitFor(t, waitLimit, "the delete", func() bool { return b.count(metrics.CopyDeleted) == 1 })
		testkit.WaitFor(t, waitLimit, "the other two", func() bool {
			return b.count(metrics.CopySkipped) == 1 && b.count(metrics.CopyCopied) == 2
		})
		if _, ok := b.dst.object("copy/ours"); ok {
			t.Fatal("our copy of a deleted object is still there")
		}
		if _, ok := b.dst.object("copy/theirs"); !ok {
			t.Fatal("an object oss2s3 did not write was deleted")
		}
	})

	t.Run("DeletesAreIgnoredByDefault", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{})
		b.src.put("k", []byte("x"), nil)
		publish(t, b.q, job("t", "k", ""))
		testkit.WaitFor(t, waitLimit, "the copy", func() bool { return b.count(metrics.CopyCopied) == 1 })
		b.src.del("k")
		publish(t, b.q, removeJob("k"))
		testkit.WaitFor(t, waitLimit, "source_gone", func() bool { return b.count(metrics.CopySourceGone) == 1 })
		if _, ok := b.dst.object("copy/k"); !ok {
			t.Fatal("deleted without deletes: propagate")
		}
	})

	t.Run("ArchivedObjectIsSkippedOrRestored", func(t *testing.T) {
		t.Parallel()
		skip := startWorkers(t, transfer.QueueConfig{})
		skip.src.put("cold", []byte("x"), nil)
		skip.src.edit("cold", func(i *transfer.ObjectInfo) { i.StorageClass = "Archive" })
		publish(t, skip.q, job("t", "cold", ""))
		testkit.WaitFor(t, waitLimit, "the skip", func() bool { return skip.count(metrics.CopySkipped) == 1 })

		restore := startWorkers(t, transfer.QueueConfig{}, bedOptions{task: transfer.TaskOptions{
			Archive: transfer.ArchiveRestore, RestorePoll: 50 * time.Millisecond,
		}})
		restore.src.put("cold", []byte("x"), nil)
		restore.src.edit("cold", func(i *transfer.ObjectInfo) { i.StorageClass = "ColdArchive" })
		publish(t, restore.q, job("t", "cold", ""))
		testkit.WaitFor(t, waitLimit, "the copy after the restore", func() bool { return restore.count(metrics.CopyCopied) == 1 })
		if restore.src.restores.Load() != 1 || restore.count(metrics.CopyDeferred) != 1 {
			t.Fatalf("restores %d, deferred %v", restore.src.restores.Load(), restore.count(metrics.CopyDeferred))
		}
	})

	t.Run("SourceWithoutACRCGetsTheComputedOneRecorded", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{})
		data := []byte("made by CopyObject")
		b.src.put("nocrc", data, nil)
		b.src.put("withcrc", data, nil)
		b.src.edit("nocrc", func(i *transfer.ObjectInfo) { i.HasCRC64, i.CRC64 = false, 0 })
		publish(t, b.q, job("t", "nocrc", ""), job("t", "withcrc", ""))
		testkit.WaitFor(t, waitLimit, "the copies", func() bool { return b.count(metrics.CopyCopied) == 2 })
		got, ok := b.dst.recordedCRC("copy/nocrc")
		if want := crc64.Checksum(data, crc64.MakeTable(crc64.ECMA)); !ok || got != want {
			t.Fatalf("recorded crc %d (%v), want %d", got, ok, want)
		}
		if _, ok := b.dst.recordedCRC("copy/withcrc"); ok {
			t.Fatal("recorded a CRC for a source that has its own")
		}
	})

	t.Run("SymlinkCanBeSkipped", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{task: transfer.TaskOptions{Symlinks: transfer.SymlinksSkip}})
		b.src.put("link", []byte("target bytes"), nil)
		b.src.edit("link", func(i *transfer.ObjectInfo) { i.ObjectType = transfer.ObjectTypeSymlink })
		publish(t, b.q, job("t", "link", ""))
		testkit.WaitFor(t, waitLimit, "the skip", func() bool { return b.count(metrics.CopySkipped) == 1 })
		if _, ok := b.dst.object("copy/link"); ok {
			t.Fatal("symlink copied")
		}
	})
}
