package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/handlers/ingestsink"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

const (
	secret       = "0123456789abcdef-current"
	adminToken   = "admin-token-0123456789"
	sourceSecret = "secret-of-the-fc-function-for-src2"
)

type bundle struct {
	q       *transfer.Queue
	handler http.Handler
}

// setup starts a gateway handler on a real embedded JetStream.
func setup(t testing.TB, qcfg transfer.QueueConfig) *bundle {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	qcfg.DataDir = t.TempDir()
	q, err := transfer.OpenQueue(context.Background(), qcfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	tasks := []*transfer.Task{
		{Name: "photos", Source: transfer.SourceConfig{Bucket: "src", Prefixes: []string{"photos/"}}},
		{Name: "all", Source: transfer.SourceConfig{Bucket: "src2"}},
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, []string{"photos", "all"})
	events := ingestsink.New(ingest.NewReceiver(ingest.NewIntake(q, transfer.NewRouter(tasks), m, log), ingest.Config{
		WebhookSecrets: []string{"0123456789abcdef-previous", secret},
		WebhookSources: []ingest.WebhookSource{{Name: "fc-src2", Secrets: []string{sourceSecret}, Buckets: []string{"src2"}}},
	}))
	h := handlers.New(log, m, reg, events, q, nil, handlers.Config{MaxBodyBytes: 64 << 10, AdminTokens: []string{adminToken}})
	return &bundle{q: q, handler: h}
}

func doc(records ...ossevent.Record) []byte {
	b, _ := json.Marshal(ossevent.Document{Events: records})
	return b
}

func record(name, bucket, key, etag string) ossevent.Record {
	return ossevent.NewRecord(name, "cn-hangzhou", bucket, key, etag, 5, "text/plain", time.Now())
}

func (b *bundle) post(t *testing.T, body []byte, mutate func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/events/oss", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(signature.Header, signature.Sign(secret, time.Now(), body))
	if mutate != nil {
		mutate(req)
	}
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return rec
}

func (b *bundle) depth(t *testing.T) uint64 {
	t.Helper()
	n, err := b.q.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOSSEventsAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, transfer.QueueConfig{})
	body := doc(
		record("ObjectCreated:PutObject", "src", "photos/a.jpg", "AA"),
		record("ObjectCreated:CompleteMultipartUpload", "src", "photos/b.jpg", "BB-2"),
		record("ObjectCreated:UploadPart", "src", "photos/c.jpg", ""),
		record("ObjectCreated:PutObject", "src", "docs/not-routed.txt", "CC"),
		record("ObjectRemoved:DeleteObject", "src2", "x", ""),
	)
	rec := b.post(t, body, nil)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Values("Content-Type"); len(ct) != 1 || ct[0] != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var got handlers.EventsAccepted
	_ = json.Unmarshal(rec.Body.Bytes(), &got)
	if got != (handlers.EventsAccepted{Queued: 3, Ignored: 1, Unrouted: 1}) {
		t.Fatalf("counts %+v", got)
	}
	if n := b.depth(t); n != 3 {
		t.Fatalf("stream holds %d jobs, want 3", n)
	}

	// FC retries the same invocation: nothing new is queued.
	rec = b.post(t, body, nil)
	_ = json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != http.StatusAccepted || got.Queued != 0 || got.Duplicate != 3 {
		t.Fatalf("re-sent document: %d %+v", rec.Code, got)
	}
	if n := b.depth(t); n != 3 {
		t.Fatalf("stream holds %d jobs after the re-send, want 3", n)
	}

	// Signed with the older secret (rotation): accepted.
	body2 := doc(record("ObjectCreated:PutObject", "src", "photos/d.jpg", "DD"))
	rec = b.post(t, body2, func(r *http.Request) {
		r.Header.Set(signature.Header, signature.Sign("0123456789abcdef-previous", time.Now(), body2))
	})
	if rec.Code != http.StatusAccepted {
		t.Fatalf("old secret during rotation: %d %s", rec.Code, rec.Body)
	}
}

func TestOSSEventsBadInput(t *testing.T) {
	t.Parallel()
	good := doc(record("ObjectCreated:PutObject", "src", "photos/a.jpg", "AA"))
	cases := []struct {
		name   string
		body   []byte
		mutate func(*http.Request)
		status int
		reason string
	}{
		{"NoSignature", good, func(r *http.Request) { r.Header.Del(signature.Header) }, 401, "missing X-Oss2s3-Signature"},
		{"WrongSecret", good, func(r *http.Request) {
			r.Header.Set(signature.Header, signature.Sign("wrong-secret-0123456", time.Now(), good))
		}, 401, "does not match"},
		{"OldTimestamp", good, func(r *http.Request) {
			r.Header.Set(signature.Header, signature.Sign(secret, time.Now().Add(-10*time.Minute), good))
		}, 401, "behind the gateway's clock (clock skew?)"},
		{"MalformedSignature", good, func(r *http.Request) { r.Header.Set(signature.Header, "sha256=abc") }, 401, "malformed"},
		{"BodyChangedAfterSigning", good, func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(string(good), "photos/a.jpg", "photos/b.jpg", 1)))
		}, 401, "does not match"},
		{"NotJSON", []byte("hello"), nil, 400, "not an OSS event document"},
		{"WrongShape", []byte(`{"events":"x"}`), nil, 400, "not an OSS event document"},
		{"EmptyEvents", []byte(`{"events":[]}`), nil, 400, `"events" is empty`},
		{"EmptyBody", []byte{}, nil, 400, "empty body"},
		{"OneBadRecordRejectsTheWholeDocument", doc(record("ObjectCreated:PutObject", "src", "photos/a.jpg", "AA"), record("ObjectCreated:PutObject", "src", "", "BB")), nil, 400, "events[1]: oss.object.key is missing"},
		{"OversizeBody", bytes.Repeat([]byte(" "), 65<<10), nil, 413, "larger than"},
		{"WrongContentType", good, func(r *http.Request) { r.Header.Set("Content-Type", "text/xml") }, 415, "want application/json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, transfer.QueueConfig{})
			rec := b.post(t, tc.body, tc.mutate)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tc.reason) {
				t.Fatalf("body %s, want an error containing %q", rec.Body, tc.reason)
			}
			if n := b.depth(t); n != 0 {
				t.Fatalf("stream holds %d jobs after a rejected request", n)
			}
		})
	}
}

// TestOSSEventsClockSkew: a sender whose clock is off by less than the
// tolerance (5m) is accepted; one off by more gets a 401 that says the
// clocks disagree, by how much and which way, so the operator knows which
// clock to fix.
func TestOSSEventsClockSkew(t *testing.T) {
	t.Parallel()
	b := setup(t, transfer.QueueConfig{})
	cases := []struct {
		name   string
		skew   time.Duration // the gateway's clock minus the sender's
		status int
		reason string
	}{
		{"GatewayFourMinutesAheadIsAccepted", 4 * time.Minute, http.StatusAccepted, ""},
		{"GatewayFourMinutesBehindIsAccepted", -4 * time.Minute, http.StatusAccepted, ""},
		{"GatewaySixMinutesAheadIsRefusedAsSkew", 6 * time.Minute, http.StatusUnauthorized,
			"signature timestamp is 6m0s behind the gateway's clock (clock skew?); tolerance 5m0s"},
		{"GatewaySixMinutesBehindIsRefusedAsSkew", -6 * time.Minute, http.StatusUnauthorized,
			"signature timestamp is 6m0s ahead of the gateway's clock (clock skew?); tolerance 5m0s"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := doc(record("ObjectCreated:PutObject", "src", fmt.Sprintf("photos/skew-%d.jpg", i), "AA"))
			// Signed and verified within the same second, so that the
			// offset, in whole seconds, is the skew exactly.
			if ns := time.Now().Nanosecond(); ns > 5e8 {
				time.Sleep(time.Second - time.Duration(ns))
			}
			rec := b.post(t, body, func(r *http.Request) {
				r.Header.Set(signature.Header, signature.Sign(secret, time.Now().Add(-tc.skew), body))
			})
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error != tc.reason {
				t.Fatalf("body %s, want the error %q", rec.Body, tc.reason)
			}
		})
	}
	if n := b.depth(t); n != 2 {
		t.Fatalf("stream holds %d jobs, want the two accepted documents'", n)
	}
}

func TestOSSEventsQueueFull(t *testing.T) {
	t.Parallel()
	b := setup(t, transfer.QueueConfig{MaxMsgs: 1})
	rec := b.post(t, doc(record("ObjectCreated:PutObject", "src", "photos/a.jpg", "AA"), record("ObjectCreated:PutObject", "src", "photos/b.jpg", "BB")), nil)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q: %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, transfer.QueueConfig{})
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`, "/metrics": "oss2s3_events_received_total"} {
		rec := httptest.NewRecorder()
		b.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d %s", path, rec.Code, rec.Body.String()[:min(200, rec.Body.Len())])
		}
	}
	b.q.Close()
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with JetStream closed: %d", rec.Code)
	}
}

func TestOSSEventsPerSourceSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t, transfer.QueueConfig{})
	signAs := func(secret string, body []byte) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set(signature.Header, signature.Sign(secret, time.Now(), body)) }
	}
	own := doc(record("ObjectCreated:PutObject", "src2", "k", "AA"))
	if rec := b.post(t, own, signAs(sourceSecret, own)); rec.Code != http.StatusAccepted {
		t.Fatalf("a source reporting its own bucket: %d %s", rec.Code, rec.Body)
	}
	other := doc(record("ObjectCreated:PutObject", "src2", "k2", "AA"), record("ObjectCreated:PutObject", "src", "photos/x", "BB"))
	rec := b.post(t, other, signAs(sourceSecret, other))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), `events[1]: source \"fc-src2\" may not report bucket \"src\"`) {
		t.Fatalf("a source reporting another bucket: %d %s", rec.Code, rec.Body)
	}
	if n := b.depth(t); n != 1 {
		t.Fatalf("stream holds %d jobs, want only the first document's", n)
	}
}
