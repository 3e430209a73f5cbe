package transfer_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/transfer"
)

// TestThrottlingIsWaiting: an answer that says "slow down" is recognised
// on both sides, and a job that meets it waits without spending an
// attempt, so a SlowDown storm longer than the job's retries dead-letters
// nothing.
func TestThrottlingIsWaiting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("S3SlowDownIsThrottled", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			if r.Method != http.MethodHead {
				fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			}
		}))
		t.Cleanup(srv.Close)
		d, err := transfer.NewS3Destination(ctx, transfer.DestinationConfig{Region: "us-east-1", Bucket: "dst", Endpoint: srv.URL,
			AccessKeyID: "AK", SecretAccessKey: "SK"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Head(ctx, "k"); !errors.Is(err, transfer.ErrThrottled) || transfer.IsPermanent(err) {
			t.Errorf("HEAD answered 503: %v, want ErrThrottled", err)
		}
		if _, err := d.CreateUpload(ctx, "k", &transfer.WriteInfo{Source: &transfer.ObjectInfo{}}); !errors.Is(err, transfer.ErrThrottled) {
			t.Errorf("CreateMultipartUpload answered SlowDown: %v, want ErrThrottled", err)
		}
	})

	t.Run("OSSServiceUnavailableIsThrottled", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>busy</Message><RequestId>1</RequestId></Error>`)
		}))
		t.Cleanup(srv.Close)
		src, err := transfer.NewOSSSource(transfer.SourceConfig{Endpoint: srv.URL, Bucket: "src", AccessKeyID: "AK", AccessKeySecret: "SK"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Head(ctx, "k"); !errors.Is(err, transfer.ErrThrottled) {
			t.Errorf("HEAD answered 503: %v, want ErrThrottled", err)
		}
		if _, err := src.Get(ctx, "k", "", 0, -1); !errors.Is(err, transfer.ErrThrottled) {
			t.Errorf("GET answered 503: %v, want ErrThrottled", err)
		}
	})

	t.Run("AThrottledJobSpendsNoAttempt", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 1})
		data := []byte("written once the storm is over")
		b.src.put("k", data, nil)
		var puts atomic.Int32
		b.dst.putErr = func(string) error {
			if puts.Add(1) <= 3 {
				return fmt.Errorf("s3 put: %w: SlowDown", transfer.ErrThrottled)
			}
			return nil
		}
		publish(t, b.q, job("t", "k", ""))
		b.waitDone("k", data)
		if n := puts.Load(); n != 4 {
			t.Fatalf("%d PUTs, want 3 throttled and 1 through", n)
		}
	})
}

// TestASilentConnectionEndsTheRequest: a destination that accepts a
// request and never answers does not hold the job for ever.
func TestASilentConnectionEndsTheRequest(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(func() { close(release); srv.Close() })
	d, err := transfer.NewS3Destination(context.Background(), transfer.DestinationConfig{Region: "us-east-1", Bucket: "dst",
		Endpoint: srv.URL, AccessKeyID: "AK", SecretAccessKey: "SK", ReadTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := d.Head(context.Background(), "k"); done <- err }()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, transfer.ErrNotFound) {
			t.Fatalf("HEAD on a silent connection: %v, want an error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("HEAD on a silent connection still waiting after 20s")
	}
}

// TestCreatingAnUploadIsNotRetriedUnderTheJob: the SDK's own retry of a
// CreateMultipartUpload whose answer was lost would create a second upload
// and leave the first open, named by nothing; it is left to the job.
func TestCreatingAnUploadIsNotRetriedUnderTheJob(t *testing.T) {
	t.Parallel()
	var creates atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.URL.Query()["uploads"]; ok {
			creates.Add(1)
		}
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>try again</Message></Error>`)
	}))
	t.Cleanup(srv.Close)
	d, err := transfer.NewS3Destination(context.Background(), transfer.DestinationConfig{Region: "us-east-1", Bucket: "dst",
		Endpoint: srv.URL, AccessKeyID: "AK", SecretAccessKey: "SK"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateUpload(context.Background(), "k", &transfer.WriteInfo{Source: &transfer.ObjectInfo{}}); err == nil {
		t.Fatal("CreateMultipartUpload answered 500, and no error")
	}
	if n := creates.Load(); n != 1 {
		t.Fatalf("%d CreateMultipartUpload requests, want 1", n)
	}
}
