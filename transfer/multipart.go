package transfer

// Multipart copies: an upload per object version, its parts read with
// ranged GETs and uploaded within the memory budget, recorded in a
// checkpoint so that another worker resumes from the last part, checked
// as a whole (CRC-64) before it is completed; and what aborts and forgets
// uploads no copy will complete.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/oss2s3/oss2s3/transfer/crc64ecma"
)

// multipart copies with parallel ranged GETs feeding parallel UploadParts,
// at most cfg.PartsInFlight parts at a time and never more part bytes than
// the copier's budget. The copy holds the checkpoint's lease while it
// runs, and gives it up when it ends without completing, so that the next
// attempt (here or on another replica) need not wait for it to run out.
func (c *Copier) multipart(ctx context.Context, o Object, cfg CopyConfig) (*CopyResult, error) {
	partSize := c.parts.sizeFor(cfg.PartSize, o.Info.Size)
	// The lease is this copy's, not this process's: two jobs of one
	// version running at once in one process (a retry and a new event)
	// must not both take the upload, or one's late parts land after the
	// other completed it (the soak saw versitygw bring the upload back).
	owner := c.owner + "/" + newNonce()[:8]
	cp, rev, err := c.openUpload(ctx, o, partSize, owner, cfg.Lease)
	if err != nil {
		return nil, err
	}
	ctx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	held := c.holdLease(ctx, cp, rev, cfg.Lease, lost)
	res, err := c.copyParts(ctx, o, cp, partSize, cfg)
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrBusy) {
		err = cause // the lease was lost: what cancelled the parts
	}
	held.end(err != nil)
	return res, err
}

// copyParts uploads cp's missing parts and completes the upload.
func (c *Copier) copyParts(ctx context.Context, o Object, cp *Checkpoint, partSize int64, cfg CopyConfig) (*CopyResult, error) {
	resumed := len(cp.Parts)
	var mu sync.Mutex // guards cp.Parts and sent
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.PartsInFlight)
	var sent int64
	var missing []int32
	for n := int32(1); int(n) <= cp.TotalParts; n++ {
		if _, done := cp.Parts[n]; !done {
			missing = append(missing, n)
		}
	}
	for _, n := range missing {
		off, length := partRange(n, partSize, o.Info.Size)
		weight := min(partSize, c.budgetSize) // the buffer is partSize, whatever the part's length
		if err := c.take(gctx, weight); err != nil {
			break // gctx is done; g.Wait says why
		}
		g.Go(func() error {
			defer c.give(weight)
			part, err := c.transferPart(gctx, o, cp.UploadID, n, off, length, partSize)
			if err != nil {
				return err
			}
			if c.ckpt != nil {
				if _, err := c.ckpt.SavePart(context.WithoutCancel(gctx), cp, part); err != nil {
					return err
				}
			}
			mu.Lock()
			defer mu.Unlock()
			sent += part.Size
			cp.Parts[n] = part
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		// Keep a checkpointed upload for the next attempt to continue,
		// unless its parts can never be used (the source changed) or
		// nothing remembers it.
		if errors.Is(err, ErrSourceChanged) || errors.Is(err, ErrChecksumMismatch) || c.ckpt == nil {
			c.abort(ctx, o.Dst, cp)
		}
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	crc, err := c.finish(ctx, o, cp)
	if err != nil && !errors.Is(err, errCompletedBefore) {
		return nil, err
	}
	return &CopyResult{Bytes: sent, Parts: cp.TotalParts, Resumed: resumed, CRC64: crc, Multipart: true}, nil
}

// openUpload finds the checkpoint of this exact source version and takes it
// over, or starts a new upload. Uploads of other versions of the key are
// aborted: nothing will ever complete them.
//
// owner is the copy taking the lease; "" for a giant object, whose parts
// are jobs of their own.
func (c *Copier) openUpload(ctx context.Context, o Object, partSize int64, owner string, lease time.Duration) (*Checkpoint, uint64, error) {
	giant := owner == ""
	now := c.now()
	if c.ckpt != nil {
		others, err := c.ckpt.Others(ctx, o.Task, o.Info.Key, o.Info.ETag)
		if err != nil {
			return nil, 0, err
		}
		for _, old := range others {
			c.abort(ctx, o.Dst, old)
		}
		cp, rev, err := c.ckpt.Get(ctx, o.Task, o.Info.Key, o.Info.ETag)
		if err != nil {
			return nil, 0, err
		}
		if cp != nil && (cp.UploadID == o.Abandon || !cp.Matches(o.Task, o.Info.Key, o.DstKey, o.Info.ETag, o.Info.Size, partSize)) {
			c.abort(ctx, o.Dst, cp)
			cp = nil
		}
		if cp != nil {
			if cp.Giant {
				return cp, rev, nil
			}
			if cp.Held(owner, now, lease) {
				return nil, 0, fmt.Errorf("%w (owner %s, heartbeat %s ago)", ErrBusy, cp.Owner, now.Sub(cp.Heartbeat).Round(time.Second))
			}
			cp.Owner, cp.Heartbeat = owner, now
			if rev, err = c.ckpt.Save(ctx, cp, rev); err != nil {
				return nil, 0, fmt.Errorf("%w: %w", ErrBusy, err)
			}
			return cp, rev, nil
		}
	}
	// Noted before the upload exists: should this worker die before the
	// checkpoint names the upload, the orphan sweeper can still tell the
	// upload is oss2s3's (see Sweeper.abortOrphans).
	var pending string
	if c.ckpt != nil {
		var err error
		if pending, err = c.ckpt.notePending(ctx, o.Task, o.DstKey, now); err != nil {
			return nil, 0, err
		}
	}
	id, err := o.Dst.CreateUpload(ctx, o.DstKey, o.Write)
	if err != nil {
		// The note stays: the request may have created an upload all
		// the same (an answer lost on the way).
		return nil, 0, err
	}
	cp := &Checkpoint{
		Task: o.Task, Key: o.Info.Key, DstKey: o.DstKey, ETag: o.Info.ETag, Size: o.Info.Size,
		PartSize: partSize, TotalParts: totalParts(o.Info.Size, partSize), UploadID: id,
		Parts: map[int32]Part{}, Giant: giant, Owner: owner, Heartbeat: now, Created: now,
	}
	if cp.Info, err = json.Marshal(o.Info); err != nil {
		return nil, 0, err
	}
	var rev uint64
	if c.ckpt != nil {
		if rev, err = c.ckpt.Save(ctx, cp, 0); err != nil {
			// Another worker saved its checkpoint of this version first
			// (or the store failed): abort only this upload, the
			// checkpoint is the other's.
			if c.abortUpload(ctx, o.Dst, o.Task, o.DstKey, id) {
				c.ckpt.donePending(ctx, pending)
			}
			return nil, 0, fmt.Errorf("%w: %w", ErrBusy, err)
		}
		c.ckpt.donePending(ctx, pending) // the checkpoint names the upload now
	}
	return cp, rev, nil
}

// transferPart reads one part with a ranged GET (pinned to the source
// version by If-Match), computing its CRC-64, and uploads it.
func (c *Copier) transferPart(ctx context.Context, o Object, uploadID string, n int32, off, length, partSize int64) (Part, error) {
	c.m.PartStarted()
	defer c.m.PartDone()
	buf := c.buffer(partSize)
	defer c.putBuffer(partSize, buf)
	b := buf[:length]
	body, err := o.Src.Get(ctx, o.Info.Key, o.Info.ETag, off, length)
	if err != nil {
		return Part{}, err
	}
	got, err := io.ReadFull(body, b)
	if err == nil {
		// One more byte must not be there: a source that sends more than
		// the range asked for is not trusted.
		var extra [1]byte
		if m, _ := body.Read(extra[:]); m > 0 {
			err = mismatch("part %d: source sent more than %d bytes", n, length)
		}
	} else if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = mismatch("part %d: source sent %d of %d bytes", n, got, length)
	} else {
		err = fmt.Errorf("read part %d: %w", n, err)
	}
	body.Close()
	if err != nil {
		return Part{}, err
	}
	crc := crc64ecma.Checksum(b)
	part, err := o.Dst.UploadPart(ctx, o.DstKey, uploadID, n, b)
	if err != nil {
		return Part{}, err
	}
	part.CRC64 = crc
	return part, nil
}

// finish checks the parts add up to the source object, length and CRC-64
// (combined from the parts' CRCs, nothing is read again), and completes
// the upload. A mismatch aborts it.
func (c *Copier) finish(ctx context.Context, o Object, cp *Checkpoint) (uint64, error) {
	parts := cp.SortedParts()
	var crc uint64
	var size int64
	for i, p := range parts {
		if int(p.Number) != i+1 {
			return 0, fmt.Errorf("part %d is missing", i+1)
		}
		crc = crc64ecma.Combine(crc, p.CRC64, p.Size)
		size += p.Size
	}
	var err error
	switch {
	case size != o.Info.Size:
		err = mismatch("parts hold %d bytes, source says %d", size, o.Info.Size)
	case o.Info.HasCRC64 && crc != o.Info.CRC64:
		err = mismatch("crc64 of the parts is %d, source says %d", crc, o.Info.CRC64)
	}
	if err != nil {
		c.abort(ctx, o.Dst, cp)
		return 0, err
	}
	if err := o.Dst.CompleteUpload(ctx, o.DstKey, cp.UploadID, parts); err != nil {
		if !errors.Is(err, ErrNoSuchUpload) {
			return 0, err
		}
		// Completed already (by another worker, or by us before a crash)?
		if cur, herr := o.Dst.Head(ctx, o.DstKey); herr != nil || !HoldsVersion(cur, o.Info) {
			c.forget(ctx, cp)
			return 0, err
		}
		c.forget(ctx, cp)
		return crc, errCompletedBefore
	}
	c.forget(ctx, cp)
	return crc, nil
}

// errCompletedBefore is finish's word for an upload found completed, with
// the source version in place: the copy is done, but not by this call (a
// giant object's last parts can finish together on two replicas; only
// one of them completed it).
var errCompletedBefore = errors.New("upload completed before")

// abandon aborts every upload of task/key in progress: the source object
// is gone, no version of it will be completed.
func (c *Copier) abandon(ctx context.Context, task, key string, dst Destination) {
	if c.ckpt == nil {
		return
	}
	cps, err := c.ckpt.Others(ctx, task, key, "")
	if err != nil {
		return // the orphan sweeper aborts them in the end
	}
	for _, cp := range cps {
		c.abort(ctx, dst, cp)
	}
}

// drop aborts the upload of task/key at source version etag, if a
// checkpoint names one, and forgets the checkpoint.
func (c *Copier) drop(ctx context.Context, task, key, etag string, dst Destination) {
	if c.ckpt == nil {
		return
	}
	if cp, _, err := c.ckpt.Get(ctx, task, key, etag); err == nil && cp != nil {
		c.abort(ctx, dst, cp)
	}
}

// abort aborts cp's upload and forgets cp; it reports whether the upload is
// gone. If it is not, the checkpoint is kept: the next attempt, or the
// orphan sweeper, tries the abort again.
func (c *Copier) abort(ctx context.Context, dst Destination, cp *Checkpoint) bool {
	if !c.abortUpload(ctx, dst, cp.Task, cp.DstKey, cp.UploadID) {
		return false
	}
	c.forget(ctx, cp)
	return true
}

// abortUpload aborts upload id of key for task; it reports whether the
// upload is gone. A part upload still in flight at the destination when
// the abort lands may bring the upload back (S3 says to abort more than
// once; versitygw did it in the soak): the abort is noted, so that the
// orphan sweeper, finding the upload again, knows it is oss2s3's.
func (c *Copier) abortUpload(ctx context.Context, dst Destination, task, key, id string) bool {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if c.ckpt != nil {
		c.ckpt.noteAborted(actx, task, key, id, c.now())
	}
	err := dst.AbortUpload(actx, key, id)
	return err == nil || errors.Is(err, ErrNoSuchUpload)
}

func (c *Copier) forget(ctx context.Context, cp *Checkpoint) {
	if c.ckpt != nil {
		_ = c.ckpt.Delete(context.WithoutCancel(ctx), cp)
	}
}
