package handlers_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

const hostileKey = `<script>alert(1)</script>"'&`

func statusPage(t *testing.T, tokens []string) (http.Handler, *fakeDLQ) {
	t.Helper()
	dlq := &fakeDLQ{letters: []transfer.DeadLetter{
		{Seq: 1, Job: transfer.Job{Task: "photos", ObjectArgs: transfer.ObjectArgs{Key: hostileKey}}, Error: "AccessDenied: <b>no</b>", Attempts: "5"},
	}}
	reg := prometheus.NewRegistry()
	h := handlers.New(slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(reg, nil), reg, nil, noPublish{}, dlq,
		handlers.Config{AdminTokens: tokens, Reconciler: &fakeReconciler{}, GrafanaURL: "https://grafana.example.com/", ConfigStatus: refusedReload{}})
	return h, dlq
}

// refusedReload: the last reload was refused, with a hostile reason.
type refusedReload struct{}

func (refusedReload) ConfigStatus() handlers.ConfigStatus {
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	return handlers.ConfigStatus{LoadedAt: at, LastReload: &handlers.ReloadStatus{At: at.Add(time.Hour), Error: "tasks[0].name: <i>bad</i>"}}
}

// form posts values to path as a browser does, with the cookies given.
func form(h http.Handler, path string, v url.Values, origin string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func get(h http.Handler, path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestStatusPage: signed in with an admin token, the page shows the runs
// and the dead letters with every hostile string escaped; redrive needs
// the session's form token and this origin; nothing without a session.
func TestStatusPage(t *testing.T) {
	h, dlq := statusPage(t, []string{"first-admin-token-0123", adminToken})

	if rec := get(h, "/ui/"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ui/login" {
		t.Fatalf("GET /ui/ without a session: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	forged := &http.Cookie{Name: "oss2s3_session", Value: "9999999999.forged", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}
	if rec := get(h, "/ui/", forged); rec.Code != http.StatusSeeOther {
		t.Fatalf("GET /ui/ with a forged session: %d", rec.Code)
	}
	if rec := form(h, "/ui/login", url.Values{"token": {"wrong-token-wrong-token"}}, ""); rec.Code != http.StatusUnauthorized ||
		!strings.Contains(rec.Body.String(), "admin token not accepted") || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("sign in with a wrong token: %d, cookies %v", rec.Code, rec.Result().Cookies())
	}
	if rec := form(h, "/ui/login", url.Values{"token": {adminToken}}, "https://evil.example"); rec.Code != http.StatusForbidden {
		t.Fatalf("cross-origin sign-in: %d", rec.Code)
	}
	rec := form(h, "/ui/login", url.Values{"token": {adminToken}}, "http://example.com")
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(cookies) != 1 {
		t.Fatalf("sign in: %d, cookies %v", rec.Code, cookies)
	}
	if c := cookies[0]; !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || strings.Contains(c.Value, adminToken) {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, path /ui/, no token in it", c)
	}
	session := cookies[0]

	rec = get(h, "/ui/", session)
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /ui/: %d %s", rec.Code, body)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Fatalf("CSP %q: want no script allowed", csp)
	}
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;", // the key, as text
		"AccessDenied: &lt;b&gt;no&lt;/b&gt;",
		`data-run="run-3"`, `data-run="run-1"`,
		`href="https://grafana.example.com/d/oss2s3-overview"`,
		"last reload 2026-12-05 11:00:00 UTC: <span class=\"bad\">refused</span> <span class=\"err\">tasks[0].name: &lt;i&gt;bad&lt;/i&gt;</span>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>no") {
		t.Fatal("a hostile string reached the page unescaped")
	}
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no form token on the page")
	}
	token := m[1]

	redrive := url.Values{"task": {"photos"}, "key": {hostileKey}}
	if rec := form(h, "/ui/redrive", redrive, "http://example.com", session); rec.Code != http.StatusForbidden {
		t.Fatalf("redrive without the form token: %d", rec.Code)
	}
	redrive.Set("csrf", token)
	if rec := form(h, "/ui/redrive", redrive, "https://evil.example", session); rec.Code != http.StatusForbidden {
		t.Fatalf("cross-origin redrive: %d", rec.Code)
	}
	if rec := form(h, "/ui/redrive", redrive, "http://example.com"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ui/login" {
		t.Fatalf("redrive without a session: %d", rec.Code)
	}
	if len(dlq.redriven) != 0 {
		t.Fatalf("refused redrives moved letters: %v", dlq.redriven)
	}
	rec = form(h, "/ui/redrive", redrive, "http://example.com", session)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ui/?redriven=2" {
		t.Fatalf("redrive: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if len(dlq.redriven) != 1 || dlq.redriven[0] != (handlers.DeadLetterFilter{Task: "photos", Key: hostileKey}) {
		t.Fatalf("redriven %v", dlq.redriven)
	}
	if body := get(h, "/ui/?redriven=2", session).Body.String(); !strings.Contains(body, "2 dead letter(s) put back") {
		t.Fatal("no word of the redrive on the page")
	}

	// A session signed with a token no longer configured is refused.
	other, _ := statusPage(t, []string{"first-admin-token-0123"})
	if rec := get(other, "/ui/", session); rec.Code != http.StatusSeeOther {
		t.Fatalf("a session of a removed token: %d", rec.Code)
	}
}

// TestStatusPageOffWithoutTokens: no admin token, no status page.
func TestStatusPageOffWithoutTokens(t *testing.T) {
	h, _ := statusPage(t, nil)
	for _, p := range []string{"/ui/", "/ui/login"} {
		if rec := get(h, p); rec.Code != http.StatusForbidden {
			t.Fatalf("GET %s with no admin token: %d", p, rec.Code)
		}
	}
	if rec := get(h, "/ui/static/style.css"); rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Type"), "text/css") {
		t.Fatalf("the style sheet: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
}
