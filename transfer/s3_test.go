package transfer_test

import (
	"context"
	"strings"
	"testing"

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
	src := &transfer.ObjectInfo{Key: "k", Size: 5, ETag: "ABC", ContentType: "text/plain", CacheControl: "max-age=60",
		Meta: map[string]string{"owner": "x"}}
	err = d.Put(ctx, "p/k", strings.NewReader("hello"), 5, &transfer.WriteInfo{Source: src, Tags: map[string]string{"team": "a"}})
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
