package crc64ecma

import (
	"hash/crc64"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestMatchesTheStandardLibrary: every length, alignment and starting CRC
// gives hash/crc64's ECMA answer.
func TestMatchesTheStandardLibrary(t *testing.T) {
	t.Parallel()
	buf := randomBytes(70_000, 1)
	rng := rand.New(rand.NewPCG(3, 4)) // offsets, lengths and starting CRCs
	check := func(crc uint64, p []byte) {
		t.Helper()
		if got, want := Update(crc, p), crc64.Update(crc, table, p); got != want {
			t.Fatalf("len %d, start %d: %#x, want %#x", len(p), crc, got, want)
		}
	}
	for n := 0; n <= 1100; n++ {
		for off := range 17 {
			check(0, buf[off:off+n])
		}
	}
	for range 2000 {
		off, n := rng.IntN(64), rng.IntN(len(buf)-64)
		check(rng.Uint64(), buf[off:off+n])
	}
	h := New()
	h.Write(buf[:1000])
	h.Write(buf[1000:])
	if h.Sum64() != crc64.Checksum(buf, table) {
		t.Fatal("streamed CRC differs")
	}
	if !hasCLMUL {
		t.Log("no PCLMULQDQ here: only the table path was checked")
	}
}

// TestConstants recomputes the folding constants in crc64ecma_amd64.s from
// the polynomial: K_n = bit-reversed (x^n mod P), MU = (P<<1|1)^-1 mod x^64.
func TestConstants(t *testing.T) {
	t.Parallel()
	refl := uint64(crc64.ECMA)
	normal := bits.Reverse64(refl)
	k := func(n int) uint64 {
		r := uint64(1)
		for range n {
			carry := r >> 63
			r <<= 1
			if carry == 1 {
				r ^= normal
			}
		}
		return bits.Reverse64(r)
	}
	want := map[int]uint64{
		1023: 0xd7d86b2af73de740, 1087: 0x8757d71d4fcc1000, 127: 0xdabe95afc7875f40, 191: 0xe05dd497ca393ae4,
		255: 0x3be653a30fe1af51, 319: 0x60095b008a9efa44, 383: 0x69a35d91c3730254, 447: 0xb5ea1af9c013aca4,
		511: 0x081f6054a7842df4, 575: 0x6ae3efbb9dd441f3, 639: 0x0e31d519421a63a5, 703: 0x2e30203212cac325,
		767: 0xe4ce2cd55fea0037, 831: 0x2fe3fd2920ce82ec, 895: 0x947874de595052cb, 959: 0x9e735cb59b4724da,
	}
	for n, w := range want {
		if got := k(n); got != w {
			t.Errorf("K_%d = %#x, the assembly has %#x", n, got, w)
		}
	}
	p := refl<<1 | 1
	var mu uint64
	clmulLo := func(a, b uint64) (r uint64) {
		for i := range 64 {
			if b>>i&1 == 1 {
				r ^= a << i
			}
		}
		return r
	}
	for i := range 64 {
		want := uint64(0)
		if i == 0 {
			want = 1
		}
		if clmulLo(p, mu)>>i&1 != want {
			mu |= 1 << i
		}
	}
	if mu != 0x9c3e466c172963d5 || p != 0x92d8af2baf0e1e85 {
		t.Errorf("MU %#x, POLY %#x: the assembly has 0x9c3e466c172963d5 and 0x92d8af2baf0e1e85", mu, p)
	}
}

func BenchmarkUpdate(b *testing.B) {
	buf := make([]byte, 8<<20)
	b.Run("clmul", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			Update(0, buf)
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			crc64.Update(0, table, buf)
		}
	})
}

// TestCombine: the CRC of two pieces combined is the CRC of the whole, for
// lengths whose operator is built and for ones already kept.
func TestCombine(t *testing.T) {
	t.Parallel()
	buf := randomBytes(300_000, 5)
	for range 2 {
		for _, cut := range []int{0, 1, 7, 8, 255, 4096, 150_000, 299_999, 300_000} {
			a, b := buf[:cut], buf[cut:]
			if got, want := Combine(Checksum(a), Checksum(b), int64(len(b))), Checksum(buf); got != want {
				t.Fatalf("cut at %d: %#x, want %#x", cut, got, want)
			}
		}
	}
	parts := 0
	var crc uint64
	for off := 0; off < len(buf); off += 65_536 {
		p := buf[off:min(off+65_536, len(buf))]
		crc = Combine(crc, Checksum(p), int64(len(p)))
		parts++
	}
	if crc != Checksum(buf) {
		t.Fatalf("%d parts combined: %#x, want %#x", parts, crc, Checksum(buf))
	}
}

// randomBytes returns n bytes of a random stream fixed by seed.
func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
