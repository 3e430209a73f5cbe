package transfer_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"hash/crc64"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/oss2s3/oss2s3/transfer"
)

// memSource is an in-memory Source for unit tests.
type memSource struct {
	mu      sync.Mutex
	objects map[string][]byte
	info    map[string]transfer.ObjectInfo
	// corrupt, if set, changes the bytes Get returns (CRC stays the original's).
	corrupt func(key string, b []byte) []byte
	getErr  func(key string) error
	gets    atomic.Int32
}

func newMemSource() *memSource {
	return &memSource{objects: map[string][]byte{}, info: map[string]transfer.ObjectInfo{}}
}

func (s *memSource) put(key string, data []byte, meta map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := md5.Sum(data)
	s.objects[key] = data
	s.info[key] = transfer.ObjectInfo{
		Key: key, Size: int64(len(data)), ETag: strings.ToUpper(hex.EncodeToString(sum[:])),
		CRC64: crc64.Checksum(data, crc64.MakeTable(crc64.ECMA)), HasCRC64: true,
		ContentType: "text/plain", Meta: meta,
	}
}

func (s *memSource) Head(_ context.Context, key string) (*transfer.ObjectInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, ok := s.info[key]
	if !ok {
		return nil, fmt.Errorf("head %q: %w", key, transfer.ErrNotFound)
	}
	return &info, nil
}

func (s *memSource) Get(_ context.Context, key, etag string, offset, length int64) (io.ReadCloser, error) {
	s.gets.Add(1)
	if s.getErr != nil {
		if err := s.getErr(key); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.objects[key]
	if !ok {
		return nil, transfer.ErrNotFound
	}
	if etag != "" && etag != s.info[key].ETag {
		return nil, fmt.Errorf("precondition failed")
	}
	if s.corrupt != nil {
		data = s.corrupt(key, append([]byte(nil), data...))
	}
	end := int64(len(data))
	if length >= 0 {
		end = min(end, offset+length)
	}
	return io.NopCloser(bytes.NewReader(data[offset:end])), nil
}

// memDest is an in-memory Destination that records what it was sent.
type memDest struct {
	mu        sync.Mutex
	objects   map[string][]byte
	info      map[string]transfer.ObjectInfo
	aborted   int
	putErr    func(key string) error
	partErr   func(key string, n int32) error
	inFlight  atomic.Int64 // part bytes being uploaded now
	peakBytes atomic.Int64
	parts     atomic.Int32
}

func newMemDest() *memDest {
	return &memDest{objects: map[string][]byte{}, info: map[string]transfer.ObjectInfo{}}
}

func (d *memDest) Put(_ context.Context, key string, body io.Reader, size int64, info *transfer.ObjectInfo) error {
	if d.putErr != nil {
		if err := d.putErr(key); err != nil {
			return err
		}
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return fmt.Errorf("put %q: got %d bytes, content-length %d", key, len(b), size)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.objects[key], d.info[key] = b, *info
	return nil
}

func (d *memDest) object(key string) ([]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.objects[key]
	return b, ok
}

func (d *memDest) NewUpload(_ context.Context, key string, info *transfer.ObjectInfo) (transfer.Upload, error) {
	return &memUpload{d: d, key: key, info: *info, parts: map[int32][]byte{}}, nil
}

type memUpload struct {
	d     *memDest
	key   string
	info  transfer.ObjectInfo
	mu    sync.Mutex
	parts map[int32][]byte
}

func (u *memUpload) UploadPart(_ context.Context, n int32, part []byte) error {
	now := u.d.inFlight.Add(int64(len(part)))
	defer u.d.inFlight.Add(-int64(len(part)))
	for {
		peak := u.d.peakBytes.Load()
		if now <= peak || u.d.peakBytes.CompareAndSwap(peak, now) {
			break
		}
	}
	if u.d.partErr != nil {
		if err := u.d.partErr(u.key, n); err != nil {
			return err
		}
	}
	u.d.parts.Add(1)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.parts[n] = append([]byte(nil), part...) // the copier reuses its buffers
	return nil
}

func (u *memUpload) Complete(context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	nums := make([]int, 0, len(u.parts))
	for n := range u.parts {
		nums = append(nums, int(n))
	}
	sort.Ints(nums)
	var all []byte
	for i, n := range nums {
		if n != i+1 {
			return fmt.Errorf("complete %q: part %d missing", u.key, i+1)
		}
		all = append(all, u.parts[int32(n)]...)
	}
	u.d.mu.Lock()
	defer u.d.mu.Unlock()
	u.d.objects[u.key], u.d.info[u.key] = all, u.info
	return nil
}

func (u *memUpload) Abort(context.Context) error {
	u.d.mu.Lock()
	defer u.d.mu.Unlock()
	u.d.aborted++
	return nil
}
