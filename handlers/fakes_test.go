package handlers_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/handlers/ingestsink"
	"github.com/oss2s3/oss2s3/internal/signcert"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest"
	"github.com/oss2s3/oss2s3/transfer/ingest/cloudevents"
	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
)

// memQueue is a work queue in memory: it stores a job unless one with the
// same message id is in its duplicate window (which lasts until forget),
// as JetStream does. failNext makes the next Publish store that many jobs
// and fail, as a stream at its limits does. It is also the gateway's
// readiness check and dead-letter queue.
type memQueue struct {
	mu       sync.Mutex
	window   map[string]bool // message ids seen since the last forget
	ever     map[string]bool // message ids stored before the last reset
	stored   []transfer.Job
	calls    int
	failNext int // -1: no failure
}

func newMemQueue() *memQueue { return &memQueue{window: map[string]bool{}, failNext: -1} }

func (q *memQueue) Publish(_ context.Context, jobs []transfer.Job) (transfer.PublishResult, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	var res transfer.PublishResult
	for i, j := range jobs {
		if q.failNext >= 0 && i >= q.failNext {
			for k := i; k < len(jobs); k++ {
				res.NotQueued = append(res.NotQueued, k)
			}
			q.failNext = -1
			return res, transfer.ErrQueueUnavailable
		}
		if q.window[j.MsgID()] {
			res.Duplicate++
			res.NotQueued = append(res.NotQueued, i)
			continue
		}
		q.window[j.MsgID()] = true
		q.stored = append(q.stored, j)
		res.Queued++
	}
	q.failNext = -1
	return res, nil
}

// reset forgets every job, as a queue emptied and past its duplicate
// window.
func (q *memQueue) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ever == nil {
		q.ever = map[string]bool{}
	}
	for id := range q.window {
		q.ever[id] = true
	}
	q.window, q.stored, q.calls = map[string]bool{}, nil, 0
}

// forget ends the duplicate window: what is published next is new.
func (q *memQueue) forget() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.window = map[string]bool{}
}

// holds reports whether the queue holds a job with the message id of j,
// or held one before the last reset.
func (q *memQueue) holds(j transfer.Job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.window[j.MsgID()] || q.ever[j.MsgID()]
}

// failing makes the next Publish store n jobs and fail; -1: it does not
// fail.
func (q *memQueue) failing(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.failNext = n
}

// state is the number of jobs stored and of Publish calls.
func (q *memQueue) state() (stored, calls int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.stored), q.calls
}

func (q *memQueue) Ready(context.Context) error { return nil }

func (q *memQueue) DeadLetters(context.Context, handlers.DeadLetterFilter, int) ([]any, error) {
	return nil, nil
}

func (q *memQueue) Redrive(context.Context, handlers.DeadLetterFilter) (int, error) { return 0, nil }

// syncBuffer is a log destination tests read while handlers write. It
// keeps the last 256 KB or so: a fuzz target's gateway logs thousands of
// rejections, and a buffer that grew with them would charge a megabyte's
// copy to whichever request wrote the line that grew it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len()+len(p) > 256<<10 {
		s.b.Reset()
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// memGateway is the whole handler, every endpoint on, over a memQueue: for
// tests that need to see each Publish, end the duplicate window, or read
// the logs and metrics.
type memGateway struct {
	gateway
	mq   *memQueue
	in   *ingest.Intake // the handler's: Jobs says what a request's records make
	reg  *prometheus.Registry
	logs *syncBuffer
}

// gatewayConfig is a gateway's configuration: its HTTP side's and its
// Receiver's.
type gatewayConfig struct {
	http   handlers.Config
	events ingest.Config
}

// newMemGateway is newGateway on a memQueue; change edits the
// configuration first.
func newMemGateway(t testing.TB, change func(*gatewayConfig)) *memGateway {
	t.Helper()
	key, certURL, client := certHost(t)
	allowed, err := mns.HostPattern(`127\.0\.0\.1:[0-9]+`)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	mq := newMemQueue()
	tasks := []*transfer.Task{{Name: "photos", Source: transfer.SourceConfig{Bucket: "src", Prefixes: []string{"photos/"}}}}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, []string{"photos"})
	cfg := gatewayConfig{
		http: handlers.Config{MaxBodyBytes: 1 << 20, AdminTokens: []string{adminToken}, MNSPathTokens: []string{mnsToken}},
		events: ingest.Config{
			WebhookSecrets: []string{secret},
			EventBridge:    cloudevents.Auth{Header: ebHeader, APIKeys: []string{ebKey}},
			MNS:            &mns.Verifier{AllowedHost: allowed, Client: client},
		},
	}
	if change != nil {
		change(&cfg)
	}
	in := ingest.NewIntake(mq, transfer.NewRouter(tasks), m, log)
	h := handlers.New(log, m, reg, ingestsink.New(ingest.NewReceiver(in, cfg.events)), mq, mq, cfg.http)
	return &memGateway{gateway: gateway{bundle: &bundle{handler: h}, certURL: certURL, key: key}, mq: mq, in: in, reg: reg, logs: logs}
}

// certHost serves a fresh signing certificate over TLS, as
// mns-cert.oss-<region>.aliyuncs.com does: the key, the certificate's URL
// and a client that trusts the server.
func certHost(t testing.TB) (*rsa.PrivateKey, string, *http.Client) {
	t.Helper()
	key, certPEM := signcert.New(t, "mns test")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cert.pem" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(certPEM)
	}))
	t.Cleanup(srv.Close)
	return key, srv.URL + "/cert.pem", srv.Client()
}
