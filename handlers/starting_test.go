package handlers_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/metrics"
)

type notReady struct{ err error }

func (n notReady) Ready(context.Context) error { return n.err }

// TestStartingHandler: before JetStream is ready the gateway is alive and
// says why it is not ready; every webhook and admin route answers 503 with
// Retry-After (nothing is done, send it again), whatever its credentials.
func TestStartingHandler(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, []string{"photos"})
	h := handlers.NewStarting(slog.New(slog.NewTextHandler(io.Discard, nil)), m, reg,
		notReady{errors.New("jetstream not reachable yet: create stream OSS2S3_JOBS: context deadline exceeded")}, handlers.Config{})
	cases := []struct {
		name, method, path string
		status             int
		body               string
		retryAfter         bool
	}{
		{"HealthzSaysTheProcessIsUp", http.MethodGet, "/healthz", 200, `"ok"`, false},
		{"ReadyzSaysWhyNot", http.MethodGet, "/readyz", 503, "jetstream not reachable yet: create stream OSS2S3_JOBS: context deadline exceeded", false},
		{"MetricsAreServed", http.MethodGet, "/metrics", 200, "oss2s3_events_received_total", false},
		{"OSSWebhookIsRefusedForLater", http.MethodPost, "/v1/events/oss", 503, "jetstream not reachable yet: create stream OSS2S3_JOBS: context deadline exceeded, retry later", true},
		{"EventBridgeIsRefusedForLater", http.MethodPost, "/v1/events/eventbridge", 503, "retry later", true},
		{"MNSIsRefusedForLater", http.MethodPost, "/v1/events/mns/token", 503, "retry later", true},
		{"AdminIsRefusedForLater", http.MethodPost, "/v1/dlq/redrive", 503, "retry later", true},
		{"AnUnknownPathIsNotFound", http.MethodGet, "/nothing", 404, "Not Found", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{"events":[]}`)))
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Fatalf("%s %s: %d %s, want %d with %q", tc.method, tc.path, rec.Code, rec.Body, tc.status, tc.body)
			}
			if got := rec.Header().Get("Retry-After"); (got != "") != tc.retryAfter {
				t.Fatalf("Retry-After %q, want one: %v", got, tc.retryAfter)
			}
		})
	}
}
