package transfer

import (
	"context"
	"time"
)

// PutWithChecksum sends a whole-object PUT with the CRC32C header set to
// sum, whatever the body: tests use it to see S3 refuse a wrong one.
func (d *S3Destination) PutWithChecksum(ctx context.Context, key string, body []byte, sum string, w *WriteInfo) error {
	return d.lean.put(ctx, key, body, sum, d.headers(w), d.cfg, false)
}

// NotePending is notePending, for tests that play a worker dying between
// creating an upload and saving its checkpoint.
func (c *Checkpoints) NotePending(ctx context.Context, task, dstKey string, at time.Time) (string, error) {
	return c.notePending(ctx, task, dstKey, at)
}

// WithPartFloor lets c cut parts as small as floor bytes, aligned to
// align, instead of S3's 5 MiB in whole MiB: a test copies an object of
// 10,000 parts without 50 GB of data (its destination must accept such
// parts).
func (c *Copier) WithPartFloor(floor, align int64) *Copier {
	c.parts = partRules{floor: floor, align: align}
	return c
}
