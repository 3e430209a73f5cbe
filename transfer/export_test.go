package transfer

import "context"

// PutWithChecksum sends a whole-object PUT with the CRC32C header set to
// sum, whatever the body: tests use it to see S3 refuse a wrong one.
func (d *S3Destination) PutWithChecksum(ctx context.Context, key string, body []byte, sum string, w *WriteInfo) error {
	return d.lean.put(ctx, key, body, sum, d.headers(w), d.cfg, false)
}
