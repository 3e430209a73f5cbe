package transfer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/transfer"
)

// TestS3Destination checks the S3 side on a real S3 server: metadata and
// the source identity on a PUT, Head, tags kept when a computed CRC is
// recorded, Delete.
func TestS3Destination(t *testing.T) {
	t.Parallel()
	srv, d := newVersityDest(t)
	ctx := context.Background()
	src := &transfer.ObjectInfo{Key: "k", Size: 5, ETag: "ABC", ContentType: "text/plain", CacheControl: "max-age=60",
		Meta: map[string]string{"owner": "x"}}
	err := d.Put(ctx, "p/k", strings.NewReader("hello"), 5, &transfer.WriteInfo{Source: src, Tags: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Head(ctx, "p/k")
	if err != nil {
		t.Fatal(err)
	}
	if !transfer.HoldsVersion(got, src) || got.Meta["owner"] != "x" || got.ContentType != "text/plain" {
		t.Fatalf("head %+v", got)
	}
	if err := d.RecordCRC64(ctx, "p/k", 12345); err != nil {
		t.Fatal(err)
	}
	tags, err := srv.Client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("dst"), Key: aws.String("p/k")})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, tg := range tags.TagSet {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if m["team"] != "a" || m[transfer.TagCRC64] != "12345" {
		t.Fatalf("tags %v", m)
	}
	if err := d.Delete(ctx, "p/k"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Head(ctx, "p/k"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("head after delete: %v", err)
	}
}

// TestS3DestinationWholeObjects checks the small-object requests (the HEAD
// and the whole-object PUT oss2s3 signs itself) on a real S3 server: keys
// that need escaping, every header the copy carries, and S3 refusing a body
// whose CRC32C does not match.
func TestS3DestinationWholeObjects(t *testing.T) {
	t.Parallel()
	srv, d := newVersityDest(t)
	ctx := context.Background()
	src := &transfer.ObjectInfo{Size: 5, ETag: "ABC", ContentType: "text/plain; charset=utf-8", ContentEncoding: "identity",
		ContentLanguage: "de", ContentDisposition: `attachment; filename="a b.txt"`, CacheControl: "max-age=60",
		Expires: "Thu, 01 Dec 2044 16:00:00 GMT", Meta: map[string]string{"owner": "x", "team-name": "a b"},
		LastModified: time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC), CRC64: 42, HasCRC64: true}
	keys := []string{"plain", "a b/c+d%20e.txt", "ünï/cödé/日本", strings.Repeat(strings.Repeat("k", 99)+"/", 10) + "end", "q?x=1&y#z", "~tilde;semi:colon@at"}
	for _, key := range keys {
		if err := d.PutBytes(ctx, key, []byte("hello"), &transfer.WriteInfo{Source: src, Tags: map[string]string{"t": "v w"}}, false); err != nil {
			t.Fatalf("put %q: %v", key, err)
		}
		got, err := d.Head(ctx, key)
		if err != nil {
			t.Fatalf("head %q: %v", key, err)
		}
		if !transfer.HoldsVersion(got, src) || got.Meta["owner"] != "x" || got.Meta["team-name"] != "a b" ||
			got.ContentType != src.ContentType || got.Size != 5 {
			t.Fatalf("head %q: %+v", key, got)
		}
		out, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dst"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %q: %v", key, err)
		}
		body, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(body) != "hello" || aws.ToString(out.ContentLanguage) != "de" || aws.ToString(out.CacheControl) != "max-age=60" ||
			aws.ToString(out.ContentDisposition) != src.ContentDisposition || aws.ToString(out.ContentEncoding) != "identity" {
			t.Fatalf("get %q: body %q, headers %+v", key, body, out)
		}
		tags, err := srv.Client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("dst"), Key: aws.String(key)})
		if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != "v w" {
			t.Fatalf("tags of %q: %v %v", key, tags, err)
		}
	}
	info := &transfer.WriteInfo{Source: src}
	if err := d.PutBytes(ctx, "plain", []byte("other"), info, true); !errors.Is(err, transfer.ErrExists) {
		t.Fatalf("create-only PUT of an existing key: %v, want ErrExists", err)
	}
	if out, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dst"), Key: aws.String("plain")}); err != nil {
		t.Fatal(err)
	} else if b, _ := io.ReadAll(out.Body); string(b) != "hello" {
		t.Fatalf("a create-only PUT changed an existing object: %q", b)
	}
	if err := d.PutBytes(ctx, "new", []byte("hello"), info, true); err != nil {
		t.Fatalf("create-only PUT of a new key: %v", err)
	}
	if _, err := d.Head(ctx, "absent"); !errors.Is(err, transfer.ErrNotFound) {
		t.Fatalf("head of a missing key: %v, want ErrNotFound", err)
	}
	wrong := "AAAAAA==" // not the CRC32C of "hello"
	err := d.PutWithChecksum(ctx, "corrupt", []byte("hello"), wrong, &transfer.WriteInfo{Source: src})
	if err == nil {
		t.Fatal("S3 took a body whose CRC32C does not match its header")
	}
	if _, herr := d.Head(ctx, "corrupt"); !errors.Is(herr, transfer.ErrNotFound) {
		t.Fatalf("the refused object exists: %v (put error %v)", herr, err)
	}
	t.Logf("refused as expected: %v", err)
}

// TestS3DestinationPartsCarryTheirCRC32C checks UploadPart on a real S3
// server: each part goes with the CRC32C of its bytes, which S3 checks and
// echoes, and the parts complete into the object.
func TestS3DestinationPartsCarryTheirCRC32C(t *testing.T) {
	t.Parallel()
	srv, d := newVersityDest(t)
	ctx := context.Background()
	parts := [][]byte{bytes.Repeat([]byte("0123456789abcdef"), int(transfer.MinPartSize)/16), []byte("the last, short part")}
	id, err := d.CreateUpload(ctx, "mp", &transfer.WriteInfo{Source: &transfer.ObjectInfo{Key: "mp", ETag: "E"}})
	if err != nil {
		t.Fatal(err)
	}
	var done []transfer.Part
	for i, b := range parts {
		p, err := d.UploadPart(ctx, "mp", id, int32(i+1), b)
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
		if want := base64.StdEncoding.EncodeToString(sum[:]); p.ChecksumCRC32C != want {
			t.Fatalf("part %d: S3 reports CRC32C %q, want %q", i+1, p.ChecksumCRC32C, want)
		}
		done = append(done, p)
	}
	if err := d.CompleteUpload(ctx, "mp", id, done); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dst"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, bytes.Join(parts, nil)) {
		t.Fatalf("completed object: %d bytes, %v; want the %d bytes of the parts", len(got), err, len(bytes.Join(parts, nil)))
	}
}

// newVersityDest starts versitygw with a bucket "dst" and returns the
// S3Destination that writes it.
func newVersityDest(t *testing.T) (*s3test.Server, *transfer.S3Destination) {
	t.Helper()
	srv := s3test.StartVersity(t)
	ctx := context.Background()
	if err := srv.CreateBucket(ctx, "dst"); err != nil {
		t.Fatal(err)
	}
	d, err := transfer.NewS3Destination(ctx, transfer.DestinationConfig{
		Region: srv.Region, Bucket: "dst", Endpoint: srv.Endpoint, CAFile: srv.CAFile,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv, d
}
