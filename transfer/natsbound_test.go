package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/transfer"
)

// A JetStream answer lost on the way back (a connection reset, a stream
// leader killed after it took a request) never arrives, and nats.go waits
// for it as long as the caller's context: under a job's context, hours, with
// the job's message kept in progress all that time. This is how a chaos
// soak once ended with a part job held for ever by a live worker. Every
// single-request call a worker makes must end after the reply timeout.
func TestALostJetStreamReplyEndsTheCallNotTheJob(t *testing.T) {
	t.Parallel()
	ns := jstest.Start(t)
	toxics := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := toxiproxy.NewProxy(toxics, "nats", "127.0.0.1:0", strings.TrimPrefix(ns.ClientURL(), "nats://"))
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)

	const replyTimeout = 300 * time.Millisecond
	q, err := transfer.OpenQueue(context.Background(), transfer.QueueConfig{URL: "nats://" + proxy.Listen, ReplyTimeout: replyTimeout}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	job := []transfer.Job{{Task: "t", ObjectArgs: transfer.ObjectArgs{Key: "a.bin", ETag: "e1", Size: 1}}}
	if _, err := q.Publish(context.Background(), job); err != nil {
		t.Fatalf("publish before the fault: %v", err)
	}

	// From here the server's answers are dropped; the connection stays up.
	if _, err := proxy.Toxics.AddToxicJson(bytes.NewReader([]byte(
		`{"name":"blackhole","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`))); err != nil {
		t.Fatal(err)
	}
	jobCtx, cancel := context.WithTimeout(context.Background(), time.Hour) // as long as a job may run
	defer cancel()
	bound := 20 * replyTimeout

	start := time.Now()
	_, err = q.Publish(jobCtx, []transfer.Job{{Task: "t", ObjectArgs: transfer.ObjectArgs{Key: "b.bin", ETag: "e1", Size: 1}}})
	if took := time.Since(start); err == nil || took > bound {
		t.Fatalf("publish with its acknowledgement lost: err %v after %v; want an error within %v", err, took, bound)
	}
	if !errors.Is(err, transfer.ErrQueueUnavailable) {
		t.Errorf("publish with its acknowledgement lost: %v, want ErrQueueUnavailable (the caller retries)", err)
	}

	start = time.Now()
	_, _, err = q.Checkpoints().Get(jobCtx, "t", "a.bin", "e1")
	if took := time.Since(start); err == nil || took > bound {
		t.Fatalf("checkpoint read with its answer lost: err %v after %v; want an error within %v", err, took, bound)
	}
}
