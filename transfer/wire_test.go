package transfer_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

// wireS3 is an S3 endpoint that answers the write requests with success
// and keeps the headers of each, by operation: the request oss2s3 sends is
// what the test looks at.
type wireS3 struct {
	mu   sync.Mutex
	seen map[string]http.Header // "put", "create", "part", "complete"
}

func (w *wireS3) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	q := r.URL.Query()
	op := "put"
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		op = "create"
		_, _ = fmt.Fprint(rw, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>dst</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>`)
	case r.Method == http.MethodPut && q.Has("partNumber"):
		op = "part"
		rw.Header().Set("ETag", `"p1"`)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		op = "complete"
		_, _ = fmt.Fprint(rw, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>dst</Bucket><Key>k</Key><ETag>"x-1"</ETag></CompleteMultipartUploadResult>`)
	case r.Method == http.MethodPut:
		rw.Header().Set("ETag", `"e"`)
	default:
		http.Error(rw, "not in this test", http.StatusNotImplemented)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[string]http.Header{}
	}
	w.seen[op+" "+strings.TrimPrefix(r.URL.Path, "/dst/")] = r.Header.Clone()
}

func (w *wireS3) header(t *testing.T, op string) http.Header {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	h, ok := w.seen[op]
	if !ok {
		t.Fatalf("no %q request reached S3 (saw %d others)", op, len(w.seen))
	}
	return h
}

// TestDestinationSettingsOnTheWire: a task's storage class, ACL and
// SSE-KMS (DTH's destStorageClass, destAcl, SSE), the storage class map,
// and include_metadata, as the headers of every write oss2s3 sends: the
// whole-object PUT it signs itself, the SDK's PutObject, and
// CreateMultipartUpload.
func TestDestinationSettingsOnTheWire(t *testing.T) {
	t.Parallel()
	src := &transfer.ObjectInfo{Key: "k", Size: 5, ETag: "ABC", ContentType: "text/plain", CacheControl: "max-age=60",
		ContentEncoding: "identity", Meta: map[string]string{"owner": "x"}, StorageClass: "IA"}
	off := false
	for _, tc := range []struct {
		name     string
		cfg      transfer.DestinationConfig
		write    *transfer.WriteInfo
		want     map[string]string // header -> value; "" must be absent
		checksum string
	}{
		{"DTHDefaults", transfer.DestinationConfig{StorageClass: "INTELLIGENT_TIERING", ACL: "bucket-owner-full-control"},
			&transfer.WriteInfo{Source: src}, map[string]string{
				"X-Amz-Storage-Class": "INTELLIGENT_TIERING", "X-Amz-Acl": "bucket-owner-full-control",
				"X-Amz-Server-Side-Encryption": "", "Content-Type": "text/plain", "Cache-Control": "max-age=60",
				"X-Amz-Meta-Owner": "x", "X-Amz-Meta-" + transfer.MetaSourceETag: "ABC"}, ""},
		{"SSEKMS", transfer.DestinationConfig{SSE: "aws:kms", SSEKMSKeyID: "arn:aws:kms:us-east-1:111122223333:key/k1"},
			&transfer.WriteInfo{Source: src}, map[string]string{
				"X-Amz-Server-Side-Encryption": "aws:kms", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "arn:aws:kms:us-east-1:111122223333:key/k1",
				"X-Amz-Storage-Class": "", "X-Amz-Acl": ""}, ""},
		{"SSES3", transfer.DestinationConfig{SSE: "AES256"},
			&transfer.WriteInfo{Source: src}, map[string]string{
				"X-Amz-Server-Side-Encryption": "AES256", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": ""}, ""},
		{"StorageClassMapped", transfer.DestinationConfig{StorageClass: "STANDARD"},
			&transfer.WriteInfo{Source: src, StorageClass: "STANDARD_IA"}, map[string]string{"X-Amz-Storage-Class": "STANDARD_IA"}, ""},
		{"WithoutMetadata", transfer.DestinationConfig{IncludeMetadata: &off},
			&transfer.WriteInfo{Source: src}, map[string]string{
				"Content-Type": "", "Cache-Control": "", "Content-Encoding": "", "X-Amz-Meta-Owner": "",
				"X-Amz-Meta-" + transfer.MetaSourceETag: "ABC"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &wireS3{}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			cfg := tc.cfg
			cfg.Region, cfg.Bucket, cfg.Endpoint, cfg.AccessKeyID, cfg.SecretAccessKey = "us-east-1", "dst", srv.URL, "AK", "SK"
			ctx := context.Background()
			d, err := transfer.NewS3Destination(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.PutBytes(ctx, "lean", []byte("hello"), tc.write, false); err != nil {
				t.Fatal(err)
			}
			if err := d.Put(ctx, "sdk", strings.NewReader("hello"), 5, tc.write); err != nil {
				t.Fatal(err)
			}
			if _, err := d.CreateUpload(ctx, "multi", tc.write); err != nil {
				t.Fatal(err)
			}
			for _, op := range []string{"put lean", "put sdk", "create multi"} {
				h := rec.header(t, op)
				for name, want := range tc.want {
					// The SDK may send Content-Type on its own for a body;
					// absent means "not the source's" there.
					if got := h.Get(name); got != want && !(want == "" && name == "Content-Type" && got != src.ContentType) {
						t.Errorf("%s: %s = %q, want %q", op, name, got, want)
					}
				}
			}
		})
	}
}
