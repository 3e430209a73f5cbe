package ossemu

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key  string
	Size int64
	// ETag as OSS returns it: upper-case hex, no quotes; "HEX-N" for
	// multipart objects.
	ETag         string
	CRC64        uint64 // CRC-64/ECMA-182 of the whole object
	LastModified time.Time
	ContentType  string
	StorageClass string // Standard, IA, Archive, ColdArchive, DeepColdArchive
	ObjectType   string // Normal, Multipart, Appendable, Symlink
	// Meta is the user metadata without the x-oss-meta- prefix, keys lower-case.
	Meta map[string]string
	// Header holds the stored content headers (Content-Type,
	// Content-Encoding, Content-Language, Content-Disposition,
	// Cache-Control, Expires).
	Header http.Header
	// Tags is the object's tag set (x-oss-tagging, PutObjectTagging).
	Tags map[string]string
	// SymlinkTarget is the key a Symlink points to (same bucket).
	SymlinkTarget string
	// Synthetic objects (PutSynthetic) hold no bytes: their content is
	// SyntheticReader(Size, Seed, 0).
	Synthetic bool
	Seed      uint64
}

func (o ObjectInfo) clone() ObjectInfo {
	o.Meta = maps.Clone(o.Meta)
	o.Header = o.Header.Clone()
	o.Tags = maps.Clone(o.Tags)
	return o
}

// object is a stored object. info and data are never modified once the
// object is stored (a write stores a new *object), so a reader may use them
// without the lock; restore is guarded by the Server's mutex. The content
// is data, or for a synthetic object generated from info.Seed; a symlink
// has none (see resolveLocked).
type object struct {
	info ObjectInfo
	data []byte
	// md5 is set for objects with a known MD5 (Normal objects get a
	// Content-MD5 response header); for Appendable objects it is the running
	// hash of everything appended so far.
	md5     []byte
	appendH hash.Hash
	restore restoreState
}

type restoreState struct {
	readyAt time.Time // zero: never restored
	expires time.Time
}

var crcTable = crc64.MakeTable(crc64.ECMA)

// Storage classes OSS knows, by their lower-case names.
var storageClasses = map[string]string{
	"standard": "Standard", "ia": "IA", "archive": "Archive",
	"coldarchive": "ColdArchive", "deepcoldarchive": "DeepColdArchive",
}

func isArchived(class string) bool {
	return class == "Archive" || class == "ColdArchive" || class == "DeepColdArchive"
}

// contentHeaders are the request headers stored with an object and returned
// by GET and HEAD.
var contentHeaders = []string{"Content-Type", "Content-Encoding", "Content-Language", "Content-Disposition", "Cache-Control", "Expires"}

const (
	maxKeyBytes    = 1023
	maxObjectBytes = 5 << 30 // PutObject, UploadPart, AppendObject
	maxTags        = 10
)

// Object returns a stored object's description and a copy of its bytes.
// A symlink is described as such (ObjectType "Symlink", SymlinkTarget)
// with no bytes; a synthetic object has no bytes either (read them with
// SyntheticReader).
func (s *Server) Object(bucket, key string) (ObjectInfo, []byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return ObjectInfo{}, nil, false
	}
	o := b.objects[key]
	if o == nil {
		return ObjectInfo{}, nil, false
	}
	return o.info.clone(), bytes.Clone(o.data), true
}

// PutObject stores an object as a client's PutObject would, bypassing
// signatures and faults, and sends its webhook event. header may carry the
// content headers, x-oss-meta-*, x-oss-storage-class and x-oss-tagging.
// The bucket is created if needed.
func (s *Server) PutObject(bucket, key string, data []byte, header http.Header) (ObjectInfo, error) {
	if e := validKey(key); e != nil {
		return ObjectInfo{}, e
	}
	if header == nil {
		header = http.Header{}
	}
	meta, e := objectMetaFromRequest(header)
	if e != nil {
		return ObjectInfo{}, e
	}
	sum := md5.Sum(data)
	o := s.newObject(key, bytes.Clone(data), sum[:], crc64.Checksum(data, crcTable), "Normal", meta)
	s.mu.Lock()
	old := s.createBucketLocked(bucket).put(o)
	s.emitPut("ObjectCreated:PutObject", bucket, "", o, old)
	s.mu.Unlock()
	return o.info.clone(), nil
}

// DeleteObject removes an object as a client's DeleteObject would,
// bypassing signatures and faults, and sends its webhook event.
func (s *Server) DeleteObject(bucket, key string) {
	s.mu.Lock()
	if b := s.buckets[bucket]; b != nil {
		s.emitRemove("ObjectRemoved:DeleteObject", bucket, "", key, b.remove(key))
	}
	s.mu.Unlock()
}

// requestMeta is what a write request says about the object beyond its bytes.
type requestMeta struct {
	header       http.Header
	meta         map[string]string
	storageClass string
	tags         map[string]string
}

func objectMetaFromRequest(h http.Header) (requestMeta, *ossError) {
	m := requestMeta{header: http.Header{}, meta: map[string]string{}, storageClass: "Standard"}
	for _, name := range contentHeaders {
		if v := h.Get(name); v != "" {
			m.header.Set(name, v)
		}
	}
	if m.header.Get("Content-Type") == "" {
		m.header.Set("Content-Type", "application/octet-stream")
	}
	for k, v := range h {
		lk := strings.ToLower(k)
		if name, ok := strings.CutPrefix(lk, "x-oss-meta-"); ok && name != "" {
			m.meta[name] = v[0]
		}
	}
	if sc := h.Get("x-oss-storage-class"); sc != "" {
		class, ok := storageClasses[strings.ToLower(sc)]
		if !ok {
			return m, errInvalidArgument("Invalid storage class " + strconv.Quote(sc) + ".")
		}
		m.storageClass = class
	}
	if t := h.Get("x-oss-tagging"); t != "" {
		tags, e := parseTagging(t)
		if e != nil {
			return m, e
		}
		m.tags = tags
	}
	return m, nil
}

func parseTagging(v string) (map[string]string, *ossError) {
	vals, err := url.ParseQuery(v)
	if err != nil {
		return nil, errInvalidArgument("x-oss-tagging is not a valid query string.")
	}
	tags := make(map[string]string, len(vals))
	for k, vs := range vals {
		tags[k] = vs[0]
	}
	if len(tags) > maxTags {
		return nil, errInvalidArgument("An object can have at most 10 tags.")
	}
	return tags, nil
}

func (s *Server) newObject(key string, data, sum []byte, crc uint64, objectType string, m requestMeta) *object {
	etag := ""
	if sum != nil {
		etag = strings.ToUpper(hex.EncodeToString(sum))
	}
	return &object{
		info: ObjectInfo{
			Key: key, Size: int64(len(data)), ETag: etag, CRC64: crc,
			LastModified: s.now().UTC().Truncate(time.Second),
			ContentType:  m.header.Get("Content-Type"),
			StorageClass: m.storageClass, ObjectType: objectType,
			Meta: m.meta, Header: m.header, Tags: m.tags,
		},
		data: data,
		md5:  sum,
	}
}

func validKey(key string) *ossError {
	switch {
	case key == "":
		return &ossError{status: 400, code: "InvalidObjectName", message: "The object name is empty."}
	case len(key) > maxKeyBytes:
		return &ossError{status: 400, code: "InvalidObjectName", message: "The object name is longer than 1023 bytes.", extra: errorExtra{Key: key}}
	case !utf8.ValidString(key):
		return &ossError{status: 400, code: "InvalidObjectName", message: "The object name is not valid UTF-8."}
	case key[0] == '/' || key[0] == '\\':
		return &ossError{status: 400, code: "InvalidObjectName", message: "The object name must not start with '/' or '\\'.", extra: errorExtra{Key: key}}
	}
	return nil
}

// body is a request body read whole, with its digests.
type body struct {
	data []byte
	md5  []byte
	crc  uint64
}

// readBody reads the request body and checks it against Content-MD5 and
// x-oss-hash-crc64ecma when the client sent them (OSS rejects a mismatch
// with InvalidDigest).
func readBody(r *http.Request, initCRC uint64) (body, *ossError) {
	if r.ContentLength > maxObjectBytes {
		return body{}, &ossError{status: 400, code: "EntityTooLarge", message: "Your proposed upload exceeds the maximum allowed size."}
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		// Trust Content-Length only so far before the bytes arrive.
		buf.Grow(int(min(r.ContentLength, 64<<20)))
	}
	h := md5.New()
	c := crc64.New(crcTable)
	n, err := io.Copy(io.MultiWriter(&buf, h, c), io.LimitReader(r.Body, maxObjectBytes+1))
	if err != nil {
		var oe *ossError
		if errors.As(err, &oe) {
			// A verifying body (S3 payload hash, chunk signature, checksum).
			return body{}, oe
		}
		return body{}, &ossError{status: 400, code: "IncompleteBody", message: "The request body is shorter than Content-Length: " + err.Error()}
	}
	if n > maxObjectBytes {
		return body{}, &ossError{status: 400, code: "EntityTooLarge", message: "Your proposed upload exceeds the maximum allowed size."}
	}
	if r.ContentLength >= 0 && n != r.ContentLength {
		return body{}, &ossError{status: 400, code: "IncompleteBody", message: "The request body length does not match Content-Length."}
	}
	b := body{data: buf.Bytes(), md5: h.Sum(nil), crc: c.Sum64()}
	if want := r.Header.Get("Content-MD5"); want != "" {
		raw, err := base64.StdEncoding.DecodeString(want)
		if err != nil || len(raw) != md5.Size || !bytes.Equal(raw, b.md5) {
			return body{}, &ossError{status: 400, code: "InvalidDigest", message: "The Content-MD5 you specified was invalid."}
		}
	}
	if want := r.Header.Get("x-oss-hash-crc64ecma"); want != "" {
		got := crc64.Update(initCRC, crcTable, b.data)
		if v, err := strconv.ParseUint(want, 10, 64); err != nil || v != got {
			return body{}, &ossError{status: 400, code: "InvalidDigest", message: "The x-oss-hash-crc64ecma you specified does not match the body."}
		}
	}
	return b, nil
}

func (s *Server) putObject(w http.ResponseWriter, q *request) *ossError {
	if e := validKey(q.key); e != nil {
		return e
	}
	o, b, e := s.putBody(q, q.r.Header)
	if e != nil {
		return e
	}
	w.Header().Set("Content-MD5", base64.StdEncoding.EncodeToString(b.md5))
	return writtenOK(w, o.info.ETag, o.info.CRC64)
}

// writtenOK answers a write (or GetObjectMeta) with 200, the ETag and the
// CRC64, after any headers the caller has set.
func writtenOK(w http.ResponseWriter, etag string, crc uint64) *ossError {
	h := w.Header()
	h.Set("ETag", quote(etag))
	h.Set("x-oss-hash-crc64ecma", strconv.FormatUint(crc, 10))
	w.WriteHeader(http.StatusOK)
	return nil
}

// putBody stores the request's body as a Normal object with the metadata
// the OSS headers h carry, as PutObject does in both APIs.
func (s *Server) putBody(q *request, h http.Header) (*object, body, *ossError) {
	m, e := objectMetaFromRequest(h)
	if e != nil {
		return nil, body{}, e
	}
	if !s.bucketExists(q.bucket) {
		return nil, body{}, errNoSuchBucket(q.bucket)
	}
	b, e := readBody(q.r, 0)
	if e != nil {
		return nil, body{}, e
	}
	o := s.newObject(q.key, b.data, b.md5, b.crc, "Normal", m)
	if e := s.store(q, o, "ObjectCreated:PutObject"); e != nil {
		return nil, body{}, e
	}
	return o, b, nil
}

// store puts o into the request's bucket, honouring x-oss-forbid-overwrite,
// and queues the event. Events are queued under the lock so that webhook
// order is the order in which writes took effect.
func (s *Server) store(q *request, o *object, event string) *ossError {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[q.bucket]
	if b == nil {
		return errNoSuchBucket(q.bucket)
	}
	if strings.EqualFold(q.r.Header.Get("x-oss-forbid-overwrite"), "true") && b.objects[o.info.Key] != nil {
		return &ossError{status: 409, code: "FileAlreadyExists", message: "The object you specified already exists and can not be overwritten.", extra: errorExtra{Key: o.info.Key}}
	}
	s.emitPut(event, q.bucket, q.id, o, b.put(o))
	return nil
}

// lookup returns the object a request names.
func (s *Server) lookup(bucketName, key string) (*object, *ossError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, o, e := s.findLocked(bucketName, key, true)
	return o, e
}

// lookupRead returns what a read of the key serves: the object, or for a
// symlink a view of it (see resolveLocked).
func (s *Server) lookupRead(bucketName, key string) (*object, *ossError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, o, e := s.findLocked(bucketName, key, true)
	if e != nil {
		return nil, e
	}
	return s.resolveLocked(b, o)
}

// findLocked finds the bucket and the object a request names: a stored
// one, or with generated also one of the bucket's generated objects (which
// cannot be changed in place, so tagging and restore do not look there).
// Callers hold the Server's mutex.
func (s *Server) findLocked(bucketName, key string, generated bool) (*bucket, *object, *ossError) {
	b := s.buckets[bucketName]
	if b == nil {
		return nil, nil, errNoSuchBucket(bucketName)
	}
	o := b.objects[key]
	if o == nil && generated && b.gen != nil {
		o = b.gen.find(key)
	}
	if o == nil {
		return nil, nil, errNoSuchKey(key)
	}
	return b, o, nil
}

// resolveLocked returns o, or for a symlink a view that serves the
// target's content. As OSS documents for HeadObject on a symlink, the
// view's Content-Length, ETag and Content-MD5 are the target's and its
// Last-Modified is the later of the two; the emulator also takes the CRC64
// (it describes the bytes served), the storage class and the restore state
// (they decide whether the bytes may be read) from the target, and
// everything else (content headers, user metadata, tags, object type
// "Symlink") from the link. Callers hold the Server's mutex.
func (s *Server) resolveLocked(b *bucket, o *object) (*object, *ossError) {
	if o.info.ObjectType != "Symlink" {
		return o, nil
	}
	t := b.objects[o.info.SymlinkTarget]
	if t == nil {
		return nil, &ossError{status: 404, code: "SymlinkTargetNotExist", message: "The symlink target object does not exist.", extra: errorExtra{Key: o.info.Key}}
	}
	if t.info.ObjectType == "Symlink" {
		return nil, &ossError{status: 400, code: "InvalidTargetType", message: "The symlink target object is a symlink.", extra: errorExtra{Key: o.info.Key}}
	}
	v := &object{data: t.data, md5: t.md5, restore: t.restore}
	v.info = o.info
	v.info.Size, v.info.ETag, v.info.CRC64 = t.info.Size, t.info.ETag, t.info.CRC64
	v.info.StorageClass = t.info.StorageClass
	v.info.Synthetic, v.info.Seed = t.info.Synthetic, t.info.Seed
	if t.info.LastModified.After(v.info.LastModified) {
		v.info.LastModified = t.info.LastModified
	}
	// The md5 is the target's; Content-MD5 is written for Normal targets only.
	if t.info.ObjectType != "Normal" {
		v.md5 = nil
	}
	return v, nil
}

func quote(etag string) string { return `"` + etag + `"` }

func base64MD5(sum []byte) string { return base64.StdEncoding.EncodeToString(sum) }

// restoreHeader is the x-oss-restore value for o, or "" when o was never
// restored. Callers hold the Server's mutex.
func (s *Server) restoreHeader(o *object) string {
	rs := o.restore
	if rs.readyAt.IsZero() {
		return ""
	}
	now := s.now()
	if now.Before(rs.readyAt) {
		return `ongoing-request="true"`
	}
	if now.After(rs.expires) {
		return ""
	}
	return `ongoing-request="false", expiry-date="` + rs.expires.UTC().Format(http.TimeFormat) + `"`
}

// readable reports whether o's bytes may be read (not archived, or restored).
func (s *Server) readable(o *object) bool {
	if !isArchived(o.info.StorageClass) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := o.restore
	now := s.now()
	return !rs.readyAt.IsZero() && !now.Before(rs.readyAt) && !now.After(rs.expires)
}

func errInvalidObjectState(key string) *ossError {
	return &ossError{status: 403, code: "InvalidObjectState", message: "The operation is not valid for the object's state.", extra: errorExtra{Key: key}}
}

func (s *Server) writeObjectHeaders(h http.Header, o *object, api string) {
	info := o.info
	for k, v := range info.Header {
		h[k] = v
	}
	metaPrefix := "x-oss-meta-"
	if api == apiS3 {
		metaPrefix = "x-amz-meta-"
	}
	for k, v := range info.Meta {
		h.Set(metaPrefix+k, v)
	}
	h.Set("ETag", quote(info.ETag))
	h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	// Both APIs carry the OSS object type and CRC64: OSS's own headers,
	// which S3 clients ignore and a copier may use.
	h.Set("x-oss-object-type", info.ObjectType)
	h.Set("x-oss-hash-crc64ecma", strconv.FormatUint(info.CRC64, 10))
	s.mu.Lock()
	restore := s.restoreHeader(o)
	s.mu.Unlock()
	if api == apiS3 {
		// S3 leaves out the storage class of STANDARD objects.
		if sc := s3StorageClass(info.StorageClass); sc != "STANDARD" {
			h.Set("x-amz-storage-class", sc)
		}
		if len(info.Tags) > 0 {
			h.Set("x-amz-tagging-count", strconv.Itoa(len(info.Tags)))
		}
		if restore != "" {
			h.Set("x-amz-restore", restore)
		}
		return
	}
	h.Set("x-oss-storage-class", info.StorageClass)
	if (info.ObjectType == "Normal" || info.ObjectType == "Symlink") && o.md5 != nil {
		h.Set("Content-MD5", base64.StdEncoding.EncodeToString(o.md5))
	}
	if info.ObjectType == "Appendable" {
		h.Set("x-oss-next-append-position", strconv.FormatInt(info.Size, 10))
	}
	if len(info.Tags) > 0 {
		h.Set("x-oss-tagging-count", strconv.Itoa(len(info.Tags)))
	}
	if restore != "" {
		h.Set("x-oss-restore", restore)
	}
}

// getObject serves GetObject and HeadObject, through either API. The body
// is the stored bytes whatever Accept-Encoding says: OSS never transcodes.
// Range follows OSS's lenient rules unless the client asks for standard
// behaviour (x-oss-range-behavior: standard) or comes through the S3 API.
func (s *Server) getObject(w http.ResponseWriter, q *request, head bool) *ossError {
	o, e := s.lookupRead(q.bucket, q.key)
	if e != nil {
		return e
	}
	if !head && !s.readable(o) {
		return errInvalidObjectState(q.key)
	}
	h := w.Header()
	switch checkPreconditions(q.r.Header, o.info.ETag, o.info.LastModified) {
	case http.StatusPreconditionFailed:
		return &ossError{status: 412, code: "PreconditionFailed", message: "At least one of the pre-conditions you specified did not hold."}
	case http.StatusNotModified:
		h.Set("ETag", quote(o.info.ETag))
		h.Set("Last-Modified", o.info.LastModified.UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	size := o.info.Size
	standard := q.api == apiS3 || strings.EqualFold(q.r.Header.Get("x-oss-range-behavior"), "standard")
	start, end, partial, e := parseRange(q.r.Header.Get("Range"), size, standard)
	if e != nil {
		return e
	}
	s.writeObjectHeaders(h, o, q.api)
	for param, header := range responseOverrides {
		if v := q.query.Get(param); v != "" {
			h.Set(header, v)
		}
	}
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
	}
	n := end - start + 1
	if size == 0 {
		n = 0
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(status)
	if head || n == 0 {
		return nil
	}
	writeContent(w, o, start, n, q.cutBodyAfter)
	return nil
}

// writeContent sends n bytes of o's content from start without copying
// the object: a stored object's slice goes to the connection as it is, a
// synthetic object's bytes are generated block by block. With cut > 0 it
// sends only cut bytes and aborts the connection, as a network failure
// mid-body would.
func writeContent(w http.ResponseWriter, o *object, start, n, cut int64) {
	if cut > 0 && cut < n {
		copyContent(w, o, start, cut)
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
	copyContent(w, o, start, n)
}

func copyContent(w io.Writer, o *object, start, n int64) {
	if o.info.Synthetic {
		r := newSynthReader(o.info.Seed, start, start+n)
		_, _ = r.WriteTo(w)
		return
	}
	_, _ = w.Write(o.data[start : start+n])
}

var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

// checkPreconditions evaluates If-Match, If-Unmodified-Since, If-None-Match
// and If-Modified-Since as RFC 9110 orders them; it returns 0 to serve.
func checkPreconditions(h http.Header, etag string, lastModified time.Time) int {
	if v := h.Get("If-Match"); v != "" {
		if !etagListMatches(v, etag) {
			return http.StatusPreconditionFailed
		}
	} else if v := h.Get("If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && lastModified.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	if v := h.Get("If-None-Match"); v != "" {
		if etagListMatches(v, etag) {
			return http.StatusNotModified
		}
	} else if v := h.Get("If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !lastModified.After(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

func etagListMatches(list, etag string) bool {
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "*" || strings.EqualFold(strings.Trim(strings.TrimPrefix(e, "W/"), `"`), etag) {
			return true
		}
	}
	return false
}

// parseRange applies a Range header the way OSS does. By default a range
// OSS cannot satisfy exactly (bad syntax, several ranges, an end or start
// past the object) is ignored and the whole object is served with 200. With
// x-oss-range-behavior: standard an end past the object is clamped and a
// start past it answers 416 InvalidRange.
func parseRange(v string, size int64, standard bool) (start, end int64, partial bool, e *ossError) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return wholeRange(size)
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	switch {
	case !ok:
		return wholeRange(size)
	case first == "":
		return suffixRange(last, size, standard)
	default:
		return spanRange(first, last, size, standard)
	}
}

// wholeRange is parseRange's answer for the whole object, with 200.
func wholeRange(size int64) (start, end int64, partial bool, e *ossError) {
	return 0, size - 1, false, nil
}

// unsatisfiableRange is parseRange's 416 InvalidRange.
func unsatisfiableRange(size int64) (start, end int64, partial bool, e *ossError) {
	return 0, 0, false, &ossError{status: 416, code: "InvalidRange", message: "The requested range cannot be satisfied.",
		header: map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", size)}}
}

// suffixRange is parseRange for "bytes=-n": the last n bytes.
func suffixRange(last string, size int64, standard bool) (start, end int64, partial bool, e *ossError) {
	n, err := strconv.ParseInt(last, 10, 64)
	switch {
	case err != nil || n <= 0:
		return wholeRange(size)
	case n > size && !standard:
		return wholeRange(size)
	case n > size:
		n = size
	}
	if size == 0 {
		return unsatisfiableRange(size)
	}
	return size - n, size - 1, true, nil
}

// spanRange is parseRange for "bytes=a-b" and "bytes=a-".
func spanRange(first, last string, size int64, standard bool) (start, end int64, partial bool, e *ossError) {
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return wholeRange(size)
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
			return wholeRange(size)
		}
	}
	if a >= size {
		if standard {
			return unsatisfiableRange(size)
		}
		return wholeRange(size)
	}
	if b >= size {
		if !standard {
			return wholeRange(size)
		}
		b = size - 1
	}
	return a, b, true, nil
}

// getObjectMeta serves HEAD ?objectMeta: the basic metadata only.
func (s *Server) getObjectMeta(w http.ResponseWriter, q *request) *ossError {
	o, e := s.lookupRead(q.bucket, q.key)
	if e != nil {
		return e
	}
	h := w.Header()
	h.Set("Last-Modified", o.info.LastModified.UTC().Format(http.TimeFormat))
	h.Set("Content-Length", strconv.FormatInt(o.info.Size, 10))
	return writtenOK(w, o.info.ETag, o.info.CRC64)
}

// deleteObject answers 204 whether or not the key existed, as OSS does, and
// sends an ObjectRemoved:DeleteObject event in both cases.
func (s *Server) deleteObject(w http.ResponseWriter, q *request) *ossError {
	b, e := s.lockBucket(q.bucket)
	if e != nil {
		return e
	}
	s.emitRemove("ObjectRemoved:DeleteObject", q.bucket, q.id, q.key, b.remove(q.key))
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func readSmallBody(r *http.Request, limit int64) ([]byte, *ossError) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var oe *ossError
		if errors.As(err, &oe) {
			return nil, oe
		}
		return nil, &ossError{status: 400, code: "IncompleteBody", message: err.Error()}
	}
	if int64(len(raw)) > limit {
		return nil, errMalformedXML(errors.New("request body too large"))
	}
	return raw, nil
}
