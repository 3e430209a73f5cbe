package ossemu

import (
	"bytes"
	"hash/crc64"
	"io"
	"math/rand/v2"
	"testing"
)

func TestCRC64CombineMatchesOnePass(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 8, 100, 4096, 1<<20 + 3} {
		a := make([]byte, rng.IntN(5000))
		b := make([]byte, n)
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want := crc64.Checksum(append(bytes.Clone(a), b...), crcTable)
		got := crc64Combine(crc64.Checksum(a, crcTable), crc64.Checksum(b, crcTable), int64(len(b)))
		if got != want {
			t.Fatalf("len(a)=%d len(b)=%d: combine %x, one pass %x", len(a), n, got, want)
		}
	}
}

func TestParallelSyntheticCRC64MatchesOnePass(t *testing.T) {
	t.Parallel()
	// Big enough to be split into several chunks, odd so the last is short.
	const size = 100<<20 + 13
	h := crc64.New(crcTable)
	if n, err := io.Copy(h, SyntheticReader(size, 42, 0)); err != nil || n != size {
		t.Fatalf("read %d, %v", n, err)
	}
	if want, got := h.Sum64(), computeSyntheticCRC64(size, 42); got != want {
		t.Fatalf("parallel CRC %d, one pass %d", got, want)
	}
}

func BenchmarkFillSynth(b *testing.B) {
	buf := make([]byte, synthBufSize)
	key := synthKey(7)
	b.SetBytes(int64(len(buf)))
	for i := 0; b.Loop(); i++ {
		fillSynth(key, int64(i)*int64(len(buf)), buf)
	}
}

func BenchmarkSyntheticCRC64(b *testing.B) {
	const size = 256 << 20
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		computeSyntheticCRC64(size, uint64(i))
	}
}

func TestSyntheticCRC64OfUnalignedSizes(t *testing.T) {
	t.Parallel()
	for _, size := range []int64{0, 1, 7, 8, 9, 4095, 4096 + 5} {
		data, err := io.ReadAll(SyntheticReader(size, 9, 0))
		if err != nil || int64(len(data)) != size {
			t.Fatalf("size %d: read %d, %v", size, len(data), err)
		}
		if want, got := crc64.Checksum(data, crcTable), computeSyntheticCRC64(size, 9); got != want {
			t.Fatalf("size %d: CRC %d, want %d", size, got, want)
		}
	}
}

func BenchmarkSyntheticCRC64OneCore(b *testing.B) {
	const size = 256 << 20
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		crcOfSynth(uint64(i), 0, size)
	}
}
