package transfer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// copyKey does what a worker does: HEAD the source, then copy.
func copyKey(c *transfer.Copier, src *memSource, dst transfer.Destination, key, dstKey string, cfg transfer.CopyConfig) (*transfer.CopyResult, error) {
	ctx := context.Background()
	info, err := src.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	return c.Copy(ctx, transfer.Object{Task: "t", Src: src, Dst: dst, Info: info, DstKey: dstKey,
		Write: &transfer.WriteInfo{Source: info}}, cfg)
}

func TestPartSizeFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		configured transfer.ByteSize
		size, want int64
	}{
		{"SmallObjectUsesConfiguredSize", 8 * transfer.MiB, 100 << 20, 8 << 20},
		{"ExactlyTenThousandPartsFit", 8 * transfer.MiB, 10_000 * (8 << 20), 8 << 20},
		{"OneByteMoreGrowsToNextMiB", 8 * transfer.MiB, 10_000*(8<<20) + 1, 9 << 20},
		{"FiveTiBNeedsAtLeast525MiB", 8 * transfer.MiB, 5 << 40, 525 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := transfer.PartSizeFor(tc.configured, tc.size)
			if got != tc.want {
				t.Fatalf("PartSizeFor(%s, %d) = %d, want %d", tc.configured, tc.size, got, tc.want)
			}
			if parts := (tc.size + got - 1) / got; parts > transfer.MaxParts {
				t.Fatalf("%d parts, more than S3 allows", parts)
			}
		})
	}
}

func TestCopier(t *testing.T) {
	t.Parallel()
	cfg := transfer.CopyConfig{PartSize: 5 * transfer.MiB, MultipartThreshold: 6 * transfer.MiB, PartsInFlight: 3}

	t.Run("SmallObjectIsOnePutWithMetadata", func(t *testing.T) {
		t.Parallel()
		src, dst := newMemSource(), newMemDest()
		data := randomBytes(1000, 1)
		src.put("a b/ü%.txt", data, map[string]string{"owner": "x"})
		res, err := copyKey(transfer.NewCopier(64*transfer.MiB, nil, "w"), src, dst, "a b/ü%.txt", "p/a b/ü%.txt", cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := dst.object("p/a b/ü%.txt")
		if !ok || !bytes.Equal(got, data) || res.Multipart || res.Bytes != 1000 {
			t.Fatalf("copy wrong: ok=%v equal=%v multipart=%v bytes=%d", ok, bytes.Equal(got, data), res.Multipart, res.Bytes)
		}
		if dst.info["p/a b/ü%.txt"].Meta["owner"] != "x" {
			t.Fatalf("user metadata lost: %v", dst.info["p/a b/ü%.txt"].Meta)
		}
	})

	t.Run("LargeObjectGoesMultipartInOrder", func(t *testing.T) {
		t.Parallel()
		src, dst := newMemSource(), newMemDest()
		data := randomBytes(23<<20+17, 2)
		src.put("big", data, nil)
		res, err := copyKey(transfer.NewCopier(64*transfer.MiB, nil, "w"), src, dst, "big", "big", cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := dst.object("big")
		if !bytes.Equal(got, data) || res.Parts != 5 || !res.Multipart {
			t.Fatalf("equal=%v parts=%d", bytes.Equal(got, data), res.Parts)
		}
	})

	t.Run("MemoryStaysWithinTheBudget", func(t *testing.T) {
		t.Parallel()
		src, dst := newMemSource(), newMemDest()
		src.put("big", randomBytes(40<<20, 3), nil)
		budget := 10 * transfer.MiB // two 5 MiB parts, although 3 may be in flight
		if _, err := copyKey(transfer.NewCopier(budget, nil, "w"), src, dst, "big", "big", cfg); err != nil {
			t.Fatal(err)
		}
		if peak := dst.peakBytes.Load(); peak > int64(budget) || peak == 0 {
			t.Fatalf("peak part bytes in flight %d, budget %d", peak, budget)
		}
	})

	t.Run("CorruptSourceBytesFailAndAbortTheUpload", func(t *testing.T) {
		t.Parallel()
		src, dst := newMemSource(), newMemDest()
		src.put("big", randomBytes(12<<20, 4), nil)
		src.put("small", randomBytes(100, 5), nil)
		src.corrupt = func(_ string, b []byte) []byte { b[len(b)/2] ^= 1; return b }
		c := transfer.NewCopier(64*transfer.MiB, nil, "w")
		for _, key := range []string{"big", "small"} {
			_, err := copyKey(c, src, dst, key, key, cfg)
			if !errors.Is(err, transfer.ErrChecksumMismatch) {
				t.Fatalf("%s: err = %v, want ErrChecksumMismatch", key, err)
			}
			if _, ok := dst.object(key); ok {
				t.Fatalf("%s: corrupt object stored", key)
			}
		}
		if dst.aborted != 1 {
			t.Fatalf("aborted %d uploads, want 1", dst.aborted)
		}
	})

	t.Run("SmallObjectIsVerifiedBeforeAnythingIsSent", func(t *testing.T) {
		t.Parallel()
		src, dst := newMemSource(), &memBytesDest{memDest: newMemDest()}
		good, bad := randomBytes(1000, 9), randomBytes(1000, 10)
		src.put("good", good, map[string]string{"owner": "x"})
		src.put("bad", bad, nil)
		c := transfer.NewCopier(64*transfer.MiB, nil, "w")
		res, err := copyKey(c, src, dst, "good", "good", cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := dst.object("good"); !bytes.Equal(got, good) || res.Bytes != 1000 || dst.bytesPuts.Load() != 1 ||
			dst.info["good"].Meta["owner"] != "x" {
			t.Fatalf("copy wrong: equal=%v bytes=%d whole puts=%d meta=%v", bytes.Equal(got, good), res.Bytes, dst.bytesPuts.Load(), dst.info["good"].Meta)
		}
		for name, corrupt := range map[string]func(string, []byte) []byte{
			"flipped":   func(_ string, b []byte) []byte { b[10] ^= 1; return b },
			"truncated": func(_ string, b []byte) []byte { return b[:len(b)-1] },
			"overlong":  func(_ string, b []byte) []byte { return append(b, 'x') },
		} {
			src.corrupt = corrupt
			if _, err := copyKey(c, src, dst, "bad", "bad", cfg); !errors.Is(err, transfer.ErrChecksumMismatch) {
				t.Fatalf("%s: err = %v, want ErrChecksumMismatch", name, err)
			}
		}
		if _, ok := dst.object("bad"); ok || dst.bytesPuts.Load() != 1 {
			t.Fatalf("a corrupt body reached the destination: stored=%v whole puts=%d", ok, dst.bytesPuts.Load())
		}
	})

	t.Run("TruncatedSourceFails", func(t *testing.T) {
		t.Parallel()
		src, dst := newMemSource(), newMemDest()
		src.put("big", randomBytes(12<<20, 6), nil)
		src.put("small", randomBytes(100, 7), nil)
		src.corrupt = func(_ string, b []byte) []byte { return b[:len(b)-10] }
		c := transfer.NewCopier(64*transfer.MiB, nil, "w")
		for _, key := range []string{"big", "small"} {
			if _, err := copyKey(c, src, dst, key, key, cfg); !errors.Is(err, transfer.ErrChecksumMismatch) {
				t.Fatalf("%s: err = %v, want ErrChecksumMismatch", key, err)
			}
		}
	})

	t.Run("MissingSourceIsNotFound", func(t *testing.T) {
		t.Parallel()
		_, err := copyKey(transfer.NewCopier(0, nil, "w"), newMemSource(), newMemDest(), "nope", "nope", cfg)
		if !errors.Is(err, transfer.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})

	t.Run("FailedPartAbortsTheUpload", func(t *testing.T) {
		t.Parallel()
		src, dst := newMemSource(), newMemDest()
		src.put("big", randomBytes(20<<20, 8), nil)
		dst.partErr = func(_ string, n int32) error {
			if n == 2 {
				return errors.New("boom")
			}
			return nil
		}
		if _, err := copyKey(transfer.NewCopier(0, nil, "w"), src, dst, "big", "big", cfg); err == nil {
			t.Fatal("copy succeeded with a failing part")
		}
		if _, ok := dst.object("big"); ok || dst.aborted != 1 {
			t.Fatalf("stored=%v aborted=%d", ok, dst.aborted)
		}
	})
}
