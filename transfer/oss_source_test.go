package transfer_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer"
)

// TestRequesterPaysSource: a requester-pays source bucket (DTH's
// isPayerRequest) refuses oss2s3's HEAD and GET unless the task sets
// requester_pays, and answers them when it does; the emulator checks the
// header on the wire, signed with the request.
func TestRequesterPaysSource(t *testing.T) {
	t.Parallel()
	emu, url := ossWithObject(t, "paid", "k", []byte("hello"))
	emu.SetRequesterPays("paid", true)
	ctx := context.Background()
	for _, payer := range []bool{false, true} {
		src, err := transfer.NewOSSSource(transfer.SourceConfig{Endpoint: url, Bucket: "paid", AccessKeyID: "AK", AccessKeySecret: "SK",
			RequesterPays: payer}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, headErr := src.Head(ctx, "k")
		body, getErr := src.Get(ctx, "k", "", 0, -1)
		var got []byte
		if getErr == nil {
			got, _ = io.ReadAll(body)
			_ = body.Close()
		}
		switch {
		case !payer && (headErr == nil || getErr == nil || !strings.Contains(headErr.Error()+getErr.Error(), "AccessDenied")):
			t.Errorf("without requester_pays: head %v, get %v; want AccessDenied", headErr, getErr)
		case payer && (headErr != nil || getErr != nil || string(got) != "hello"):
			t.Errorf("with requester_pays: head %v, get %v %q", headErr, getErr, got)
		}
	}
}

// TestSourceReadsArePaced: with a bandwidth cap, both ways the copier reads
// the source (Get, and Open for small objects) pause for the bytes beyond
// the bucket's burst: 1 MiB at 1 MiB/s with a burst of 102.4 KiB pauses
// up to 0.9 s (less the time the reads themselves take: the bucket fills
// meanwhile), heard by the metric's callback.
func TestSourceReadsArePaced(t *testing.T) {
	t.Parallel()
	_, url := ossWithObject(t, "paced", "k", make([]byte, 1<<20))
	ctx := context.Background()
	for _, how := range []string{"get", "open"} {
		src, err := transfer.NewOSSSource(transfer.SourceConfig{Endpoint: url, Bucket: "paced", AccessKeyID: "AK", AccessKeySecret: "SK"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var paused time.Duration
		src.SetBandwidth(1<<20, func(d time.Duration) { mu.Lock(); paused += d; mu.Unlock() })
		var body io.ReadCloser
		start := time.Now()
		if how == "get" {
			body, err = src.Get(ctx, "k", "", 0, -1)
		} else {
			_, body, err = src.Open(ctx, "k")
		}
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, body)
		_ = body.Close()
		took := time.Since(start)
		mu.Lock()
		got := paused
		mu.Unlock()
		// The read takes at least 0.5 s however fast the machine; on a
		// loaded one the reads themselves take part of it and the pauses
		// less, so the pauses are only bounded above (and heard at all).
		if err != nil || n != 1<<20 || took < 500*time.Millisecond || got <= 0 || got > 900*time.Millisecond {
			t.Errorf("%s: read %d bytes (%v) in %v, paused %v; want 1 MiB in 0.5 s or more, and pauses of up to 0.9 s", how, n, err, took, got)
		}
	}
}

// ossWithObject starts an OSS emulator (key AK, secret SK) holding one
// object.
func ossWithObject(t *testing.T, bucket, key string, data []byte) (*ossemu.Server, string) {
	t.Helper()
	emu := ossemu.New(ossemu.Options{Credentials: map[string]string{"AK": "SK"}})
	url, err := emu.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	if _, err := emu.PutObject(bucket, key, data, http.Header{}); err != nil {
		t.Fatal(err)
	}
	return emu, url
}
