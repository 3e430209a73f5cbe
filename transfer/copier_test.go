package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
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
	ctx := context.Background()
	cfg := transfer.CopyConfig{PartSize: 5 * transfer.MiB, MultipartThreshold: 6 * transfer.MiB, PartsInFlight: 3}

	t.Run("SmallObjectIsOnePutWithMetadata", func(t *testing.T) {
		t.Parallel()
		src, dst := newMemSource(), newMemDest()
		data := randomBytes(1000, 1)
		src.put("a b/ü%.txt", data, map[string]string{"owner": "x"})
		res, err := transfer.NewCopier(64*transfer.MiB).Copy(ctx, src, dst, "a b/ü%.txt", "p/a b/ü%.txt", cfg)
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
		res, err := transfer.NewCopier(64*transfer.MiB).Copy(ctx, src, dst, "big", "big", cfg)
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
		if _, err := transfer.NewCopier(budget).Copy(ctx, src, dst, "big", "big", cfg); err != nil {
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
		c := transfer.NewCopier(64 * transfer.MiB)
		for _, key := range []string{"big", "small"} {
			_, err := c.Copy(ctx, src, dst, key, key, cfg)
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

	t.Run("TruncatedSourceFails", func(t *testing.T) {
		t.Parallel()
		src, dst := newMemSource(), newMemDest()
		src.put("big", randomBytes(12<<20, 6), nil)
		src.put("small", randomBytes(100, 7), nil)
		src.corrupt = func(_ string, b []byte) []byte { return b[:len(b)-10] }
		c := transfer.NewCopier(64 * transfer.MiB)
		for _, key := range []string{"big", "small"} {
			if _, err := c.Copy(ctx, src, dst, key, key, cfg); !errors.Is(err, transfer.ErrChecksumMismatch) {
				t.Fatalf("%s: err = %v, want ErrChecksumMismatch", key, err)
			}
		}
	})

	t.Run("MissingSourceIsNotFound", func(t *testing.T) {
		t.Parallel()
		_, err := transfer.NewCopier(0).Copy(ctx, newMemSource(), newMemDest(), "nope", "nope", cfg)
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
		if _, err := transfer.NewCopier(0).Copy(ctx, src, dst, "big", "big", cfg); err == nil {
			t.Fatal("copy succeeded with a failing part")
		}
		if _, ok := dst.object("big"); ok || dst.aborted != 1 {
			t.Fatalf("stored=%v aborted=%d", ok, dst.aborted)
		}
	})
}
