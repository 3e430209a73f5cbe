package handlers_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

// BenchmarkOSSEvent is the gateway's hot path without the network: one
// signed single-record document per request through echo, authentication,
// parsing, routing and a durable publish to the embedded JetStream. It is
// where allocations per event are counted (go run ./bench ingest measures
// the whole gateway over HTTP).
func BenchmarkOSSEvent(b *testing.B) {
	bd := setup(b, transfer.QueueConfig{})
	// Every request a new object version (a duplicate takes a shorter
	// path); the documents are made outside the timer, 4096 at a time.
	bodies := make([][]byte, 4096)
	run := time.Now().UnixNano()
	makeBodies := func(from int) {
		for i := range bodies {
			bodies[i] = doc(record("ObjectCreated:PutObject", "src2", fmt.Sprintf("bench/%d/%09d", run, from+i), fmt.Sprintf("%032X", from+i)))
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/events/oss", nil)
	req.Header.Set("Content-Type", "application/json")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%len(bodies) == 0 {
			b.StopTimer()
			makeBodies(i)
			b.StartTimer()
		}
		body := bodies[i%len(bodies)]
		r := req.Clone(req.Context())
		r.Body = readCloser{bytes.NewReader(body)}
		r.ContentLength = int64(len(body))
		r.Header.Set(signature.Header, signature.Sign(secret, time.Now(), body))
		rec := httptest.NewRecorder()
		bd.handler.ServeHTTP(rec, r)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
