package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestBatchedTLSSendsBodiesInBatches: a request body sent over HTTPS through
// net/http arrives intact, and its TLS records (16 KiB at most each) reach
// the socket in writes of up to 256 KiB, not one write per record (a
// plain *tls.Conn makes at least 256 writes for 4 MiB).
func TestBatchedTLSSendsBodiesInBatches(t *testing.T) {
	t.Parallel()
	body := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(body)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, err := io.ReadAll(r.Body)
		if err != nil || sha256.Sum256(got) != want {
			http.Error(w, "body differs", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.EnableHTTP2 = true // the server would speak HTTP/2: the dialer must not offer it
	srv.StartTLS()
	t.Cleanup(srv.Close)

	var writes atomic.Int64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: &writes}, nil
	}
	tr := &http.Transport{ForceAttemptHTTP2: true}
	tr.DialTLSContext = batchedTLSDialer(dial, srv.Client().Transport.(*http.Transport).TLSClientConfig, 10*time.Second)
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}

	put := func() int64 {
		t.Helper()
		before := writes.Load()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+"/part", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.ProtoMajor != 1 {
			t.Fatalf("PUT: %s over %s, want 204 over HTTP/1.1", resp.Status, resp.Proto)
		}
		return writes.Load() - before
	}
	put() // the handshake's writes
	// 4 MiB in 256 KiB batches is 16 writes, and one for the headers.
	if n := put(); n > 20 {
		t.Fatalf("a 4 MiB body took %d writes to the socket, want at most 20", n)
	}
}

// TestRecordBatcherWritesAtOnceOutsideAWrite: what crypto/tls writes on its
// own (the handshake, alerts, close_notify) is not held back.
func TestRecordBatcherWritesAtOnceOutsideAWrite(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	rb := &recordBatcher{Conn: a}
	go func() { _, _ = rb.Write([]byte("alert")) }()
	got := make([]byte, 5)
	if err := b.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "alert" {
		t.Fatalf("read %q, %v", got, err)
	}
}
