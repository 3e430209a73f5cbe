package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrStalePart means a part job belongs to an upload that no longer exists
// (it was completed, or abandoned for a newer source version).
var ErrStalePart = errors.New("part job of an upload that is gone")

// StartGiant creates (or, after a crash, finds) the multipart upload of a
// giant object and returns the parts still to copy. Each becomes a job on
// the queue, so every replica works on the one object.
func (c *Copier) StartGiant(ctx context.Context, o Object, cfg CopyConfig) (*Checkpoint, []int32, error) {
	if c.ckpt == nil {
		return nil, nil, errors.New("giant objects need the checkpoint store")
	}
	cfg = cfg.withDefaults()
	cp, _, err := c.openUpload(ctx, o, c.parts.sizeFor(cfg.PartSize, o.Info.Size), "", cfg.Lease)
	if err != nil {
		return nil, nil, err
	}
	var missing []int32
	for n := int32(1); int(n) <= cp.TotalParts; n++ {
		if _, done := cp.Parts[n]; !done {
			missing = append(missing, n)
		}
	}
	return cp, missing, nil
}

// PartResult says what CopyPart did.
type PartResult struct {
	Part      Part
	Completed bool   // this call completed the whole upload
	CRC64     uint64 // of the whole object, when Completed
	Size      int64  // of the whole object
	Parts     int    // of the whole object
}

// CopyPart copies part n of the giant upload uploadID of task/key at the
// source version etag, records it in the checkpoint (compare-and-set, so
// parts finished at the same time by several replicas are all kept), and,
// if that made the set complete, verifies the whole object's CRC-64 and
// completes the upload.
func (c *Copier) CopyPart(ctx context.Context, task, key, etag, uploadID string, n int32, src Source, dst Destination) (*PartResult, error) {
	// Only the main record and this part: loading every part for each
	// part job would cost O(parts²).
	cp, rev, err := c.ckpt.getMain(ctx, checkpointKey(task, key, etag))
	if err != nil {
		return nil, err
	}
	if cp == nil || cp.UploadID != uploadID {
		return nil, ErrStalePart
	}
	var info ObjectInfo
	if err := json.Unmarshal(cp.Info, &info); err != nil {
		return nil, fmt.Errorf("checkpoint of %q: %w", key, err)
	}
	o := Object{Task: task, Src: src, Dst: dst, Info: &info, DstKey: cp.DstKey}
	res := &PartResult{Size: info.Size, Parts: cp.TotalParts}
	var count bool
	if res.Part, count, err = c.recordPart(ctx, cp, o, uploadID, n); err != nil {
		return nil, err
	}
	if count {
		if cp, err = c.countIn(ctx, cp, rev, n); err != nil {
			return nil, err
		}
	}
	// Not the last part; or a part recorded before (a job delivered again,
	// perhaps the one that was completing when its worker died): complete
	// only once every part is counted in and recorded.
	if cp.Done < cp.TotalParts {
		return res, nil
	}
	if cp, _, err = c.ckpt.Get(ctx, task, key, etag); err != nil {
		return nil, err
	}
	if cp == nil || cp.UploadID != uploadID || len(cp.Parts) < cp.TotalParts {
		return res, nil
	}
	crc, err := c.finish(ctx, o, cp)
	if errors.Is(err, errCompletedBefore) {
		return res, nil // another part's worker completed it
	}
	if err != nil {
		return nil, err
	}
	res.Completed, res.CRC64 = true, crc
	return res, nil
}

// recordPart copies part n of cp's upload and records it, unless it was
// recorded before; count says whether this call must count it in.
func (c *Copier) recordPart(ctx context.Context, cp *Checkpoint, o Object, uploadID string, n int32) (Part, bool, error) {
	done, ok, err := c.ckpt.getPart(ctx, cp, n)
	if err != nil {
		return Part{}, false, err
	}
	if ok {
		// Recorded before: the job is delivered again because its worker
		// died or failed after recording the part, perhaps before
		// counting it in, which would leave Done short of the total
		// forever.
		counted, err := c.ckpt.counted(ctx, cp, n)
		return done, !counted, err
	}
	off, length := partRange(n, cp.PartSize, o.Info.Size)
	weight := min(cp.PartSize, c.budgetSize) // the buffer is PartSize, whatever the part's length
	if err := c.take(ctx, weight); err != nil {
		return Part{}, false, err
	}
	part, err := c.transferPart(ctx, o, uploadID, n, off, length, cp.PartSize)
	c.give(weight)
	if errors.Is(err, ErrSourceChanged) {
		c.abort(ctx, o.Dst, cp)
	}
	if err != nil {
		return Part{}, false, err
	}
	// Not created: a worker with the same job recorded it at the same
	// time, and counts it.
	created, err := c.ckpt.SavePart(ctx, cp, part)
	return part, created, err
}

// countIn counts part n into cp's Done (compare-and-set from revision rev,
// read again on a conflict) and marks it counted. The worker whose count
// reaches the total completes the upload.
func (c *Copier) countIn(ctx context.Context, cp *Checkpoint, rev uint64, n int32) (*Checkpoint, error) {
	uploadID, k := cp.UploadID, checkpointKey(cp.Task, cp.Key, cp.ETag)
	for attempt := 0; ; attempt++ {
		cp.Done++
		cp.Heartbeat = c.now()
		var err error
		if _, err = c.ckpt.Save(ctx, cp, rev); err == nil {
			break
		}
		if !errors.Is(err, ErrCheckpointConflict) || attempt > 1000 {
			return nil, err
		}
		if cp, rev, err = c.ckpt.getMain(ctx, k); err != nil {
			return nil, err
		}
		if cp == nil || cp.UploadID != uploadID {
			return nil, ErrStalePart
		}
	}
	// A crash between the count and this mark counts the part twice when
	// its job comes again: harmless, since completion checks the parts
	// themselves.
	return cp, c.ckpt.markCounted(ctx, cp, n)
}
