package transfer

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is what a Source returns for a key that does not exist.
var ErrNotFound = errors.New("object not found")

// ObjectInfo describes a source object: its identity and the headers a copy
// must carry.
type ObjectInfo struct {
	Key                string
	Size               int64
	ETag               string // as OSS gives it, unquoted
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
	Meta               map[string]string // user metadata, keys without the x-oss-meta- prefix
}

// Source is the bucket a task reads from.
type Source interface {
	// Head returns the object's current state, or ErrNotFound.
	Head(ctx context.Context, key string) (*ObjectInfo, error)
	// Get streams length bytes from offset (length < 0: to the end) of the
	// object version whose ETag is etag; if the object has changed since, it
	// fails rather than mixing two versions.
	Get(ctx context.Context, key, etag string, offset, length int64) (io.ReadCloser, error)
}

// Destination is the bucket a task writes to.
type Destination interface {
	// Put writes a whole object from body, which yields exactly size bytes.
	Put(ctx context.Context, key string, body io.Reader, size int64, info *ObjectInfo) error
	// NewUpload starts a multipart upload of key.
	NewUpload(ctx context.Context, key string, info *ObjectInfo) (Upload, error)
}

// Upload is one multipart upload in progress. UploadPart is safe to call
// from several goroutines at once.
type Upload interface {
	UploadPart(ctx context.Context, number int32, part []byte) error
	Complete(ctx context.Context) error
	Abort(ctx context.Context) error
}
