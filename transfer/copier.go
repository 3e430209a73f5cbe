package transfer

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// S3 multipart limits.
const (
	MaxParts    = 10_000
	MinPartSize = 5 * MiB
	MaxPartSize = 5 * GiB
)

var crcTable = crc64.MakeTable(crc64.ECMA)

// CopyConfig bounds how the copier streams objects.
type CopyConfig struct {
	PartSize           ByteSize // smallest part; grows with the object so that no object needs more than MaxParts
	MultipartThreshold ByteSize // objects this size or larger go multipart
	PartsInFlight      int      // parts of one object being uploaded at once
}

func (c CopyConfig) withDefaults() CopyConfig {
	if c.PartSize <= 0 {
		c.PartSize = 8 * MiB
	}
	if c.PartSize < MinPartSize {
		c.PartSize = MinPartSize
	}
	if c.MultipartThreshold <= 0 {
		c.MultipartThreshold = 16 * MiB
	}
	if c.PartsInFlight <= 0 {
		c.PartsInFlight = 4
	}
	return c
}

// PartSizeFor returns the part size for an object of size bytes: the
// configured size, or the smallest whole MiB that fits the object into
// MaxParts parts.
func PartSizeFor(configured ByteSize, size int64) int64 {
	p := int64(configured)
	if need := (size + MaxParts - 1) / MaxParts; need > p {
		p = need
	}
	if r := p % int64(MiB); r != 0 {
		p += int64(MiB) - r
	}
	return min(p, int64(MaxPartSize))
}

// Copier streams objects from a Source to a Destination. Its memory is
// bounded by a byte budget shared by every copy in the process: a part
// buffer is taken from the budget before it is filled and returned when the
// part is uploaded.
type Copier struct {
	budget     *semaphore.Weighted
	budgetSize int64
	pools      sync.Map // part size -> *sync.Pool of []byte
}

// NewCopier returns a copier whose part buffers never exceed budget bytes
// in all.
func NewCopier(budget ByteSize) *Copier {
	if budget <= 0 {
		budget = 256 * MiB
	}
	return &Copier{budget: semaphore.NewWeighted(int64(budget)), budgetSize: int64(budget)}
}

// CopyResult says what a copy did.
type CopyResult struct {
	Bytes     int64
	Parts     int // 0 for a single PUT
	Info      *ObjectInfo
	Duration  time.Duration
	CRC64     uint64 // of the bytes copied
	Multipart bool
}

// Copy makes dstKey in dst a verified copy of the current version of key
// in src. It returns an error wrapping ErrNotFound if the source has no such
// key, and ErrChecksumMismatch if the bytes read do not match the source's
// length or CRC-64 (nothing mismatched is left behind as the destination's
// current object when the destination checks what it stores).
func (c *Copier) Copy(ctx context.Context, src Source, dst Destination, key, dstKey string, cfg CopyConfig) (*CopyResult, error) {
	start := time.Now()
	cfg = cfg.withDefaults()
	info, err := src.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	var res *CopyResult
	if info.Size < int64(cfg.MultipartThreshold) {
		res, err = c.single(ctx, src, dst, info, dstKey)
	} else {
		res, err = c.multipart(ctx, src, dst, info, dstKey, cfg)
	}
	if err != nil {
		return nil, err
	}
	res.Info, res.Duration = info, time.Since(start)
	return res, nil
}

func (c *Copier) single(ctx context.Context, src Source, dst Destination, info *ObjectInfo, dstKey string) (*CopyResult, error) {
	body, err := src.Get(ctx, info.Key, info.ETag, 0, -1)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	v := newVerifier(body, info)
	if err := dst.Put(ctx, dstKey, v, info.Size, info); err != nil {
		if v.err != nil {
			return nil, v.err
		}
		return nil, err
	}
	if err := v.verify(); err != nil {
		return nil, err
	}
	return &CopyResult{Bytes: v.n, CRC64: v.sum()}, nil
}

func (c *Copier) multipart(ctx context.Context, src Source, dst Destination, info *ObjectInfo, dstKey string, cfg CopyConfig) (res *CopyResult, err error) {
	partSize := PartSizeFor(cfg.PartSize, info.Size)
	body, err := src.Get(ctx, info.Key, info.ETag, 0, -1)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	up, err := dst.NewUpload(ctx, dstKey, info)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			// The upload's parts cost storage until aborted; abort even
			// if ctx is already cancelled.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if aerr := up.Abort(actx); aerr != nil {
				err = fmt.Errorf("%w (and abort failed: %v)", err, aerr)
			}
		}
	}()

	v := newVerifier(body, info)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.PartsInFlight)
	parts := 0
	for off := int64(0); off < info.Size; off += partSize {
		n := min(partSize, info.Size-off)
		weight := min(n, c.budgetSize)
		if err := c.budget.Acquire(gctx, weight); err != nil {
			break // gctx is done: g.Wait below says why
		}
		buf := c.buffer(partSize)[:n]
		if _, err := io.ReadFull(v, buf); err != nil {
			c.release(partSize, buf, weight)
			g.Go(func() error { return readErr(v, err) })
			break
		}
		parts++
		number := int32(parts)
		g.Go(func() error {
			defer c.release(partSize, buf, weight)
			return up.UploadPart(gctx, number, buf)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := v.verify(); err != nil {
		return nil, err
	}
	if err := up.Complete(ctx); err != nil {
		return nil, err
	}
	return &CopyResult{Bytes: v.n, Parts: parts, CRC64: v.sum(), Multipart: true}, nil
}

func readErr(v *verifier, err error) error {
	if v.err != nil {
		return v.err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return mismatch("source ended after %d of %d bytes", v.n, v.want)
	}
	return fmt.Errorf("read source: %w", err)
}

func (c *Copier) buffer(size int64) []byte {
	p, _ := c.pools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	return *(p.(*sync.Pool).Get().(*[]byte))
}

func (c *Copier) release(size int64, buf []byte, weight int64) {
	if p, ok := c.pools.Load(size); ok {
		buf = buf[:cap(buf)]
		p.(*sync.Pool).Put(&buf)
	}
	c.budget.Release(weight)
}

// verifier passes the source's bytes through, counting them and computing
// their CRC-64/ECMA. At the end of the stream it checks the count and, where
// the source published one, the CRC: a mismatch turns the final EOF into an
// error, so that a destination reading the body fails the upload instead of
// storing wrong bytes.
type verifier struct {
	r       io.Reader
	h       hash.Hash64
	n, want int64
	wantCRC uint64
	hasCRC  bool
	err     error
}

func newVerifier(r io.Reader, info *ObjectInfo) *verifier {
	return &verifier{r: r, h: crc64.New(crcTable), want: info.Size, wantCRC: info.CRC64, hasCRC: info.HasCRC64}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if rem := v.want - v.n; int64(len(p)) > rem+1 {
		p = p[:rem+1] // read at most one byte past the end, to see an overlong source
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.want {
		v.err = mismatch("source sent more than its %d bytes", v.want)
		return n, v.err
	}
	if err == io.EOF {
		if verr := v.verify(); verr != nil {
			return n, verr
		}
	}
	return n, err
}

func (v *verifier) sum() uint64 { return v.h.Sum64() }

// verify checks what has been read so far is the whole object, unchanged.
func (v *verifier) verify() error {
	if v.err != nil {
		return v.err
	}
	switch {
	case v.n != v.want:
		v.err = mismatch("read %d bytes, source says %d", v.n, v.want)
	case v.hasCRC && v.sum() != v.wantCRC:
		v.err = mismatch("crc64 of the bytes read is %d, source says %d", v.sum(), v.wantCRC)
	}
	return v.err
}
