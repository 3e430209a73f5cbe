package transfer_test

import (
	"bytes"
	"context"
	"hash/crc64"
	"sync/atomic"
	"testing"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// A worker that records a part of a giant object and dies (or fails) before
// counting it in leaves the count one short; when the part's job comes
// again, the part is counted then, and the upload completes.
func TestGiantPartRecordedButNotCountedIsCountedWhenItsJobComesAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := startGiant(t, 3, 21)
	q, src, dst, info, c, cp, data := g.q, g.src, g.dst, g.info, g.c, g.cp, g.data
	for _, n := range []int32{1, 2} {
		if res, err := c.CopyPart(ctx, "t", "giant", info.ETag, cp.UploadID, n, src, dst); err != nil || res.Completed {
			t.Fatalf("part %d: %+v, %v", n, res, err)
		}
	}

	// Part 3 is uploaded and recorded; its worker dies before the count.
	last := data[10<<20:]
	part, err := dst.UploadPart(ctx, "copy/giant", cp.UploadID, 3, last)
	if err != nil {
		t.Fatal(err)
	}
	part.CRC64 = crc64.Checksum(last, crc64.MakeTable(crc64.ECMA))
	if created, err := q.Checkpoints().SavePart(ctx, cp, part); err != nil || !created {
		t.Fatalf("record part 3: %v, %v", created, err)
	}

	res, err := c.CopyPart(ctx, "t", "giant", info.ETag, cp.UploadID, 3, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Completed {
		t.Fatal("part 3 delivered again did not complete the upload: its count is lost")
	}
	if got, _ := dst.object("copy/giant"); !bytes.Equal(got, data) {
		t.Fatal("copied bytes differ")
	}
}

// TestAGiantPartCutShortIsCopiedAgain: the source cuts the body of one
// part of a giant object short; the part fails its check, the object is
// started again, and the part, queued again for the same upload, is
// copied. Its new job must not be taken for a duplicate of the one that
// failed (the 30-minute soak lost an object that way).
func TestAGiantPartCutShortIsCopiedAgain(t *testing.T) {
	t.Parallel()
	cfg := multipartCopy
	cfg.GiantThreshold = 20 * transfer.MiB
	b := startWorkers(t, transfer.QueueConfig{}, bedOptions{copy: cfg, replicas: 2})
	data := randomBytes(41<<20, 81) // 9 parts of 5 MiB
	b.src.put("giant", data, nil)
	var cuts atomic.Int32
	b.src.cut = func(_ string, offset int64) bool { return offset == 30<<20 && cuts.Add(1) <= 1 } // part 7, once
	publish(t, b.q, job("t", "giant", ""))
	b.waitDone("giant", data)
	if cuts.Load() < 2 {
		t.Fatal("the part was not read again")
	}
	if n := b.count(metrics.CopyCopied); n != 1 {
		t.Fatalf("completed %v times, want once", n)
	}
}

// TestCheckpointsOfTwoUploadsOfOneVersionStayApart: an upload given up and
// the one that replaced it (same key, same source version) keep their
// parts apart: a late part of the first is never one of the second's, and
// forgetting the first leaves the second and its parts alone.
func TestCheckpointsOfTwoUploadsOfOneVersionStayApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ck := openQueue(t, transfer.QueueConfig{}).Checkpoints()
	first := &transfer.Checkpoint{Task: "t", Key: "k", DstKey: "k", ETag: "E", Size: 10 << 20, PartSize: 5 << 20,
		TotalParts: 2, UploadID: "first", Parts: map[int32]transfer.Part{}, Giant: true}
	if _, err := ck.Save(ctx, first, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ck.SavePart(ctx, first, transfer.Part{Number: 1, ETag: "p1-first"}); err != nil {
		t.Fatal(err)
	}
	if err := ck.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := *first
	second.UploadID, second.Parts = "second", map[int32]transfer.Part{}
	if _, err := ck.Save(ctx, &second, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ck.SavePart(ctx, &second, transfer.Part{Number: 1, ETag: "p1-second"}); err != nil {
		t.Fatal(err)
	}
	// A part job of the first upload, finishing late, records its part.
	if _, err := ck.SavePart(ctx, first, transfer.Part{Number: 2, ETag: "p2-first"}); err != nil {
		t.Fatal(err)
	}
	// And a worker that gave the first upload up forgets it (again).
	if err := ck.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, _, err := ck.Get(ctx, "t", "k", "E")
	if err != nil || got == nil {
		t.Fatalf("the second upload's checkpoint: %v, %v", got, err)
	}
	if got.UploadID != "second" || len(got.Parts) != 1 || got.Parts[1].ETag != "p1-second" {
		t.Fatalf("checkpoint %s with parts %+v, want the second upload's part 1 only", got.UploadID, got.Parts)
	}
}

// TestAGiantUploadCompletedByAnotherPartIsNotCountedTwice: the last parts
// of a giant object finish together on two replicas; both see every part
// counted, one completes the upload, and the other, finding it completed
// with the source version in place, reports it done but not completed by
// itself (else the object counts as copied twice).
func TestAGiantUploadCompletedByAnotherPartIsNotCountedTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := startGiant(t, 2, 23)
	q, src, dst, info, c, cp, data := g.q, g.src, g.dst, g.info, g.c, g.cp, g.data
	if res, err := c.CopyPart(ctx, "t", "giant", info.ETag, cp.UploadID, 1, src, dst); err != nil || res.Completed {
		t.Fatalf("part 1: %+v, %v", res, err)
	}

	// Part 2 is uploaded and recorded (its count comes below).
	last := data[5<<20:]
	part, err := dst.UploadPart(ctx, "copy/giant", cp.UploadID, 2, last)
	if err != nil {
		t.Fatal(err)
	}
	part.CRC64 = crc64.Checksum(last, crc64.MakeTable(crc64.ECMA))
	if _, err := q.Checkpoints().SavePart(ctx, cp, part); err != nil {
		t.Fatal(err)
	}
	seen, _, err := q.Checkpoints().Get(ctx, "t", "giant", info.ETag) // both parts recorded
	if err != nil || len(seen.Parts) != 2 {
		t.Fatalf("checkpoint %+v, %v", seen, err)
	}
	// Part 2's job counts it in and completes the upload...
	res, err := c.CopyPart(ctx, "t", "giant", info.ETag, cp.UploadID, 2, src, dst)
	if err != nil || !res.Completed {
		t.Fatalf("part 2: %+v, %v: want it to complete the upload", res, err)
	}
	// ...while part 1's job, delivered again on another replica, still
	// finds the checkpoint with every part counted.
	seen.Done = 2
	if _, err := q.Checkpoints().Save(ctx, seen, 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range seen.Parts {
		if _, err := q.Checkpoints().SavePart(ctx, seen, p); err != nil {
			t.Fatal(err)
		}
	}
	res, err = c.CopyPart(ctx, "t", "giant", info.ETag, cp.UploadID, 1, src, dst)
	if err != nil || res.Completed {
		t.Fatalf("part 1 again: %+v, %v: want done, not completed here", res, err)
	}
	if got, _ := dst.object("copy/giant"); !bytes.Equal(got, data) {
		t.Fatal("copied bytes differ")
	}
}

// giantStart is a giant upload started by copier c (owner w1) for an
// object "giant" of parts parts of 5 MiB, none copied yet.
type giantStart struct {
	q    *transfer.Queue
	src  *memSource
	dst  *memDest
	info *transfer.ObjectInfo
	c    *transfer.Copier
	cp   *transfer.Checkpoint
	data []byte
}

func startGiant(t *testing.T, parts int, seed uint64) giantStart {
	t.Helper()
	ctx := context.Background()
	g := giantStart{q: openQueue(t, transfer.QueueConfig{}), src: newMemSource(), dst: newMemDest(),
		data: randomBytes(parts*5<<20, seed)}
	g.src.put("giant", g.data, nil)
	var err error
	if g.info, err = g.src.Head(ctx, "giant"); err != nil {
		t.Fatal(err)
	}
	g.c = transfer.NewCopier(0, g.q.Checkpoints(), "w1")
	o := transfer.Object{Task: "t", Src: g.src, Dst: g.dst, Info: g.info, DstKey: "copy/giant", Write: &transfer.WriteInfo{Source: g.info}}
	cfg := multipartCopy
	cfg.GiantThreshold = 8 * transfer.MiB
	cp, missing, err := g.c.StartGiant(ctx, o, cfg)
	if err != nil || len(missing) != parts {
		t.Fatalf("start: %v parts to copy, %v", missing, err)
	}
	g.cp = cp
	return g
}
