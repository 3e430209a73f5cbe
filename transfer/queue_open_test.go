package transfer_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/transfer"
)

// signalHandler is a slog handler that closes seen at the first record
// whose message contains want.
type signalHandler struct {
	slog.Handler
	want string
	once *sync.Once
	seen chan struct{}
}

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.want) {
		h.once.Do(func() { close(h.seen) })
	}
	return h.Handler.Handle(ctx, r)
}

func (h signalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

// A replica started before its NATS server keeps trying, and opens the
// queue once the server is up, rather than exiting.
func TestQueueOpensWhenNATSComesUpAfterTheReplica(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	h := signalHandler{Handler: testLogger(t).Handler(), want: "trying again", once: &sync.Once{}, seen: make(chan struct{})}
	type opened struct {
		q   *transfer.Queue
		err error
	}
	done := make(chan opened, 1)
	go func() {
		q, err := transfer.OpenQueue(context.Background(), transfer.QueueConfig{URL: fmt.Sprintf("nats://127.0.0.1:%d", port)}, slog.New(h))
		done <- opened{q, err}
	}()
	select {
	case <-h.seen:
	case r := <-done:
		t.Fatalf("OpenQueue returned with no server: %v", r.err)
	case <-time.After(time.Minute):
		t.Fatal("OpenQueue never reported that it keeps trying")
	}

	jstest.StartAt(t, t.TempDir(), port)
	r := <-done
	if r.err != nil {
		t.Fatalf("OpenQueue after the server came up: %v", r.err)
	}
	t.Cleanup(r.q.Close)
	if err := r.q.Ready(context.Background()); err != nil {
		t.Fatalf("not ready: %v", err)
	}
}
