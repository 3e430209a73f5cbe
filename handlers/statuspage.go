package handlers

// The status page (/ui/): what an operator who would have opened DTH's
// task page looks at. Server-rendered with html/template (every key, task
// name and error escaped: object keys come from whoever writes to the
// bucket), its assets embedded, no script at all. It is behind the admin
// tokens: a sign-in form sets a signed, HttpOnly, SameSite=Strict session
// cookie, and every form that changes something (redrive, sign out)
// carries a token derived from the session, checked with the request's
// origin.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

//go:embed ui
var uiFiles embed.FS

var uiTemplates = template.Must(template.ParseFS(uiFiles, "ui/*.html"))

const (
	sessionCookie = "oss2s3_session"
	// SessionTTL is how long a sign-in lasts; removing the token from
	// admin.tokens ends its sessions at once.
	SessionTTL  = 12 * time.Hour
	uiRefresh   = 5 // seconds between the page's refreshes
	uiRuns      = 10
	uiDeadShown = 50
	// maxFormBytes bounds a status page form (a token, a task, a key).
	maxFormBytes = 16 << 10
)

// sessions signs and checks the status page's session cookies and form
// tokens, with a key derived from each admin token: no state is kept, so
// any replica behind a load balancer accepts a session another signed.
type sessions struct {
	keys [][]byte
	now  func() time.Time
}

func newSessions(tokens []string) *sessions {
	s := &sessions{now: time.Now}
	for _, t := range tokens {
		m := hmac.New(sha256.New, []byte(t))
		m.Write([]byte("oss2s3 status page session v1"))
		s.keys = append(s.keys, m.Sum(nil))
	}
	return s
}

func mac(key []byte, parts ...string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts, "|")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue returns a session cookie's value for the key of token i.
func (s *sessions) issue(i int) string {
	exp := strconv.FormatInt(s.now().Add(SessionTTL).Unix(), 10)
	return exp + "." + mac(s.keys[i], "session", exp)
}

// check returns the key a session value was signed with, if it is
// valid and not expired.
func (s *sessions) check(v string) ([]byte, bool) {
	exp, sig, ok := strings.Cut(v, ".")
	if !ok || len(v) > 128 {
		return nil, false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || s.now().Unix() >= n {
		return nil, false
	}
	var found []byte
	for _, k := range s.keys {
		if hmac.Equal([]byte(mac(k, "session", exp)), []byte(sig)) {
			found = k
		}
	}
	return found, found != nil
}

// csrf is the form token of session value v.
func csrf(key []byte, v string) string { return mac(key, "csrf", v) }

// uiAuth lets a request through with a valid session (else to the
// sign-in form); a POST must also carry the session's form token and come
// from this origin.
func (s *sessions) uiAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(sessionCookie)
		if err != nil {
			return c.Redirect(http.StatusSeeOther, "/ui/login")
		}
		key, ok := s.check(ck.Value)
		if !ok {
			clearSession(c)
			return c.Redirect(http.StatusSeeOther, "/ui/login")
		}
		c.Set("csrf", csrf(key, ck.Value))
		if c.Request().Method == http.MethodPost {
			if !sameOrigin(c.Request()) {
				return echo.NewHTTPError(http.StatusForbidden, "cross-origin form refused")
			}
			if !hmac.Equal([]byte(c.FormValue("csrf")), []byte(c.Get("csrf").(string))) {
				return echo.NewHTTPError(http.StatusForbidden, "form token missing or stale: reload the page")
			}
		}
		return next(c)
	}
}

// sameOrigin: a browser sends Origin with every POST; when it does, it
// must be this host. (SameSite=Strict already keeps the cookie off
// cross-site requests; this and the form token do not rely on it.)
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// setSession and clearSession: Secure follows the scheme the browser used
// (https, directly or through a proxy): over plain http, as in the demo, a
// Secure cookie would be dropped and no one could sign in.
func setSession(c echo.Context, v string) {
	c.SetCookie(&http.Cookie{ //nolint:gosec // G124: Secure is set whenever the page is served over https, see above
		Name: sessionCookie, Value: v, Path: "/ui/", MaxAge: int(SessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Scheme() == "https"})
}

func clearSession(c echo.Context) {
	c.SetCookie(&http.Cookie{ //nolint:gosec // G124: as setSession
		Name: sessionCookie, Value: "", Path: "/ui/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Scheme() == "https"})
}

// uiHeaders: no script runs, nothing is framed, nothing is cached, and a
// form is a few fields, never more than maxFormBytes.
func uiHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxFormBytes)
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // not no-referrer: then browsers send "Origin: null" with the page's own forms
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

// addStatusPage adds /ui/: with no admin token configured it answers 403,
// as the admin API does.
func addStatusPage(e *echo.Echo, dlq DeadLetterQueue, cfg Config) {
	ui := e.Group("/ui", uiHeaders)
	static, _ := fs.Sub(uiFiles, "ui")
	ui.GET("/static/style.css", echo.WrapHandler(http.StripPrefix("/ui/static/", http.FileServer(http.FS(static)))))
	if len(cfg.AdminTokens) == 0 {
		ui.Any("/*", func(echo.Context) error {
			return echo.NewHTTPError(http.StatusForbidden, "status page disabled: set admin.tokens in the configuration")
		})
		return
	}
	s := newSessions(cfg.AdminTokens)
	tokens := newTokenSet(cfg.AdminTokens)
	ui.GET("/login", func(c echo.Context) error { return render(c, http.StatusOK, "login", loginView{}) })
	ui.POST("/login", func(c echo.Context) error {
		if !sameOrigin(c.Request()) {
			return echo.NewHTTPError(http.StatusForbidden, "cross-origin form refused")
		}
		if i := tokens.index(c.FormValue("token")); i >= 0 {
			setSession(c, s.issue(i))
			return c.Redirect(http.StatusSeeOther, "/ui/")
		}
		return render(c, http.StatusUnauthorized, "login", loginView{Error: "admin token not accepted"})
	})
	auth := ui.Group("", s.uiAuth)
	auth.GET("/", func(c echo.Context) error {
		v := buildStatus(c.Request().Context(), dlq, cfg)
		v.CSRF = c.Get("csrf").(string)
		v.Flash = flash(c.QueryParam("redriven"))
		return render(c, http.StatusOK, "status", v)
	})
	auth.POST("/logout", func(c echo.Context) error {
		clearSession(c)
		return c.Redirect(http.StatusSeeOther, "/ui/login")
	})
	auth.POST("/redrive", func(c echo.Context) error {
		f := DeadLetterFilter{Task: c.FormValue("task"), Key: c.FormValue("key")}
		if f.Task == "" {
			return echo.NewHTTPError(http.StatusBadRequest, "task: required")
		}
		n, err := dlq.Redrive(c.Request().Context(), f)
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, fmt.Sprintf("redrive: %d moved, then: %v", n, err))
		}
		return c.Redirect(http.StatusSeeOther, "/ui/?redriven="+strconv.Itoa(n))
	})
	e.GET("/ui", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/ui/") })
}

func flash(redriven string) string {
	n, err := strconv.Atoi(redriven)
	if err != nil || n < 0 {
		return ""
	}
	return fmt.Sprintf("%d dead letter(s) put back on the queue.", n)
}

func render(c echo.Context, code int, name string, v any) error {
	var buf bytes.Buffer
	if err := uiTemplates.ExecuteTemplate(&buf, name, v); err != nil {
		return err
	}
	return c.HTMLBlob(code, buf.Bytes())
}

type loginView struct{ Error string }

// statusView is what the status page shows.
type statusView struct {
	Now, CSRF, Flash                        string
	Refresh                                 int
	Config                                  *configView
	Grafana                                 *grafanaLinks
	Tasks                                   []taskView
	Runs                                    []runView
	DeadLetters                             []deadLetterView
	MoreDeadLetters                         bool
	TasksError, RunsError, DeadLettersError string
}

type configView struct {
	LoadedAt   string
	LastReload *reloadView
}

type reloadView struct {
	At, Error string
	OK        bool
}

type grafanaLinks struct{ Overview, Task, Reconcile string }

type taskView struct {
	Name, Source, Destination, OldestJob, Schedule, NextReconcile, LastReconcile string
	Jobs, DeadLetters                                                            uint64
}

type runView struct {
	ID, Task, Mode, Trigger, Started, Phase, Percent, ETA, Listed, Copies, Error string
	PercentValue                                                                 string
	Done                                                                         bool
}

type deadLetterView struct {
	Task, Key, Error, Attempts, Time string
}

// buildStatus reads what the page shows; a part that cannot be read says
// why in its place.
func buildStatus(ctx context.Context, dlq DeadLetterQueue, cfg Config) statusView {
	v := statusView{Now: time.Now().UTC().Format(time.DateTime) + " UTC", Refresh: uiRefresh}
	if cfg.GrafanaURL != "" {
		base := strings.TrimRight(cfg.GrafanaURL, "/")
		v.Grafana = &grafanaLinks{Overview: base + "/d/oss2s3-overview", Task: base + "/d/oss2s3-task", Reconcile: base + "/d/oss2s3-reconcile"}
	}
	if cfg.ConfigStatus != nil {
		cs := cfg.ConfigStatus.ConfigStatus()
		v.Config = &configView{LoadedAt: cs.LoadedAt.UTC().Format(time.DateTime) + " UTC"}
		if r := cs.LastReload; r != nil {
			v.Config.LastReload = &reloadView{At: r.At.UTC().Format(time.DateTime) + " UTC", OK: r.OK, Error: r.Error}
		}
	}
	if cfg.Tasks != nil {
		tasks, err := cfg.Tasks.Tasks(ctx)
		if err != nil {
			v.TasksError = err.Error()
		}
		for _, t := range tasks {
			v.Tasks = append(v.Tasks, taskOf(t))
		}
	}
	if cfg.Reconciler != nil {
		runs, err := cfg.Reconciler.List(ctx, "", uiRuns)
		if err != nil {
			v.RunsError = err.Error()
		}
		for _, r := range runs {
			v.Runs = append(v.Runs, runOf(r.State))
		}
	}
	dls, err := dlq.DeadLetters(ctx, DeadLetterFilter{}, uiDeadShown+1)
	if err != nil {
		v.DeadLettersError = err.Error()
	}
	if len(dls) > uiDeadShown {
		dls, v.MoreDeadLetters = dls[:uiDeadShown], true
	}
	for _, d := range dls {
		v.DeadLetters = append(v.DeadLetters, deadLetterOf(d))
	}
	return v
}

// recode reads the JSON encoding of v (what the API answers) into out.
func recode(v, out any) {
	raw, err := json.Marshal(v)
	if err == nil {
		_ = json.Unmarshal(raw, out)
	}
}

// runJSON is the part of a run's status (GET /v1/reconciles/{id}) the page
// shows.
type runJSON struct {
	ID, Task, Mode, Trigger, Error string
	Started                        time.Time
	Done                           bool
	Listed                         int64
	Progress                       *struct {
		Phase      string
		Percent    *float64
		ETASeconds *float64 `json:"eta_seconds"`
		Listing    struct {
			ObjectsTotal int64 `json:"objects_total"`
		}
		Copies struct {
			Objects      int64
			ObjectsTotal int64 `json:"objects_total"`
			Bytes        int64
			BytesTotal   int64 `json:"bytes_total"`
		}
	}
}

func runOf(state any) runView {
	var r runJSON
	recode(state, &r)
	v := runView{ID: r.ID, Task: r.Task, Mode: r.Mode, Trigger: r.Trigger, Error: r.Error, Done: r.Done,
		Started: r.Started.UTC().Format(time.DateTime), Listed: strconv.FormatInt(r.Listed, 10), Percent: "–", ETA: "–", Copies: "–"}
	p := r.Progress
	if p == nil {
		return v
	}
	v.Phase = p.Phase
	if p.Percent != nil {
		v.Percent = fmt.Sprintf("%.1f%%", *p.Percent)
		v.PercentValue = fmt.Sprintf("%.1f", *p.Percent)
	}
	if p.ETASeconds != nil {
		v.ETA = (time.Duration(*p.ETASeconds) * time.Second).String()
	}
	if p.Listing.ObjectsTotal > 0 {
		v.Listed += " / " + strconv.FormatInt(p.Listing.ObjectsTotal, 10)
	}
	if c := p.Copies; c.ObjectsTotal > 0 {
		v.Copies = fmt.Sprintf("%d / %d (%s of %s)", c.Objects, c.ObjectsTotal, HumanBytes(c.Bytes), HumanBytes(c.BytesTotal))
	}
	return v
}

func taskOf(t any) taskView {
	var r struct {
		Name, Source, Destination, Schedule string
		Jobs                                uint64
		DeadLetters                         uint64     `json:"dead_letters"`
		OldestJobAge                        *float64   `json:"oldest_job_age_seconds"`
		NextReconcile                       *time.Time `json:"next_reconcile"`
		LastReconcile                       *runJSON   `json:"last_reconcile"`
	}
	recode(t, &r)
	v := taskView{Name: r.Name, Source: r.Source, Destination: r.Destination, Jobs: r.Jobs, DeadLetters: r.DeadLetters,
		Schedule: r.Schedule, OldestJob: "–", NextReconcile: "–", LastReconcile: "–"}
	if v.Schedule == "" {
		v.Schedule = "none"
	}
	if r.OldestJobAge != nil {
		v.OldestJob = (time.Duration(*r.OldestJobAge) * time.Second).String()
	}
	if r.NextReconcile != nil {
		v.NextReconcile = r.NextReconcile.UTC().Format(time.DateTime)
	}
	if l := r.LastReconcile; l != nil {
		v.LastReconcile = l.Started.UTC().Format(time.DateTime)
		switch {
		case l.Error != "":
			v.LastReconcile += " (failed)"
		case !l.Done:
			v.LastReconcile += " (running)"
		}
	}
	return v
}

func deadLetterOf(d any) deadLetterView {
	var r struct {
		Job      struct{ Task, Key string }
		Error    string
		Attempts string
		Time     time.Time
	}
	recode(d, &r)
	return deadLetterView{Task: r.Job.Task, Key: r.Job.Key, Error: r.Error, Attempts: r.Attempts, Time: r.Time.UTC().Format(time.DateTime)}
}

// HumanBytes is n bytes in binary units, e.g. 1.5 GiB (the status page's
// and the CLI's progress).
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
