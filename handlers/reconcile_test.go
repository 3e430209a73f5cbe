package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/metrics"
)

// fakeReconciler has one task, "photos", whose run "run-1" is in
// progress when busy; it records the requests it was given.
type fakeReconciler struct {
	busy    bool
	started []handlers.ReconcileRequest
	listed  []string // task/limit of each List
}

type fakeRunState struct {
	ID   string `json:"id"`
	Task string `json:"task"`
	Mode string `json:"mode"`
}

func (f *fakeReconciler) Start(_ context.Context, task string, req handlers.ReconcileRequest) (handlers.ReconcileRun, error) {
	switch {
	case task != "photos":
		return handlers.ReconcileRun{}, fmt.Errorf("%w: %q", handlers.ErrNoTask, task)
	case f.busy:
		return handlers.ReconcileRun{}, &handlers.ReconcileRunning{ID: "run-1"}
	}
	f.started = append(f.started, req)
	return handlers.ReconcileRun{ID: "run-2", State: fakeRunState{ID: "run-2", Task: task, Mode: req.Mode}}, nil
}

func (f *fakeReconciler) Get(_ context.Context, id string) (handlers.ReconcileRun, error) {
	if id != "run-1" {
		return handlers.ReconcileRun{}, handlers.ErrNoRun
	}
	return handlers.ReconcileRun{ID: id, State: fakeRunState{ID: id, Task: "photos", Mode: "report"}}, nil
}

// List has three runs, newest first: run-3 and run-1 of photos, run-2 of
// logs.
func (f *fakeReconciler) List(_ context.Context, task string, limit int) ([]handlers.ReconcileRun, error) {
	f.listed = append(f.listed, fmt.Sprintf("%s/%d", task, limit))
	var out []handlers.ReconcileRun
	for _, r := range []fakeRunState{{"run-3", "photos", "copy"}, {"run-2", "logs", "sync"}, {"run-1", "photos", "report"}} {
		if (task == "" || r.Task == task) && len(out) < limit {
			out = append(out, handlers.ReconcileRun{ID: r.ID, State: r})
		}
	}
	return out, nil
}

func (f *fakeReconciler) WriteReport(_ context.Context, id string, w io.Writer) error {
	_, err := io.WriteString(w, `{"key":"a","result":"missing"}`+"\n")
	return err
}

func reconcileHandler(t *testing.T, r handlers.Reconciler) http.Handler {
	t.Helper()
	reg := prometheus.NewRegistry()
	return handlers.New(slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(reg, nil), reg, nil, noPublish{}, &fakeDLQ{},
		handlers.Config{AdminTokens: []string{adminToken}, Reconciler: r})
}

// TestReconcileAPI: the reconcile routes answer with the reconciler's run,
// say which run is in progress, name what is not there, and refuse a bad
// request without starting anything.
func TestReconcileAPI(t *testing.T) {
	t.Parallel()
	t.Run("StartsARunAndShowsIt", func(t *testing.T) {
		t.Parallel()
		r := &fakeReconciler{}
		h := reconcileHandler(t, r)
		rec := call(h, "POST", "/v1/tasks/photos/reconcile", adminToken, `{"mode":"report","verify":"etag","max_deletes":5,"prefixes":["a/"]}`)
		if rec.Code != http.StatusAccepted || rec.Body.String() != `{"id":"run-2","run":{"id":"run-2","task":"photos","mode":"report"}}`+"\n" {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		want := handlers.ReconcileRequest{Mode: "report", Verify: "etag", MaxDeletes: 5, Prefixes: []string{"a/"}}
		if len(r.started) != 1 || fmt.Sprint(r.started[0]) != fmt.Sprint(want) {
			t.Fatalf("started %+v, want %+v", r.started, want)
		}
		rec = call(h, "POST", "/v1/tasks/photos/reconcile", adminToken, "")
		if rec.Code != http.StatusAccepted || len(r.started) != 2 || fmt.Sprint(r.started[1]) != fmt.Sprint(handlers.ReconcileRequest{}) {
			t.Fatalf("no body: %d %s, started %+v", rec.Code, rec.Body, r.started)
		}
		rec = call(h, "GET", "/v1/reconciles/run-1", adminToken, "")
		if rec.Code != http.StatusOK || rec.Body.String() != `{"id":"run-1","task":"photos","mode":"report"}`+"\n" {
			t.Fatalf("GET: %d %s", rec.Code, rec.Body)
		}
		rec = call(h, "GET", "/v1/reconciles/run-1/report", adminToken, "")
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-ndjson" || rec.Body.String() != `{"key":"a","result":"missing"}`+"\n" {
			t.Fatalf("report: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
	})
	t.Run("SaysWhichRunIsInProgress", func(t *testing.T) {
		t.Parallel()
		h := reconcileHandler(t, &fakeReconciler{busy: true})
		rec := call(h, "POST", "/v1/tasks/photos/reconcile", adminToken, `{}`)
		var got handlers.ReconcileStarted
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusConflict ||
			got.ID != "run-1" || got.Message != "a reconcile run of this task is in progress" || got.Run != nil {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("RefusesBadRequests", func(t *testing.T) {
		t.Parallel()
		r := &fakeReconciler{}
		h := reconcileHandler(t, r)
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			reason                   string
		}{
			{"NoSuchTask", "POST", "/v1/tasks/nope/reconcile", `{}`, 404, "no task named nope"},
			{"NoSuchRun", "GET", "/v1/reconciles/nope", "", 404, "no reconcile run nope"},
			{"NoSuchRunsReport", "GET", "/v1/reconciles/nope/report", "", 404, "no reconcile run nope"},
			{"UnknownField", "POST", "/v1/tasks/photos/reconcile", `{"modes":"report"}`, 400, `invalid JSON body: unknown field "modes"`},
			{"TrailingData", "POST", "/v1/tasks/photos/reconcile", `{} {}`, 400, "invalid JSON body: trailing data"},
			{"BadMode", "POST", "/v1/tasks/photos/reconcile", `{"mode":"bogus"}`, 400, "mode: want report, copy, sync or copy_all"},
			{"BadVerify", "POST", "/v1/tasks/photos/reconcile", `{"verify":"md5"}`, 400, "verify: want size, etag or content"},
			{"ModeIsCheckedFirst", "POST", "/v1/tasks/photos/reconcile", `{"mode":"bogus","verify":"md5","max_deletes":-1}`, 400, "mode: want report, copy, sync or copy_all"},
			{"NegativeMaxDeletes", "POST", "/v1/tasks/photos/reconcile", `{"max_deletes":-1}`, 400, "max_deletes: want 0 (the task's cap) or more"},
			{"EmptyPrefix", "POST", "/v1/tasks/photos/reconcile", `{"prefixes":[""]}`, 400, "prefixes: each must be 1 to 1023 bytes"},
			{"LongPrefix", "POST", "/v1/tasks/photos/reconcile", `{"prefixes":["` + strings.Repeat("p", 1024) + `"]}`, 400, "prefixes: each must be 1 to 1023 bytes"},
		} {
			rec := call(h, tc.method, tc.path, adminToken, tc.body)
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != tc.status || e.Error != tc.reason {
				t.Errorf("%s: %d %s, want %d %q", tc.name, rec.Code, rec.Body, tc.status, tc.reason)
			}
		}
		if len(r.started) != 0 {
			t.Fatalf("a refused request started a run: %+v", r.started)
		}
	})
	t.Run("AnswersUnavailableWithoutAReconciler", func(t *testing.T) {
		t.Parallel()
		h := reconcileHandler(t, nil)
		for _, path := range []string{"/v1/reconciles/run-1", "/v1/reconciles/run-1/report"} {
			if rec := call(h, "GET", path, adminToken, ""); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "this process runs no reconciler") {
				t.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
			}
		}
		if rec := call(h, "POST", "/v1/tasks/photos/reconcile", adminToken, `{}`); rec.Code != http.StatusServiceUnavailable {
			t.Errorf("POST: %d %s", rec.Code, rec.Body)
		}
	})
}

// TestReconcileList: GET /v1/reconciles lists the runs newest first, of one
// task or all, 20 by default and at most 100, behind the admin token.
func TestReconcileList(t *testing.T) {
	t.Parallel()
	r := &fakeReconciler{}
	h := reconcileHandler(t, r)
	get := func(query, token string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/v1/reconciles"+query, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	for _, tc := range []struct {
		query, want string
	}{
		{"", `{"runs":[{"id":"run-3","task":"photos","mode":"copy"},{"id":"run-2","task":"logs","mode":"sync"},{"id":"run-1","task":"photos","mode":"report"}]}`},
		{"?task=photos", `{"runs":[{"id":"run-3","task":"photos","mode":"copy"},{"id":"run-1","task":"photos","mode":"report"}]}`},
		{"?task=photos&limit=1", `{"runs":[{"id":"run-3","task":"photos","mode":"copy"}]}`},
		{"?task=none", `{"runs":[]}`},
	} {
		if code, body := get(tc.query, adminToken); code != http.StatusOK || body != tc.want {
			t.Errorf("GET /v1/reconciles%s = %d %s, want 200 %s", tc.query, code, body, tc.want)
		}
	}
	if !slices.Equal(r.listed, []string{"/20", "photos/20", "photos/1", "none/20"}) {
		t.Errorf("the reconciler was asked %v", r.listed)
	}
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=x"} {
		if code, body := get(q, adminToken); code != http.StatusBadRequest || !strings.Contains(body, "limit") {
			t.Errorf("GET /v1/reconciles%s = %d %s, want 400 about limit", q, code, body)
		}
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/reconciles without a token = %d, want 401", code)
	}
	if len(r.listed) != 4 {
		t.Errorf("refused requests reached the reconciler: %v", r.listed)
	}
}

type fakeTasks struct{}

func (fakeTasks) Tasks(context.Context) ([]any, error) {
	return []any{map[string]any{"name": "photos", "jobs": 3}}, nil
}

// TestTaskListRoute: GET /v1/tasks answers the lister's tasks behind the
// admin token, and 503 where no lister is wired (JetStream not ready).
func TestTaskListRoute(t *testing.T) {
	t.Parallel()
	newHandler := func(l handlers.TaskLister) http.Handler {
		reg := prometheus.NewRegistry()
		return handlers.New(slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(reg, nil), reg, nil, noPublish{}, &fakeDLQ{},
			handlers.Config{AdminTokens: []string{adminToken}, Tasks: l})
	}
	get := func(h http.Handler, token string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/v1/tasks", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	if code, body := get(newHandler(fakeTasks{}), adminToken); code != http.StatusOK || body != `{"tasks":[{"jobs":3,"name":"photos"}]}` {
		t.Errorf("GET /v1/tasks = %d %s", code, body)
	}
	if code, _ := get(newHandler(fakeTasks{}), ""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/tasks without a token = %d, want 401", code)
	}
	if code, _ := get(newHandler(nil), adminToken); code != http.StatusServiceUnavailable {
		t.Errorf("GET /v1/tasks with no lister = %d, want 503", code)
	}

	// With the configuration's status: a top-level "config" beside the
	// tasks, which keep their place.
	reg := prometheus.NewRegistry()
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	h := handlers.New(slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(reg, nil), reg, nil, noPublish{}, &fakeDLQ{},
		handlers.Config{AdminTokens: []string{adminToken}, Tasks: fakeTasks{}, ConfigStatus: fakeConfigStatus{
			LoadedAt: at, LastReload: &handlers.ReloadStatus{At: at.Add(time.Minute), Error: "listen: needs a restart"}}})
	want := `{"tasks":[{"jobs":3,"name":"photos"}],"config":{"loaded_at":"2026-12-05T10:00:00Z",` +
		`"last_reload":{"at":"2026-12-05T10:01:00Z","ok":false,"error":"listen: needs a restart"}}}`
	if code, body := get(h, adminToken); code != http.StatusOK || body != want {
		t.Errorf("GET /v1/tasks = %d %s\nwant %s", code, body, want)
	}
}

type fakeConfigStatus handlers.ConfigStatus

func (s fakeConfigStatus) ConfigStatus() handlers.ConfigStatus { return handlers.ConfigStatus(s) }
