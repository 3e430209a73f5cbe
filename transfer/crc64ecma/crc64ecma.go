// Package crc64ecma owns the CRC-64 OSS publishes (x-oss-hash-crc64ecma:
// CRC-64/XZ, the ECMA-182 polynomial, reflected, as hash/crc64.ECMA),
// computed with carry-less multiplication where the CPU has it. On large
// copies the standard library's table CRC was 39% of oss2s3's CPU.
package crc64ecma

import (
	"hash"
	"hash/crc64"
	"sync"
	"unsafe"
)

var table = crc64.MakeTable(crc64.ECMA)

// Update returns the CRC of p appended to data whose CRC is crc, exactly
// as crc64.Update(crc, crc64.MakeTable(crc64.ECMA), p).
func Update(crc uint64, p []byte) uint64 {
	if hasCLMUL && len(p) >= 256 {
		// The folding code reads aligned 16-byte blocks, 128 bytes a round.
		if off := (16 - uintptr(unsafe.Pointer(&p[0]))&15) & 15; off > 0 { //nolint:gosec // G103: only the address's alignment is read
			crc = crc64.Update(crc, table, p[:off])
			p = p[off:]
		}
		if n := len(p) &^ 127; n > 0 {
			crc = updateCLMUL(crc, p[:n])
			p = p[n:]
		}
	}
	return crc64.Update(crc, table, p)
}

// Checksum returns the CRC of p.
func Checksum(p []byte) uint64 { return Update(0, p) }

// New returns a hash.Hash64 of this CRC (Sum is big-endian, as
// hash/crc64's).
func New() hash.Hash64 { return &digest{} }

type digest struct{ crc uint64 }

func (d *digest) Write(p []byte) (int, error) { d.crc = Update(d.crc, p); return len(p), nil }
func (d *digest) Sum64() uint64               { return d.crc }
func (d *digest) Reset()                      { d.crc = 0 }
func (d *digest) Size() int                   { return crc64.Size }
func (d *digest) BlockSize() int              { return 1 }
func (d *digest) Sum(in []byte) []byte {
	s := d.crc
	// Big-endian bytes of the sum: the truncations are the point.
	return append(in, byte(s>>56), byte(s>>48), byte(s>>40), byte(s>>32), byte(s>>24), byte(s>>16), byte(s>>8), byte(s)) //nolint:gosec // G115
}

// Combine returns the CRC of the bytes whose CRC is crcA followed by lenB
// bytes whose CRC is crcB (zlib's crc32_combine, for this CRC), as
// oss.CRC64Combine does. The operator that appends lenB zero bytes is
// built once per length and kept (a multipart copy combines hundreds of
// parts of one size; building it each time was 2% of a large copy's CPU).
func Combine(crcA, crcB uint64, lenB int64) uint64 {
	if lenB <= 0 {
		return crcA
	}
	return zeros(lenB).times(crcA) ^ crcB
}

// operator is a linear map of CRC values over GF(2): column i is the image
// of 1<<i.
type operator [64]uint64

func (m *operator) times(v uint64) uint64 {
	var s uint64
	for i := 0; v != 0; i, v = i+1, v>>1 {
		if v&1 != 0 {
			s ^= m[i]
		}
	}
	return s
}

// then returns the operator that applies m, then n.
func (m *operator) then(n *operator) operator {
	var c operator
	for i := range c {
		c[i] = n.times(m[i])
	}
	return c
}

// zerosCache keeps the operators of the lengths seen last (at most
// zerosCacheMax; then it starts over), shared by every copy.
var zerosCache struct {
	sync.Mutex
	ops map[int64]*operator
}

const zerosCacheMax = 64

// zeros returns the operator that appends n zero bytes to a CRC's input.
func zeros(n int64) *operator {
	zerosCache.Lock()
	defer zerosCache.Unlock()
	if op, ok := zerosCache.ops[n]; ok {
		return op
	}
	if zerosCache.ops == nil || len(zerosCache.ops) >= zerosCacheMax {
		zerosCache.ops = make(map[int64]*operator, zerosCacheMax)
	}
	op := buildZeros(n)
	zerosCache.ops[n] = &op
	return &op
}

// buildZeros composes the operators of one zero bit squared up to the set
// bits of n bytes.
func buildZeros(n int64) operator {
	var bit operator // one zero bit: shift right, the polynomial where a 1 falls off
	bit[0] = crc64.ECMA
	for i := 1; i < 64; i++ {
		bit[i] = 1 << (i - 1)
	}
	pow := bit.then(&bit) // 2 bits
	pow = pow.then(&pow)  // 4 bits
	pow = pow.then(&pow)  // 8 bits: one byte
	var res operator
	for i := range res {
		res[i] = 1 << i
	}
	for {
		if n&1 != 0 {
			res = res.then(&pow)
		}
		if n >>= 1; n == 0 {
			return res
		}
		pow = pow.then(&pow)
	}
}
