package transfer

import (
	"context"
	"errors"
	"hash"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer/crc64ecma"
)

// DefaultLease is CopyConfig.Lease unless configured: a dead worker's copy
// is resumed about 10 s after it died (the lease, one sweep and the
// pickup; the goal is 15 s), while a live one renews it five times per
// lease, so a renewal can fail for 6 s (a NATS leader election) without
// the copy changing hands.
const DefaultLease = 8 * time.Second

// The other defaults of CopyConfig, and of NewCopier's budget: what a
// process copies with unless configured otherwise.
const (
	DefaultPartSize           = 8 * MiB
	DefaultMultipartThreshold = 16 * MiB
	DefaultPartsInFlight      = 4
	DefaultGiantThreshold     = GiB
	DefaultMemoryBudget       = 64 * MiB
)

// ErrBusy means another worker is copying the same object version right
// now; the job should come back later.
var ErrBusy = errors.New("another worker is copying this object version")

// CopyConfig bounds how the copier streams objects.
type CopyConfig struct {
	PartSize           ByteSize // smallest part; grows with the object so that no object needs more than MaxParts
	MultipartThreshold ByteSize // objects this size or larger go multipart
	PartsInFlight      int      // parts of one object being transferred at once
	GiantThreshold     ByteSize // objects this size or larger are split into part jobs for every replica
	// Lease is how long a multipart copy's checkpoint stays its worker's
	// without a heartbeat (one every Lease/5): after that, the worker is
	// taken for dead and another resumes the copy from its last part.
	Lease time.Duration
}

func (c CopyConfig) withDefaults() CopyConfig {
	if c.PartSize <= 0 {
		c.PartSize = DefaultPartSize
	}
	if c.MultipartThreshold <= 0 {
		c.MultipartThreshold = DefaultMultipartThreshold
	}
	if c.PartsInFlight <= 0 {
		c.PartsInFlight = DefaultPartsInFlight
	}
	if c.GiantThreshold <= 0 {
		c.GiantThreshold = DefaultGiantThreshold
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	return c
}

// Copier streams objects from a Source to a Destination. Its memory is
// bounded by a byte budget shared by every copy in the process: a part
// buffer is taken from the budget before it is filled and given back when
// the part is uploaded. A quarter of the budget is kept for small objects
// read whole: a part waiting for the budget (the semaphore is first come,
// first served) would otherwise hold up every small object behind it, and
// the small lane would wait for the large one after all. Multipart copies are checkpointed (when the copier
// has a checkpoint store), so that a copy interrupted by a crash continues
// from its last finished part.
type Copier struct {
	budget     *semaphore.Weighted // part buffers: the budget less the small objects' share
	budgetSize int64               // the part buffers' share
	whole      *semaphore.Weighted // small objects read whole; budget if there is no share for them
	total      int64               // the whole budget
	bufMu      sync.Mutex
	bufSize    int64    // the size of the buffers in free
	free       [][]byte // idle part buffers
	ckpt       *Checkpoints
	owner      string
	now        func() time.Time
	m          *metrics.Metrics // nil: not measured
	parts      partRules
}

// Measure makes the copier report its parts in flight and the memory
// budget they use to m.
func (c *Copier) Measure(m *metrics.Metrics) *Copier {
	c.m = m
	if m != nil {
		m.MemoryBudget.Set(float64(c.total))
	}
	return c
}

// take takes a part buffer of n bytes from the budget, waiting for it.
func (c *Copier) take(ctx context.Context, n int64) error { return c.takeFrom(ctx, c.budget, n) }

// give gives back what take took.
func (c *Copier) give(n int64) { c.giveTo(c.budget, n) }

// takeWhole takes the buffer of a small object read whole from the small
// objects' share of the budget, waiting for it.
func (c *Copier) takeWhole(ctx context.Context, n int64) error { return c.takeFrom(ctx, c.whole, n) }

// giveWhole gives back what takeWhole took.
func (c *Copier) giveWhole(n int64) { c.giveTo(c.whole, n) }

func (c *Copier) takeFrom(ctx context.Context, s *semaphore.Weighted, n int64) error {
	if err := s.Acquire(ctx, n); err != nil {
		return err
	}
	c.m.BudgetTaken(n)
	return nil
}

func (c *Copier) giveTo(s *semaphore.Weighted, n int64) {
	c.m.BudgetGiven(n)
	s.Release(n)
}

// NewCopier returns a copier whose part buffers never exceed budget bytes
// in all. ckpt may be nil (no resume).
func NewCopier(budget ByteSize, ckpt *Checkpoints, owner string) *Copier {
	if budget <= 0 {
		budget = DefaultMemoryBudget
	}
	c := &Copier{total: int64(budget), ckpt: ckpt, owner: owner, now: time.Now, parts: s3Parts}
	// The small objects' share holds at least one of them; a budget too
	// small for a share (under 4 MiB) is shared by both.
	share := int64(budget) / 4
	if share < int64(smallPutMax)+1 {
		share = 0
	}
	c.budgetSize = int64(budget) - share
	c.budget = semaphore.NewWeighted(c.budgetSize)
	c.whole = c.budget
	if share > 0 {
		c.whole = semaphore.NewWeighted(share)
	}
	return c
}

// CopyResult says what a copy did.
type CopyResult struct {
	Bytes     int64 // bytes transferred by this attempt
	Parts     int   // parts of the object (0 for a single PUT)
	Resumed   int   // parts already done by an earlier attempt
	CRC64     uint64
	Multipart bool
	Duration  time.Duration
	// Skipped: the destination already held this source version
	// (Object.KeepCurrent); nothing was written.
	Skipped bool
	// Created: the write was create-only and found no object: it
	// overwrote nothing, a newer version least of all.
	Created bool
}

// Object names one copy: which task, from which source object (as a HEAD
// saw it) to which destination key.
type Object struct {
	Task   string
	Src    Source
	Dst    Destination
	Info   *ObjectInfo
	DstKey string
	Write  *WriteInfo
	// KeepCurrent: leave a destination object that already holds this
	// source version alone (CopyResult.Skipped). Only objects that take
	// the whole-object path (WritesWhole) look; for others the caller
	// HEADs the destination before the copy.
	KeepCurrent bool
	// Abandon names an upload not to resume: the orphan sweeper gave it
	// up (its parts' jobs are dropping themselves), and is aborting it.
	Abandon string
}

// Copy makes o.DstKey a verified copy of the source version o.Info
// describes. It returns ErrChecksumMismatch if the bytes read do not match
// the source's length or CRC-64, ErrSourceChanged if the object changed
// while it was read; in both cases no wrong object is completed.
func (c *Copier) Copy(ctx context.Context, o Object, cfg CopyConfig) (*CopyResult, error) {
	start := c.now()
	cfg = cfg.withDefaults()
	var res *CopyResult
	var err error
	if o.Info.Size < int64(cfg.MultipartThreshold) {
		res, err = c.single(ctx, o)
	} else {
		res, err = c.multipart(ctx, o, cfg)
	}
	if err != nil {
		return nil, err
	}
	res.Duration = c.now().Sub(start)
	return res, nil
}

func (c *Copier) single(ctx context.Context, o Object) (*CopyResult, error) {
	body, err := o.Src.Get(ctx, o.Info.Key, o.Info.ETag, 0, -1)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return c.put(ctx, o, body)
}

// CopyBody copies a small object whose body is already open (a GET that
// also gave o.Info): one PUT, verified as Copy verifies.
func (c *Copier) CopyBody(ctx context.Context, o Object, body io.Reader) (*CopyResult, error) {
	start := c.now()
	res, err := c.put(ctx, o, body)
	if err != nil {
		return nil, err
	}
	res.Duration = c.now().Sub(start)
	return res, nil
}

// smallPutMax is the largest object read whole into memory before its PUT
// (to a BytesPutter): its CRC-64 is checked before anything is written,
// and the PUT carries a fixed body with its checksum in a header.
const smallPutMax = 1 * MiB

func (c *Copier) put(ctx context.Context, o Object, body io.Reader) (*CopyResult, error) {
	v := newVerifier(body, o.Info)
	if bp, ok := o.Dst.(BytesPutter); ok && o.Info.Size <= int64(smallPutMax) {
		return c.putBytes(ctx, o, bp, v)
	}
	if err := o.Dst.Put(ctx, o.DstKey, v, o.Info.Size, o.Write); err != nil {
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

// putBytes reads the whole object (counted in the budget), checks it
// against the source's length and CRC-64, and only then writes it.
func (c *Copier) putBytes(ctx context.Context, o Object, bp BytesPutter, v *verifier) (*CopyResult, error) {
	need := o.Info.Size + 1 // one byte more, to see a source that sends too much
	if err := c.takeWhole(ctx, need); err != nil {
		return nil, err
	}
	defer c.giveWhole(need)
	buf := make([]byte, need)
	n, err := io.ReadFull(v, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	if err := v.verify(); err != nil {
		return nil, err
	}
	res := &CopyResult{Bytes: v.n, CRC64: v.sum()}
	if o.KeepCurrent {
		// Create-only first: for a key the destination does not have yet
		// (a first copy, most events) this one request both looks and
		// writes. Only a key that exists is looked at.
		err := bp.PutBytes(ctx, o.DstKey, buf[:n], o.Write, true)
		if !errors.Is(err, ErrExists) {
			res.Created = err == nil
			return res, err
		}
		cur, err := o.Dst.Head(ctx, o.DstKey)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if err == nil && HoldsVersion(cur, o.Info) {
			res.Skipped, res.Bytes = true, 0
			return res, nil
		}
	}
	if err := bp.PutBytes(ctx, o.DstKey, buf[:n], o.Write, false); err != nil {
		return nil, err
	}
	return res, nil
}

// WritesWhole reports whether a copy of size bytes to dst takes the
// whole-object path (read, verify, one PUT), where Object.KeepCurrent
// replaces a HEAD before the copy.
func WritesWhole(dst Destination, size int64) bool {
	_, ok := dst.(BytesPutter)
	return ok && size <= int64(smallPutMax)
}

// buffer returns a part buffer of size bytes. Buffers are reused through a
// free list of one size (the common part size); there is no sync.Pool,
// whose idle buffers would live on beside the budget until two GCs later.
// With every buffer in use covered by the budget, buffers in use plus idle
// never exceed it.
func (c *Copier) buffer(size int64) []byte {
	c.bufMu.Lock()
	if size == c.bufSize && len(c.free) > 0 {
		b := c.free[len(c.free)-1]
		c.free = c.free[:len(c.free)-1]
		c.bufMu.Unlock()
		return b
	}
	if size != c.bufSize {
		c.free, c.bufSize = nil, size
	}
	c.bufMu.Unlock()
	return make([]byte, size)
}

func (c *Copier) putBuffer(size int64, buf []byte) {
	c.bufMu.Lock()
	if size == c.bufSize {
		c.free = append(c.free, buf[:cap(buf)])
	}
	c.bufMu.Unlock()
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
	return &verifier{r: r, h: crc64ecma.New(), want: info.Size, wantCRC: info.CRC64, hasCRC: info.HasCRC64}
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
