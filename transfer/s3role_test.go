package transfer_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/stsemu"
	"github.com/oss2s3/oss2s3/transfer"
)

const writerRole = "arn:aws:iam::123456789012:role/oss2s3-writer"

// roleBed is an STS that lets AKIA-base assume writerRole, and an S3 that
// accepts only the keys STS hands out (not AKIA-base itself).
func roleBed(t *testing.T, sts stsemu.Options) (*stsemu.Server, string, string) {
	t.Helper()
	s3 := ossemu.New(ossemu.Options{Credentials: map[string]string{"LTAI-unrelated": "x"}})
	s3URL, err := s3.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Close() })
	s3.CreateBucket("dst")
	sts.Credentials = map[string]string{"AKIA-base": "base-secret"}
	sts.Roles = map[string]string{writerRole: "dth-2026"}
	sts.Issued = func(c stsemu.Credentials) { s3.SetKey(c.AccessKeyID, c.SecretAccessKey) }
	srv := stsemu.New(sts)
	stsURL, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, stsURL, s3URL
}

func roleDest(t *testing.T, stsURL, s3URL, role string) *transfer.S3Destination {
	t.Helper()
	d, err := transfer.NewS3Destination(context.Background(), transfer.DestinationConfig{Region: "us-east-1", Bucket: "dst",
		Endpoint: s3URL, AccessKeyID: "AKIA-base", SecretAccessKey: "base-secret",
		RoleARN: role, ExternalID: "dth-2026", RoleSessionName: "oss2s3-test", STSEndpoint: stsURL})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDestinationAssumesItsRole(t *testing.T) {
	t.Parallel()
	sts, stsURL, s3URL := roleBed(t, stsemu.Options{})
	ctx := context.Background()
	d := roleDest(t, stsURL, s3URL, writerRole)
	w := &transfer.WriteInfo{Source: &transfer.ObjectInfo{}}
	if err := d.Put(ctx, "sdk", strings.NewReader("hello"), 5, w); err != nil {
		t.Fatalf("put through the SDK with the assumed role: %v", err)
	}
	if err := d.PutBytes(ctx, "lean", []byte("hello"), w, false); err != nil {
		t.Fatalf("put through the lean path with the assumed role: %v", err)
	}
	for _, k := range []string{"sdk", "lean"} {
		if info, err := d.Head(ctx, k); err != nil || info.Size != 5 {
			t.Fatalf("head %s: %+v, %v", k, info, err)
		}
	}
	issued := sts.Issued()
	if len(issued) != 1 {
		t.Fatalf("assumed the role %d times for 4 requests with an hour to go, want 1", len(issued))
	}
	if c := issued[0]; c.Caller != "AKIA-base" || c.SessionName != "oss2s3-test" {
		t.Errorf("assumed as %s, session %s", c.Caller, c.SessionName)
	}

	t.Run("WithoutTheRoleTheBaseKeysAreRefused", func(t *testing.T) {
		d := roleDest(t, stsURL, s3URL, "")
		if err := d.Put(ctx, "k", bytes.NewReader([]byte("x")), 1, w); err == nil || !strings.Contains(err.Error(), "InvalidAccessKeyId") {
			t.Fatalf("got %v, want InvalidAccessKeyId", err)
		}
	})
	t.Run("ADeniedRoleFailsTheRequest", func(t *testing.T) {
		d := roleDest(t, stsURL, s3URL, "arn:aws:iam::123456789012:role/someone-else")
		if err := d.Put(ctx, "k", bytes.NewReader([]byte("x")), 1, w); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
			t.Fatalf("got %v, want AccessDenied from STS", err)
		}
	})
}

// TestDestinationRenewsTheRoleBeforeItExpires: keys with less than
// RoleRenewal to go are not used for another request; STS is asked again.
func TestDestinationRenewsTheRoleBeforeItExpires(t *testing.T) {
	t.Parallel()
	// Keys of 15 minutes handed out 11 minutes ago: 4 minutes to go.
	sts, stsURL, s3URL := roleBed(t, stsemu.Options{Duration: 15 * time.Minute,
		Now: func() time.Time { return time.Now().Add(-11 * time.Minute) }})
	d := roleDest(t, stsURL, s3URL, writerRole)
	w := &transfer.WriteInfo{Source: &transfer.ObjectInfo{}}
	for _, k := range []string{"a", "b"} {
		if err := d.Put(context.Background(), k, strings.NewReader("x"), 1, w); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(sts.Issued()); n != 2 {
		t.Fatalf("assumed the role %d times for 2 requests with keys 4 minutes from expiry, want 2", n)
	}
}
