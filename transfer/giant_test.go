package transfer_test

import (
	"bytes"
	"context"
	"hash/crc64"
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

// A worker that records a part of a giant object and dies (or fails) before
// counting it in leaves the count one short; when the part's job comes
// again, the part is counted then, and the upload completes.
func TestGiantPartRecordedButNotCountedIsCountedWhenItsJobComesAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := openQueue(t, transfer.QueueConfig{})
	src, dst := newMemSource(), newMemDest()
	data := randomBytes(15<<20, 21) // 3 parts of 5 MiB
	src.put("giant", data, nil)
	info, err := src.Head(ctx, "giant")
	if err != nil {
		t.Fatal(err)
	}
	c := transfer.NewCopier(0, q.Checkpoints(), "w1")
	o := transfer.Object{Task: "t", Src: src, Dst: dst, Info: info, DstKey: "copy/giant", Write: &transfer.WriteInfo{Source: info}}
	cfg := multipartCopy
	cfg.GiantThreshold = 10 * transfer.MiB
	cp, missing, err := c.StartGiant(ctx, o, cfg)
	if err != nil || len(missing) != 3 {
		t.Fatalf("start: %v parts to copy, %v", missing, err)
	}
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
