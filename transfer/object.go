package transfer

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is what a Source or Destination returns for a key that does
// not exist.
var ErrNotFound = errors.New("object not found")

// ErrSourceChanged means the source object changed while it was being read
// (its ETag no longer matches): the copy starts again from a fresh HEAD.
var ErrSourceChanged = errors.New("source object changed during the copy")

// ErrNoSuchUpload means a multipart upload is gone (completed, aborted or
// expired) at the destination.
var ErrNoSuchUpload = errors.New("no such multipart upload")

// OSS object types (x-oss-object-type) and the storage classes that need a
// restore before they can be read.
const (
	ObjectTypeSymlink    = "Symlink"
	ObjectTypeAppendable = "Appendable"
)

// ObjectInfo describes an object: its identity and the headers a copy must
// carry.
type ObjectInfo struct {
	Key                string
	Size               int64
	ETag               string // unquoted
	CRC64              uint64 // CRC-64/ECMA of the content, when HasCRC64
	HasCRC64           bool
	LastModified       time.Time
	ContentType        string
	ContentEncoding    string
	ContentLanguage    string
	ContentDisposition string
	CacheControl       string
	Expires            string
	StorageClass       string
	ObjectType         string
	Restore            string            // x-oss-restore: "" (never asked), ongoing, or done with an expiry
	TagCount           int               // x-oss-tagging-count
	Meta               map[string]string // user metadata, keys lower-case without the x-oss-meta- / x-amz-meta- prefix
}

// NeedsRestore reports whether the object is in an archive class and is not
// (yet) readable.
func (o *ObjectInfo) NeedsRestore() bool {
	switch o.StorageClass {
	case "Archive", "ColdArchive", "DeepColdArchive":
		return !RestoreDone(o.Restore)
	}
	return false
}

// Source is the bucket a task reads from.
type Source interface {
	// Head returns the object's current state, or ErrNotFound.
	Head(ctx context.Context, key string) (*ObjectInfo, error)
	// Get streams length bytes from offset (length < 0: to the end) of the
	// object version whose ETag is etag. If the object changed since, it
	// returns ErrSourceChanged rather than mixing two versions.
	Get(ctx context.Context, key, etag string, offset, length int64) (io.ReadCloser, error)
}

// Opener is a Source that can GET an object with its headers in one
// request (for small objects: no HEAD first).
type Opener interface {
	Open(ctx context.Context, key string) (*ObjectInfo, io.ReadCloser, error)
}

// Restorer is a Source that can restore archived objects.
type Restorer interface {
	Restore(ctx context.Context, key string) error
}

// Tagger is a Source that can read object tags.
type Tagger interface {
	Tags(ctx context.Context, key string) (map[string]string, error)
}

// Destination is the bucket a task writes to.
type Destination interface {
	// Head returns what the destination holds for key, or ErrNotFound.
	Head(ctx context.Context, key string) (*ObjectInfo, error)
	// Put writes a whole object from body, which yields exactly size bytes.
	Put(ctx context.Context, key string, body io.Reader, size int64, w *WriteInfo) error
	// Delete removes key.
	Delete(ctx context.Context, key string) error
	Multipart
}

// BytesPutter is a Destination that can write a small object whose bytes
// are already in memory (read and verified against the source before
// anything is sent) more cheaply than a streamed Put.
//
// With ifAbsent the write happens only if key does not exist yet (S3's
// conditional write, If-None-Match: *); otherwise PutBytes returns
// ErrExists and changes nothing. A destination that cannot make the write
// conditional may return ErrExists without trying, or write anyway.
type BytesPutter interface {
	PutBytes(ctx context.Context, key string, body []byte, w *WriteInfo, ifAbsent bool) error
}

// CRCRecorder is a Destination that can note on a copy, after the fact,
// the CRC-64 oss2s3 computed while copying a source that published none
// (objects made by CopyObject or UploadPartCopy may have none).
type CRCRecorder interface {
	RecordCRC64(ctx context.Context, key string, crc uint64) error
}

// Multipart is a destination's multipart upload API. Uploads are named by
// id so that another worker (after a crash) can continue one.
type Multipart interface {
	CreateUpload(ctx context.Context, key string, w *WriteInfo) (uploadID string, err error)
	UploadPart(ctx context.Context, key, uploadID string, number int32, part []byte) (Part, error)
	CompleteUpload(ctx context.Context, key, uploadID string, parts []Part) error
	AbortUpload(ctx context.Context, key, uploadID string) error
}

// UploadLister is a Destination that can list the multipart uploads in
// progress under a key prefix, for the orphan sweeper.
type UploadLister interface {
	ListUploads(ctx context.Context, prefix string, fn func(Upload) bool) error
}

// Upload is a multipart upload in progress at the destination.
type Upload struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

// WriteInfo is what a copy writes besides the bytes: the source's headers
// and the destination settings of the task.
type WriteInfo struct {
	Source *ObjectInfo
	Tags   map[string]string
	// StorageClass overrides the destination's default (mapped from the
	// source's class).
	StorageClass string
}

// Part is one uploaded part, as a checkpoint records it.
type Part struct {
	Number         int32  `json:"n"`
	Size           int64  `json:"size"`
	ETag           string `json:"etag"`
	ChecksumCRC32C string `json:"crc32c,omitempty"`
	ChecksumCRC64N string `json:"crc64nvme,omitempty"`
	CRC64          uint64 `json:"crc64"` // CRC-64/ECMA of the source bytes of this part
}
