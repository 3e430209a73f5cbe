package s3test_test

import (
	"bytes"
	"crypto/x509"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/internal/s3test"
)

func TestVersity(t *testing.T) {
	t.Parallel()
	s := s3test.StartVersity(t)

	t.Run("ObjectRoundTripsWithMetadataAndContentType", func(t *testing.T) {
		roundTrip(t, s, "versity-rt")
	})
	t.Run("UploadCarriesTheDefaultChecksum", func(t *testing.T) {
		ctx := t.Context()
		if err := s.CreateBucket(ctx, "versity-ck"); err != nil {
			t.Fatal(err)
		}
		// A non-seekable body, as an OSS GET stream is: over TLS the SDK
		// streams it with an aws-chunked CRC32 trailer.
		body := io.MultiReader(strings.NewReader("streamed "), strings.NewReader("body"))
		out, err := s.Client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("versity-ck"), Key: aws.String("stream"), Body: body, ContentLength: aws.Int64(13),
		})
		if err != nil {
			t.Fatalf("put non-seekable body: %v", err)
		}
		if aws.ToString(out.ChecksumCRC32) == "" {
			t.Errorf("PutObject returned no CRC32 checksum: the SDK's default checksum is off or the server ignored it")
		}
		if got := getBody(t, s, "versity-ck", "stream"); got != "streamed body" {
			t.Errorf("body = %q, want %q", got, "streamed body")
		}
	})
	t.Run("CAFileTrustsTheServer", func(t *testing.T) {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			t.Fatalf("CAFile %s holds no certificate", s.CAFile)
		}
		if !strings.HasPrefix(s.Endpoint, "https://127.0.0.1:") {
			t.Errorf("Endpoint = %q, want https://127.0.0.1:PORT", s.Endpoint)
		}
	})
}

func TestFake(t *testing.T) {
	t.Parallel()
	s, stop, err := s3test.StartFake()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") || s.CAFile != "" {
		t.Errorf("Endpoint = %q, CAFile = %q; want plain http on 127.0.0.1 and no CA", s.Endpoint, s.CAFile)
	}
	roundTrip(t, s, "fake-rt")
	stop() // a second call from Cleanup must be harmless
}

// roundTrip creates bucket, stores an object with metadata and a content
// type, and checks that GET, HEAD and LIST give it back unchanged.
func roundTrip(t *testing.T, s *s3test.Server, bucket string) {
	t.Helper()
	ctx := t.Context()
	if err := s.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	const key, body = "dir/é 1.txt", "hello, s3\n"
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(bucket),
		Key:         aws.String(key),
		Body:        bytes.NewReader([]byte(body)),
		ContentType: aws.String("text/plain; charset=utf-8"),
		Metadata:    map[string]string{"source-etag": "9E107D9D372BB6826BD81D3542A419D6"},
	})
	if err != nil {
		t.Fatalf("put: %v", err)
	}

	got, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	data, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if string(data) != body {
		t.Errorf("body = %q, want %q", data, body)
	}
	if ct := aws.ToString(got.ContentType); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type = %q, want text/plain; charset=utf-8", ct)
	}
	if m := got.Metadata["source-etag"]; m != "9E107D9D372BB6826BD81D3542A419D6" {
		t.Errorf("metadata = %v, want source-etag", got.Metadata)
	}

	list, err := s.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != key || aws.ToInt64(list.Contents[0].Size) != int64(len(body)) {
		t.Errorf("list = %+v, want one object %q of %d bytes", list.Contents, key, len(body))
	}
}

func getBody(t *testing.T, s *s3test.Server, bucket, key string) string {
	t.Helper()
	out, err := s.Client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s/%s: %v", bucket, key, err)
	}
	return string(data)
}
