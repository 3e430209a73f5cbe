package transfer_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"hash/crc64"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// cut, if it returns true for a read at offset, sends half the range
	// and ends the body, as a connection cut mid-body does.
	cut func(key string, offset int64) bool
	// getWait, if set, is called by Get with its context first: a test
	// holds a copy in its GET with it.
	getWait  func(ctx context.Context, key string) error
	gets     atomic.Int32
	heads    atomic.Int32
	restores atomic.Int32
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

func (s *memSource) object(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[key]
	return b, ok
}

// edit changes what Head reports for key (storage class, type, ...).
func (s *memSource) edit(key string, f func(*transfer.ObjectInfo)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := s.info[key]
	f(&info)
	s.info[key] = info
}

func (s *memSource) del(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, key)
	delete(s.info, key)
}

// Open implements transfer.Opener: a GET that also gives the headers.
func (s *memSource) Open(ctx context.Context, key string) (*transfer.ObjectInfo, io.ReadCloser, error) {
	s.mu.Lock()
	info, ok := s.info[key]
	s.mu.Unlock()
	if !ok {
		s.gets.Add(1)
		return nil, nil, fmt.Errorf("get %q: %w", key, transfer.ErrNotFound)
	}
	body, err := s.Get(ctx, key, info.ETag, 0, -1)
	if err != nil {
		return nil, nil, err
	}
	return &info, body, nil
}

// Restore implements transfer.Restorer: the restore finishes at once, but
// is only seen by the next Head.
func (s *memSource) Restore(_ context.Context, key string) error {
	s.restores.Add(1)
	s.edit(key, func(i *transfer.ObjectInfo) {
		i.Restore = `ongoing-request="false", expiry-date="Sun, 16 Apr 2030 08:12:33 GMT"`
	})
	return nil
}

func (s *memSource) Head(_ context.Context, key string) (*transfer.ObjectInfo, error) {
	s.heads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	info, ok := s.info[key]
	if !ok {
		return nil, fmt.Errorf("head %q: %w", key, transfer.ErrNotFound)
	}
	return &info, nil
}

func (s *memSource) Get(ctx context.Context, key, etag string, offset, length int64) (io.ReadCloser, error) {
	s.gets.Add(1)
	if s.getWait != nil {
		if err := s.getWait(ctx, key); err != nil {
			return nil, err
		}
	}
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
		return nil, fmt.Errorf("get %q: %w", key, transfer.ErrSourceChanged)
	}
	if info := s.info[key]; info.NeedsRestore() {
		return nil, transfer.Permanent(fmt.Errorf("get %q: InvalidObjectState", key))
	}
	if s.corrupt != nil {
		data = s.corrupt(key, append([]byte(nil), data...))
	}
	end := int64(len(data))
	if length >= 0 {
		end = min(end, offset+length)
	}
	if s.cut != nil && s.cut(key, offset) {
		end = offset + (end-offset)/2
	}
	return io.NopCloser(bytes.NewReader(data[offset:end])), nil
}

// memDest is an in-memory Destination that records what it was sent.
type memDest struct {
	mu      sync.Mutex
	objects map[string][]byte
	info    map[string]transfer.ObjectInfo
	uploads map[string]*memUpload
	crcs    map[string]uint64
	nextID  int
	aborted int
	putErr  func(key string) error
	partErr func(key string, n int32) error
	// lostCreate, if it returns true, makes CreateUpload create the
	// upload and answer an error, as an answer lost on the way does.
	lostCreate func(key string) bool
	// onAbort, if set, is called after an upload is aborted.
	onAbort func(key, id string)
	// beforeAbort, if set, is called by AbortUpload first.
	beforeAbort func(key, id string)
	completed   []string     // the uploads completed, in order
	inFlight    atomic.Int64 // part bytes being uploaded now
	peakBytes   atomic.Int64
	parts       atomic.Int32
	heads       atomic.Int32
}

func newMemDest() *memDest {
	return &memDest{objects: map[string][]byte{}, info: map[string]transfer.ObjectInfo{}, uploads: map[string]*memUpload{}}
}

type memUpload struct {
	key       string
	info      transfer.ObjectInfo
	parts     map[int32][]byte
	initiated time.Time
}

func stored(w *transfer.WriteInfo, size int) transfer.ObjectInfo {
	info := *w.Source
	info.Size = int64(size)
	info.Meta = map[string]string{}
	for k, v := range w.Source.Meta {
		info.Meta[k] = v
	}
	for k, v := range transfer.SourceIdentity(w.Source) {
		info.Meta[k] = v
	}
	return info
}

func (d *memDest) Head(_ context.Context, key string) (*transfer.ObjectInfo, error) {
	d.heads.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	info, ok := d.info[key]
	if !ok {
		return nil, transfer.ErrNotFound
	}
	return &info, nil
}

func (d *memDest) Delete(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.objects, key)
	delete(d.info, key)
	return nil
}

func (d *memDest) Put(_ context.Context, key string, body io.Reader, size int64, w *transfer.WriteInfo) error {
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
	d.objects[key], d.info[key] = b, stored(w, len(b))
	return nil
}

func (d *memDest) object(key string) ([]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.objects[key]
	return b, ok
}

func (d *memDest) CreateUpload(_ context.Context, key string, w *transfer.WriteInfo) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextID++
	id := fmt.Sprintf("upload-%d", d.nextID)
	d.uploads[id] = &memUpload{key: key, info: stored(w, 0), parts: map[int32][]byte{}, initiated: time.Now()}
	if d.lostCreate != nil && d.lostCreate(key) {
		return "", fmt.Errorf("create multipart upload %q: connection reset by peer", key)
	}
	return id, nil
}

// ListUploads implements transfer.UploadLister.
func (d *memDest) ListUploads(_ context.Context, prefix string, fn func(transfer.Upload) bool) error {
	d.mu.Lock()
	var all []transfer.Upload
	for id, u := range d.uploads {
		if strings.HasPrefix(u.key, prefix) {
			all = append(all, transfer.Upload{Key: u.key, UploadID: id, Initiated: u.initiated})
		}
	}
	d.mu.Unlock()
	for _, u := range all {
		if !fn(u) {
			break
		}
	}
	return nil
}

// bringBack plays a part upload that the destination finishes after the
// upload was aborted, as S3 warns may happen: once the upload of key is
// aborted, it exists again, holding that part.
func (d *memDest) bringBack(key string) {
	d.mu.Lock()
	var id string
	var u *memUpload
	for i, x := range d.uploads {
		if x.key == key {
			id, u = i, x
		}
	}
	d.mu.Unlock()
	go func() {
		for {
			d.mu.Lock()
			_, open := d.uploads[id]
			if !open {
				d.uploads[id] = &memUpload{key: key, info: u.info, parts: map[int32][]byte{2: []byte("late")}, initiated: time.Now()}
				d.mu.Unlock()
				return
			}
			d.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
}

// backdate makes upload id look started at t.
func (d *memDest) backdate(id string, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.uploads[id].initiated = t
}

// hasUpload reports whether upload id is still open.
func (d *memDest) hasUpload(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.uploads[id]
	return ok
}

func (d *memDest) UploadPart(_ context.Context, key, id string, n int32, part []byte) (transfer.Part, error) {
	now := d.inFlight.Add(int64(len(part)))
	defer d.inFlight.Add(-int64(len(part)))
	for {
		peak := d.peakBytes.Load()
		if now <= peak || d.peakBytes.CompareAndSwap(peak, now) {
			break
		}
	}
	if d.partErr != nil {
		if err := d.partErr(key, n); err != nil {
			return transfer.Part{}, err
		}
	}
	d.parts.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.uploads[id]
	if !ok || u.key != key {
		return transfer.Part{}, transfer.ErrNoSuchUpload
	}
	u.parts[n] = append([]byte(nil), part...) // the copier reuses its buffers
	sum := md5.Sum(part)
	return transfer.Part{Number: n, Size: int64(len(part)), ETag: hex.EncodeToString(sum[:])}, nil
}

func (d *memDest) CompleteUpload(_ context.Context, key, id string, parts []transfer.Part) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.uploads[id]
	if !ok || u.key != key {
		return transfer.ErrNoSuchUpload
	}
	var all []byte
	for i, p := range parts {
		b, ok := u.parts[p.Number]
		if int(p.Number) != i+1 || !ok {
			return fmt.Errorf("complete %q: part %d missing", key, i+1)
		}
		all = append(all, b...)
	}
	info := u.info
	info.Size = int64(len(all))
	d.objects[key], d.info[key] = all, info
	delete(d.uploads, id)
	d.completed = append(d.completed, id)
	return nil
}

func (d *memDest) AbortUpload(_ context.Context, key, id string) error {
	if d.beforeAbort != nil {
		d.beforeAbort(key, id)
	}
	d.mu.Lock()
	if _, ok := d.uploads[id]; !ok {
		d.mu.Unlock()
		return transfer.ErrNoSuchUpload
	}
	delete(d.uploads, id)
	d.aborted++
	d.mu.Unlock()
	if d.onAbort != nil {
		d.onAbort(key, id)
	}
	return nil
}

func (d *memDest) RecordCRC64(_ context.Context, key string, crc uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crcs == nil {
		d.crcs = map[string]uint64{}
	}
	d.crcs[key] = crc
	return nil
}

func (d *memDest) recordedCRC(key string) (uint64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.crcs[key]
	return c, ok
}

func (d *memDest) openUploads() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.uploads)
}

// memBytesDest is a memDest that also takes small objects whole, as
// S3Destination does, counting the calls.
type memBytesDest struct {
	*memDest
	bytesPuts atomic.Int32
}

func (d *memBytesDest) PutBytes(ctx context.Context, key string, body []byte, w *transfer.WriteInfo, ifAbsent bool) error {
	d.bytesPuts.Add(1)
	if ifAbsent {
		if _, ok := d.object(key); ok {
			return transfer.ErrExists
		}
	}
	return d.Put(ctx, key, bytes.NewReader(body), int64(len(body)), w)
}
