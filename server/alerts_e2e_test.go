package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.yaml.in/yaml/v3"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/testkit"
)

// TestADeadLetterReachesTheTeamByMail runs the alert path with the real
// binaries (Debian's prometheus and prometheus-alertmanager): Prometheus
// scrapes a running oss2s3 and evaluates the shipped rules, a job is
// dead-lettered, OSS2S3DeadLetters fires, and the shipped Alertmanager
// configuration (only its addresses and timings changed) mails it, with
// the task, the key and what to do, to an SMTP server that checks the
// login, and posts it to the chat webhook.
func TestADeadLetterReachesTheTeamByMail(t *testing.T) {
	t.Parallel()
	promBin := tool(t, "prometheus", "prometheus")
	amBin := tool(t, "prometheus", "prometheus-alertmanager", "alertmanager")

	b := newFakeBed(t, 2)
	b.start(t)
	const key = "alerts/refused <1>.bin"
	for _, op := range []string{"HeadObject", "GetObjectMeta", "GetObject"} {
		b.emu.InjectFault(ossemu.Fault{API: "OSS", Op: op, Bucket: e2eSrc, Key: key, Status: http.StatusForbidden, Code: "AccessDenied"})
	}
	if _, err := b.emu.PutObject(e2eSrc, key, []byte("never copied"), nil); err != nil {
		t.Fatal(err)
	}

	mail := startSMTPSink(t, "alerts@example.com", "smtp-password-for-the-test")
	var hookMu sync.Mutex
	var hooks []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		hooks = append(hooks, string(body))
		hookMu.Unlock()
	}))
	t.Cleanup(hook.Close)

	dir := t.TempDir()
	amAddr := freeAddr(t)
	amCfg := alertmanagerConfig(t, dir, mail.addr, hook.URL)
	runTool(t, dir, "alertmanager", amBin, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "am-data"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	promCfg := prometheusConfig(t, dir, b.addr, amAddr)
	runTool(t, dir, "prometheus", promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "prom-data"),
		"--web.listen-address="+freeAddr(t))

	var got string
	if !testkit.Eventually(2*time.Minute, 200*time.Millisecond, func() bool {
		got = mail.firstWith("OSS2S3DeadLetters")
		return got != ""
	}) {
		t.Fatalf("no mail about the dead letter in 2 minutes; mails: %q\nlogs in %s", mail.all(), dir)
	}
	t.Logf("the mail, as the SMTP server received it:\n%s", got)
	for _, want := range []string{
		"Subject: [FIRING:1] OSS2S3DeadLetters task e2e",
		"1 job(s) of task e2e failed for good",
		"alerts/refused &lt;1&gt;.bin", // the HTML part escapes the key
		"alerts/refused <1>.bin",       // the text part has it as is
		"What to do: GET /v1/dlq?task=e2e",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the mail lacks %q:\n%s", want, got)
		}
	}
	if !testkit.Eventually(30*time.Second, 100*time.Millisecond, func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		for _, h := range hooks {
			var msg struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
				} `json:"alerts"`
			}
			if json.Unmarshal([]byte(h), &msg) == nil && len(msg.Alerts) > 0 &&
				msg.Alerts[0].Labels["alertname"] == "OSS2S3DeadLetters" && msg.Alerts[0].Labels["task"] == "e2e" {
				return true
			}
		}
		return false
	}) {
		t.Errorf("the chat webhook got no OSS2S3DeadLetters alert: %q", hooks)
	}
}

// tool finds one of names in PATH; without it the test skips, except
// under CI, where .ci/run installs the Debian package pkg.
func tool(t *testing.T, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (apt-get install %s); CI must run this test", names[0], pkg)
	}
	t.Skipf("%s not installed (apt-get install %s)", names[0], pkg)
	return ""
}

// alertmanagerConfig writes the shipped configuration with the test's SMTP
// server, webhook and short timings, and returns its path.
func alertmanagerConfig(t *testing.T, dir, smtpAddr, hookURL string) string {
	t.Helper()
	var cfg map[string]any
	readYAML(t, "../deploy/alertmanager/alertmanager.yml", &cfg)
	pw := filepath.Join(dir, "smtp-password")
	if err := os.WriteFile(pw, []byte("smtp-password-for-the-test"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := cfg["global"].(map[string]any)
	g["smtp_smarthost"], g["smtp_require_tls"], g["smtp_auth_password_file"] = smtpAddr, false, pw
	g["smtp_auth_username"] = "alerts@example.com"
	tmpl, err := filepath.Abs("../deploy/alertmanager/templates/*.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	cfg["templates"] = []any{tmpl}
	route := cfg["route"].(map[string]any)
	route["group_wait"], route["group_interval"] = "1s", "1s"
	recv := cfg["receivers"].([]any)[0].(map[string]any)
	recv["webhook_configs"].([]any)[0].(map[string]any)["url"] = hookURL
	return writeYAML(t, filepath.Join(dir, "alertmanager.yml"), cfg)
}

// prometheusConfig writes a Prometheus configuration that scrapes oss2s3
// and evaluates the shipped rules every second, their for: durations
// shortened to a second, and sends alerts to Alertmanager.
func prometheusConfig(t *testing.T, dir, target, amAddr string) string {
	t.Helper()
	rules, err := os.ReadFile("../deploy/prometheus/rules/oss2s3.yml")
	if err != nil {
		t.Fatal(err)
	}
	rules = regexp.MustCompile(`(?m)^(\s+)for: \S+$`).ReplaceAll(rules, []byte("${1}for: 1s"))
	rulesPath := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rulesPath, rules, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"},
		"rule_files": []any{rulesPath},
		"alerting": map[string]any{"alertmanagers": []any{map[string]any{
			"static_configs": []any{map[string]any{"targets": []any{amAddr}}}}}},
		"scrape_configs": []any{map[string]any{"job_name": "oss2s3", "metrics_path": "/metrics",
			"static_configs": []any{map[string]any{"targets": []any{target}}}}},
	}
	return writeYAML(t, filepath.Join(dir, "prometheus.yml"), cfg)
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeYAML(t *testing.T, path string, v any) string {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runTool runs bin with args until the test ends, its output in
// dir/name.log (printed if the test fails).
func runTool(t *testing.T, dir, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		f.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, out)
		}
	})
}

// smtpSink is an SMTP server that keeps every message, after checking the
// sender's PLAIN login.
type smtpSink struct {
	addr string
	mu   sync.Mutex
	msgs []string
}

func startSMTPSink(t *testing.T, user, password string) *smtpSink {
	t.Helper()
	s := &smtpSink{}
	srv := smtp.NewServer(smtpBackend{s: s, user: user, password: password})
	srv.Domain, srv.AllowInsecureAuth = "localhost", true
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *smtpSink) firstWith(sub string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if strings.Contains(m, sub) {
			return m
		}
	}
	return ""
}

func (s *smtpSink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

type smtpBackend struct {
	s              *smtpSink
	user, password string
}

func (b smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &smtpSession{b: b}, nil
}

type smtpSession struct {
	b      smtpBackend
	authed bool
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != s.b.user || password != s.b.password {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *smtpSession) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.s.mu.Lock()
	s.b.s.msgs = append(s.b.s.msgs, decodeQP(string(data)))
	s.b.s.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// decodeQP undoes the quoted-printable soft line breaks and escapes
// Alertmanager's MIME parts use, so that the test reads the text.
func decodeQP(s string) string {
	s = strings.ReplaceAll(s, "=\r\n", "")
	return regexp.MustCompile(`=([0-9A-F]{2})`).ReplaceAllStringFunc(s, func(m string) string {
		var c byte
		_, _ = fmt.Sscanf(m[1:], "%02X", &c)
		return string([]byte{c})
	})
}
