package transfer_test

import (
	"bytes"
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

// An object is cut into as many parts as its size needs and no more: a
// whole number of parts has no empty part after them, one byte more is
// one more part.
func TestPartCount(t *testing.T) {
	t.Parallel()
	cfg := transfer.CopyConfig{PartSize: 5 * transfer.MiB, MultipartThreshold: 6 * transfer.MiB, PartsInFlight: 2}
	for _, tc := range []struct {
		size  int
		parts int
	}{
		{15 << 20, 3},
		{15<<20 + 1, 4},
		{15<<20 - 1, 3},
	} {
		src, dst := newMemSource(), newMemDest()
		data := randomBytes(tc.size, uint64(tc.size))
		src.put("k", data, nil)
		res, err := copyKey(transfer.NewCopier(64*transfer.MiB, nil, "w"), src, dst, "k", "k", cfg)
		if err != nil {
			t.Fatalf("%d bytes: %v", tc.size, err)
		}
		got, _ := dst.object("k")
		if res.Parts != tc.parts || !bytes.Equal(got, data) {
			t.Errorf("%d bytes: %d parts, want %d; equal %v", tc.size, res.Parts, tc.parts, bytes.Equal(got, data))
		}
	}
}
