// Package crc64ecma owns the CRC-64 OSS publishes (x-oss-hash-crc64ecma:
// CRC-64/XZ, the ECMA-182 polynomial, reflected, as hash/crc64.ECMA),
// computed with carry-less multiplication where the CPU has it. On large
// copies the standard library's table CRC was 39% of oss2s3's CPU.
package crc64ecma

import (
	"hash"
	"hash/crc64"
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
