package ossemu

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc64"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// Synthetic objects hold no bytes: the 8 bytes at word index i (offset 8i)
// of the content seeded by seed are the little-endian splitmix64 output
// for the counter key(seed)+i. Any range is generated directly, without
// the bytes before it, at several GB/s per core.

const (
	golden = 0x9E3779B97F4A7C15
	// syntheticPartSize is the part size a synthetic object's multipart
	// ETag pretends it was uploaded with: "-N" counts parts of this size.
	syntheticPartSize = 16 << 20
	synthBufSize      = 256 << 10
)

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// synthKey spreads seeds apart so that nearby seeds do not give shifted
// copies of one stream.
func synthKey(seed uint64) uint64 { return mix64(seed + golden) }

// fillSynth writes the content at [off, off+len(p)) into p. It touches
// only p, which its callers own, so it is left out of race instrumentation
// (go:norace), which would otherwise slow tests under -race 60-fold.
//
//go:norace
func fillSynth(key uint64, off int64, p []byte) {
	w := uint64(off) >> 3
	if s := off & 7; s != 0 && len(p) > 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], mix64(key+w*golden))
		n := copy(p, b[s:])
		p = p[n:]
		w++
	}
	g := uint64(golden)
	ctr := key + w*g
	for len(p) >= 32 {
		binary.LittleEndian.PutUint64(p[0:8], mix64(ctr))
		binary.LittleEndian.PutUint64(p[8:16], mix64(ctr+g))
		binary.LittleEndian.PutUint64(p[16:24], mix64(ctr+2*g))
		binary.LittleEndian.PutUint64(p[24:32], mix64(ctr+3*g))
		ctr += 4 * g
		p = p[32:]
	}
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, mix64(ctr))
		ctr += g
		p = p[8:]
	}
	if len(p) > 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], mix64(ctr))
		copy(p, b[:])
	}
}

// SyntheticReader returns the content of a synthetic object of the given
// size and seed (see PutSynthetic) from offset to its end. It implements
// io.WriterTo, so io.Copy streams it without an intermediate copy.
func SyntheticReader(size int64, seed uint64, offset int64) io.Reader {
	offset = max(0, min(offset, size))
	return newSynthReader(seed, offset, size)
}

type synthReader struct {
	key      uint64
	off, end int64
}

var _ io.WriterTo = (*synthReader)(nil)

func newSynthReader(seed uint64, off, end int64) *synthReader {
	return &synthReader{key: synthKey(seed), off: off, end: end}
}

func (r *synthReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.end-r.off)
	fillSynth(r.key, r.off, p[:n])
	r.off += n
	return int(n), nil
}

var synthBufs = sync.Pool{New: func() any { b := make([]byte, synthBufSize); return &b }}

// WriteTo generates the rest of the content into a pooled buffer and
// writes it to w.
func (r *synthReader) WriteTo(w io.Writer) (int64, error) {
	bp := synthBufs.Get().(*[]byte)
	defer synthBufs.Put(bp)
	buf := *bp
	var total int64
	for r.off < r.end {
		n := min(int64(len(buf)), r.end-r.off)
		fillSynth(r.key, r.off, buf[:n])
		m, err := w.Write(buf[:n])
		r.off += int64(m)
		total += int64(m)
		if err != nil {
			return total, err
		}
		if int64(m) < n {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}

// syntheticCRC64 is the CRC-64/ECMA of a synthetic object, computed once
// per (size, seed) and cached: the content is generated and summed in
// chunks on every CPU, and the chunk CRCs are combined.
func (s *Server) syntheticCRC64(size int64, seed uint64) uint64 {
	k := [2]uint64{uint64(size), seed}
	s.synthMu.Lock()
	crc, ok := s.synthCRC[k]
	s.synthMu.Unlock()
	if ok {
		return crc
	}
	crc = computeSyntheticCRC64(size, seed)
	s.synthMu.Lock()
	s.synthCRC[k] = crc
	s.synthMu.Unlock()
	return crc
}

func computeSyntheticCRC64(size int64, seed uint64) uint64 {
	const minChunk = 32 << 20
	workers := runtime.GOMAXPROCS(0)
	chunk := max(int64(minChunk), (size+int64(4*workers)-1)/int64(4*workers))
	chunk = (chunk + 7) &^ 7
	n := int((size + chunk - 1) / chunk)
	if n <= 1 {
		return crcOfSynth(seed, 0, size)
	}
	crcs := make([]uint64, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				start := int64(i) * chunk
				crcs[i] = crcOfSynth(seed, start, min(start+chunk, size))
			}
		})
	}
	wg.Wait()
	crc := crcs[0]
	for i := 1; i < n; i++ {
		start := int64(i) * chunk
		crc = crc64Combine(crc, crcs[i], min(start+chunk, size)-start)
	}
	return crc
}

// crcOfSynth is the CRC-64/ECMA of the content at [start, end), start a
// multiple of 8.
func crcOfSynth(seed uint64, start, end int64) uint64 {
	key := synthKey(seed)
	whole := start + (end-start)&^7
	crc := crcSynthWords(key, uint64(start)>>3, uint64(whole)>>3)
	if whole < end {
		var tail [8]byte
		fillSynth(key, whole, tail[:end-whole])
		crc = crc64.Update(crc, crcTable, tail[:end-whole])
	}
	return crc
}

// crcSlicing8 are the slicing-by-8 tables for crcTable, as hash/crc64
// builds them.
var crcSlicing8 = func() *[8]crc64.Table {
	var t [8]crc64.Table
	t[0] = *crcTable
	for i := range 256 {
		crc := crcTable[i]
		for j := 1; j < 8; j++ {
			crc = crcTable[crc&0xff] ^ (crc >> 8)
			t[j][i] = crc
		}
	}
	return &t
}()

// crcSynthWords is the CRC of words [from, to) of the content, generated
// and summed in registers: a little-endian word is the 8 bytes slicing-by-8
// consumes at once, so nothing is written to memory. Like fillSynth it is
// left out of race instrumentation: it reads only the constant tables.
//
//go:norace
func crcSynthWords(key, from, to uint64) uint64 {
	t := crcSlicing8
	crc := ^uint64(0)
	g := uint64(golden)
	for ctr := key + from*g; from < to; from++ {
		crc ^= mix64(ctr)
		ctr += g
		crc = t[7][crc&0xff] ^ t[6][(crc>>8)&0xff] ^ t[5][(crc>>16)&0xff] ^ t[4][(crc>>24)&0xff] ^
			t[3][(crc>>32)&0xff] ^ t[2][(crc>>40)&0xff] ^ t[1][(crc>>48)&0xff] ^ t[0][crc>>56]
	}
	return ^crc
}

// crc64Combine returns the CRC-64/ECMA of A+B from crc1 = CRC(A), crc2 =
// CRC(B) and len2 = len(B), by zlib's method: crc1 advanced over len2 zero
// bytes with GF(2) matrix powers, xor crc2.
func crc64Combine(crc1, crc2 uint64, len2 int64) uint64 {
	if len2 <= 0 {
		return crc1
	}
	var even, odd [64]uint64
	odd[0] = crc64.ECMA // the operator for one zero bit
	row := uint64(1)
	for n := 1; n < 64; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four zero bits
	// Each step squares the last operator into the other matrix (zlib
	// unrolls the loop twice instead of swapping the two).
	sq, last := &even, &odd
	for {
		gf2Square(sq, last)
		if len2&1 != 0 {
			crc1 = gf2Times(sq, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
		sq, last = last, sq
	}
	return crc1 ^ crc2
}

func gf2Times(mat *[64]uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[64]uint64) {
	for n := range mat {
		square[n] = gf2Times(mat, mat[n])
	}
}

// syntheticETag is a multipart-style ETag derived from seed and size: the
// upper-hex MD5 of "ossemu-synthetic:<seed>:<size>", then "-N" with N the
// number of 16 MiB parts (at least 1).
func syntheticETag(seed uint64, size int64) string {
	sum := md5.Sum([]byte(fmt.Sprintf("ossemu-synthetic:%d:%d", seed, size)))
	parts := max(1, (size+syntheticPartSize-1)/syntheticPartSize)
	return strings.ToUpper(hex.EncodeToString(sum[:])) + "-" + strconv.FormatInt(parts, 10)
}

// PutSynthetic stores an object of size bytes whose content is generated
// from seed on demand (see SyntheticReader) instead of held in memory, so
// multi-GiB objects cost nothing but the time to compute their CRC64 once
// (cached per size and seed). It looks like a multipart upload: object
// type Multipart, a multipart-style ETag (see syntheticETag), the exact
// CRC64 of its content, and an ObjectCreated:CompleteMultipartUpload
// event. header may carry the content headers, x-oss-meta-*,
// x-oss-storage-class and x-oss-tagging. It bypasses signatures and faults
// and creates the bucket if needed. Every read path (GET, HEAD, ranges,
// listings, CopyObject, the S3 API, faults) treats it as a stored object.
func (s *Server) PutSynthetic(bucket, key string, size int64, seed uint64, header http.Header) (ObjectInfo, error) {
	if e := validKey(key); e != nil {
		return ObjectInfo{}, e
	}
	if size < 0 {
		return ObjectInfo{}, fmt.Errorf("ossemu: PutSynthetic %s/%s: negative size %d", bucket, key, size)
	}
	if header == nil {
		header = http.Header{}
	}
	meta, e := objectMetaFromRequest(header)
	if e != nil {
		return ObjectInfo{}, e
	}
	crc := s.syntheticCRC64(size, seed)
	o := s.newObject(key, nil, nil, crc, "Multipart", meta)
	o.info.Size = size
	o.info.ETag = syntheticETag(seed, size)
	o.info.Synthetic, o.info.Seed = true, seed
	s.mu.Lock()
	old := s.createBucketLocked(bucket).put(o)
	s.emitPut("ObjectCreated:CompleteMultipartUpload", bucket, "", o, old)
	s.mu.Unlock()
	return o.info.clone(), nil
}
