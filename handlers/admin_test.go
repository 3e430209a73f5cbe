package handlers_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/handlers/ingestsink"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest"
)

// fakeDLQ records what the admin API asked of the dead-letter queue. Its
// letters are the queue's own type, as server's adapter hands them over.
type fakeDLQ struct {
	letters  []transfer.DeadLetter
	redriven []handlers.DeadLetterFilter
}

func (f *fakeDLQ) DeadLetters(_ context.Context, flt handlers.DeadLetterFilter, limit int) ([]any, error) {
	var out []any
	for _, d := range f.letters {
		if (flt.Task == "" || d.Job.Task == flt.Task) && len(out) < limit {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeDLQ) Redrive(_ context.Context, flt handlers.DeadLetterFilter) (int, error) {
	f.redriven = append(f.redriven, flt)
	return 2, nil
}

type noPublish struct{}

func (noPublish) Publish(context.Context, []transfer.Job) (transfer.PublishResult, error) {
	return transfer.PublishResult{}, nil
}
func (noPublish) Ready(context.Context) error { return nil }

func adminHandler(t *testing.T, tokens []string) (http.Handler, *fakeDLQ) {
	t.Helper()
	dlq := &fakeDLQ{letters: []transfer.DeadLetter{
		{Seq: 1, Job: transfer.Job{Task: "a", ObjectArgs: transfer.ObjectArgs{Key: "k1"}}, Error: "AccessDenied", Attempts: "1"},
		{Seq: 2, Job: transfer.Job{Task: "b", ObjectArgs: transfer.ObjectArgs{Key: "k2"}}, Error: "timeout", Attempts: "5"},
	}}
	reg := prometheus.NewRegistry()
	log, m := slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(reg, nil)
	events := ingestsink.New(ingest.NewReceiver(ingest.NewIntake(noPublish{}, transfer.NewRouter(nil), m, log), ingest.Config{WebhookSecrets: []string{secret}}))
	h := handlers.New(log, m, reg, events, noPublish{}, dlq, handlers.Config{AdminTokens: tokens})
	return h, dlq
}

func call(h http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	t.Run("ListsDeadLettersWithTheirCauseFilteredByTask", func(t *testing.T) {
		t.Parallel()
		h, _ := adminHandler(t, []string{"old-token-0123456789", adminToken})
		rec := call(h, "GET", "/v1/dlq?task=b", adminToken, "")
		// handlers.DeadLetterList, its dead letters read back as the
		// queue's type.
		var got struct {
			DeadLetters []transfer.DeadLetter `json:"dead_letters"`
			Count       int                   `json:"count"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if got.Count != 1 || got.DeadLetters[0].Job.Key != "k2" || got.DeadLetters[0].Error != "timeout" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("RedrivesByTaskAndKey", func(t *testing.T) {
		t.Parallel()
		h, dlq := adminHandler(t, []string{adminToken})
		rec := call(h, "POST", "/v1/dlq/redrive", adminToken, `{"task":"a","key":"k1"}`)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"redriven":2`) {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if len(dlq.redriven) != 1 || dlq.redriven[0] != (handlers.DeadLetterFilter{Task: "a", Key: "k1"}) {
			t.Fatalf("redriven %+v", dlq.redriven)
		}
		rec = call(h, "POST", "/v1/dlq/redrive", adminToken, "")
		if rec.Code != 200 || dlq.redriven[1] != (handlers.DeadLetterFilter{}) {
			t.Fatalf("redrive all: %d %+v", rec.Code, dlq.redriven)
		}
	})
	t.Run("RefusesBadRequests", func(t *testing.T) {
		t.Parallel()
		h, dlq := adminHandler(t, []string{adminToken})
		for _, tc := range []struct {
			name, method, path, token, body string
			status                          int
			reason                          string
		}{
			{"NoToken", "GET", "/v1/dlq", "", "", 401, "missing Authorization"},
			{"WrongToken", "GET", "/v1/dlq", "nope", "", 401, "not accepted"},
			{"WebhookSecretIsNotAnAdminToken", "POST", "/v1/dlq/redrive", secret, "", 401, "not accepted"},
			{"BadLimit", "GET", "/v1/dlq?limit=0", adminToken, "", 400, "limit"},
			{"BadBody", "POST", "/v1/dlq/redrive", adminToken, `{"tsk":"a"}`, 400, "unknown field"},
		} {
			rec := call(h, tc.method, tc.path, tc.token, tc.body)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.reason) {
				t.Errorf("%s: %d %s", tc.name, rec.Code, rec.Body)
			}
		}
		if len(dlq.redriven) != 0 {
			t.Fatalf("a refused request redrove: %+v", dlq.redriven)
		}
	})
	t.Run("IsOffWithoutTokens", func(t *testing.T) {
		t.Parallel()
		h, _ := adminHandler(t, nil)
		if rec := call(h, "GET", "/v1/dlq", "anything", ""); rec.Code != 403 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
}
