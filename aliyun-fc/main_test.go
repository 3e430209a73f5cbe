package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

const testSecret = "fc-test-secret"

// oneRecord is an OSS trigger document as FC delivers it, with the spacing
// and member order of the wire format: the gateway must get these bytes, not
// a re-encoding.
const oneRecord = `{"events":[{"eventName":"ObjectCreated:PutObject","eventSource":"acs:oss",
  "eventTime":"2026-11-24T08:00:00.000Z","eventVersion":"1.0",
  "oss":{"bucket":{"arn":"acs:oss:cn-hangzhou:1234:src","name":"src","ownerIdentity":"1234","virtualBucket":""},
         "object":{"deltaSize":1024,"eTag":"9E107D9D372BB6826BD81D3542A419D6","key":"a/b.txt",
                   "objectMeta":{"mimeType":"text/plain","userMeta":{}},"size":1024},
         "ossSchemaVersion":"1.0","ruleId":"9adac8e253828f4f7c0466d941fa3db81161e853"},
  "region":"cn-hangzhou","requestParameters":{"sourceIPAddress":"1.2.3.4"},
  "responseElements":{"requestId":"58F9FF2D3DF792092E12044C"},"userIdentity":{"principalId":"1234"}}]}`

func TestInvoke(t *testing.T) {
	t.Parallel()

	t.Run("ForwardsTheExactBytesSigned", func(t *testing.T) {
		t.Parallel()
		gw := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"accepted":1}`)
		})
		fn := startFunction(t, gw.URL, nil)

		status, res := fn.invoke(t, "req-accepted", oneRecord)
		if status != http.StatusOK {
			t.Fatalf("status = %d (%+v), want 200", status, res)
		}
		if res.GatewayStatus != http.StatusAccepted || string(res.GatewayResponse) != `{"accepted":1}` || res.Attempts != 1 || res.Records != 1 {
			t.Errorf("response = %+v, want gateway 202 {\"accepted\":1} after 1 attempt", res)
		}
		calls := gw.wantCalls(t, 1)
		if string(calls[0].body) != oneRecord {
			t.Errorf("gateway got %q, want the invocation body unchanged", calls[0].body)
		}
		if want := "FC Invoke Start RequestId: req-accepted\nFC Invoke End RequestId: req-accepted\n"; fn.stdout.String() != want {
			t.Errorf("stdout = %q, want the invocation framed as FC's console expects: %q", fn.stdout.String(), want)
		}
		if calls[0].requestID != "req-accepted" {
			t.Errorf("X-Fc-Request-Id = %q, want req-accepted", calls[0].requestID)
		}
	})

	t.Run("ForwardsAMultiRecordDocumentWhole", func(t *testing.T) {
		t.Parallel()
		gw := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
		fn := startFunction(t, gw.URL, nil)
		now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
		body, err := json.Marshal(ossevent.Document{Events: []ossevent.Record{
			ossevent.NewRecord("ObjectCreated:PutObject", "cn-hangzhou", "src", "a/1.txt", "AA", 1, "text/plain", now),
			ossevent.NewRecord("ObjectRemoved:DeleteObject", "cn-hangzhou", "src", "a/2 é.txt", "", 0, "", now),
			ossevent.NewRecord("ObjectCreated:CompleteMultipartUpload", "cn-hangzhou", "src", "big.bin", "BB-3", 3<<30, "", now),
		}})
		if err != nil {
			t.Fatal(err)
		}

		status, res := fn.invoke(t, "req-multi", string(body))
		if status != http.StatusOK || res.Records != 3 {
			t.Fatalf("status = %d, response = %+v; want 200 for 3 records", status, res)
		}
		if calls := gw.wantCalls(t, 1); !bytes.Equal(calls[0].body, body) {
			t.Errorf("gateway got %q, want all three records unchanged", calls[0].body)
		}
	})

	t.Run("RetriesTransientFailures", func(t *testing.T) {
		t.Parallel()
		gw := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n <= 2 {
				http.Error(w, "warming up", http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		})
		fn := startFunction(t, gw.URL, nil)

		status, res := fn.invoke(t, "req-retry", oneRecord)
		if status != http.StatusOK || res.Attempts != 3 || res.GatewayStatus != http.StatusAccepted {
			t.Fatalf("status = %d, response = %+v; want 200 after 3 attempts", status, res)
		}
		for _, c := range gw.wantCalls(t, 3) {
			if string(c.body) != oneRecord {
				t.Errorf("a retry sent %q, want the same bytes", c.body)
			}
		}
		if !strings.Contains(fn.logs.String(), "retrying") {
			t.Errorf("no retry logged:\n%s", fn.logs)
		}
	})

	t.Run("HonoursRetryAfter", func(t *testing.T) {
		t.Parallel()
		gw := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		})
		fn := startFunction(t, gw.URL, map[string]string{"OSS2S3_TIMEOUT": "5s"})

		start := time.Now()
		status, res := fn.invoke(t, "req-429", oneRecord)
		if status != http.StatusOK || res.Attempts != 2 {
			t.Fatalf("status = %d, response = %+v; want 200 after 2 attempts", status, res)
		}
		if took := time.Since(start); took < time.Second {
			t.Errorf("retried after %v, want at least the 1s Retry-After", took)
		}
		gw.wantCalls(t, 2)
	})

	t.Run("GivesUpWhenRetryAfterExceedsTheBudget", func(t *testing.T) {
		t.Parallel()
		gw := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		fn := startFunction(t, gw.URL, map[string]string{"OSS2S3_TIMEOUT": "2s"})

		start := time.Now()
		status, res := fn.invoke(t, "req-429-long", oneRecord)
		if status != http.StatusBadGateway || res.GatewayStatus != http.StatusTooManyRequests {
			t.Fatalf("status = %d, response = %+v; want 502 with gateway 429", status, res)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("answered after %v, want at once: waiting cannot help", took)
		}
		gw.wantCalls(t, 1)
	})

	t.Run("DoesNotRetryARejection", func(t *testing.T) {
		t.Parallel()
		gw := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
		})
		fn := startFunction(t, gw.URL, nil)

		status, res := fn.invoke(t, "req-401", oneRecord)
		if status != http.StatusBadGateway || res.GatewayStatus != http.StatusUnauthorized || res.Attempts != 1 {
			t.Fatalf("status = %d, response = %+v; want 502 after one 401", status, res)
		}
		if !strings.Contains(res.Error, "bad signature") {
			t.Errorf("error = %q, want the gateway's reason", res.Error)
		}
		gw.wantCalls(t, 1)
	})

	t.Run("FailsWhenTheGatewayIsDown", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := "http://" + ln.Addr().String()
		ln.Close()
		fn := startFunction(t, down, map[string]string{"OSS2S3_TIMEOUT": "1s"})

		start := time.Now()
		status, res := fn.invoke(t, "req-down", oneRecord)
		if status != http.StatusBadGateway || res.GatewayStatus != 0 || res.Attempts < 2 {
			t.Fatalf("status = %d, response = %+v; want 502 after several attempts", status, res)
		}
		if took := time.Since(start); took > 1500*time.Millisecond {
			t.Errorf("answered after %v, want within the 1s budget", took)
		}
		if !strings.Contains(fn.logs.String(), `"request_id":"req-down"`) {
			t.Errorf("failure not logged with the request id:\n%s", fn.logs)
		}
	})

	t.Run("AnswersGatewayTimeoutWithinTheBudget", func(t *testing.T) {
		t.Parallel()
		gw := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		})
		fn := startFunction(t, gw.URL, map[string]string{"OSS2S3_TIMEOUT": "500ms"})

		start := time.Now()
		status, res := fn.invoke(t, "req-slow", oneRecord)
		took := time.Since(start)
		if status != http.StatusGatewayTimeout {
			t.Fatalf("status = %d, response = %+v; want 504", status, res)
		}
		if took < 500*time.Millisecond || took > 1500*time.Millisecond {
			t.Errorf("answered after %v, want about the 500ms budget", took)
		}
		if !strings.Contains(res.Error, "budget") {
			t.Errorf("error = %q, want it to name the budget", res.Error)
		}
	})

	t.Run("RejectsMalformedDocumentsWithoutForwarding", func(t *testing.T) {
		t.Parallel()
		gw := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
		fn := startFunction(t, gw.URL, nil)
		for name, body := range map[string]string{
			"Empty":      "",
			"NotJSON":    "<Notification/>",
			"NoEvents":   `{"events":[]}`,
			"MissingKey": strings.Replace(oneRecord, `"key":"a/b.txt",`, "", 1),
			"Trailing":   oneRecord + `{}`,
		} {
			reqID := "req-bad-" + name
			status, res := fn.invoke(t, reqID, body)
			if status != http.StatusBadRequest || !strings.Contains(res.Error, "malformed") {
				t.Errorf("%s: status = %d, response = %+v; want 400 malformed", name, status, res)
			}
			if !strings.Contains(fn.logs.String(), `"request_id":"`+reqID+`"`) {
				t.Errorf("%s: rejection not logged with the request id:\n%s", name, fn.logs)
			}
		}
		status, _ := fn.invoke(t, "req-huge", `{"events":[`+strings.Repeat(" ", maxEventBytes)+`]}`)
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized document: status = %d, want 413", status)
		}
		gw.wantCalls(t, 0)
	})
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	fn := startFunction(t, "http://127.0.0.1:1", nil)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/initialize", http.StatusOK},
		{http.MethodGet, "/", http.StatusOK},
		{http.MethodGet, "/invoke", http.StatusMethodNotAllowed},
		{http.MethodPost, "/other", http.StatusNotFound},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, fn.url+tc.path, nil)
		req.Header.Set("x-fc-request-id", "req-lifecycle")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

func TestConfiguration(t *testing.T) {
	t.Parallel()
	full := map[string]string{"OSS2S3_GATEWAY_URL": "https://gw.example.com", "OSS2S3_WEBHOOK_SECRET": "s"}
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr []string
	}{
		{"RequiresEverything", nil, nil, []string{"OSS2S3_GATEWAY_URL is not set", "OSS2S3_WEBHOOK_SECRET is not set"}},
		{"RejectsAURLWithoutScheme", with(full, "OSS2S3_GATEWAY_URL", "gw.example.com"), nil, []string{"not an http(s) URL"}},
		{"RejectsABadTimeout", with(full, "OSS2S3_TIMEOUT", "10"), nil, []string{"OSS2S3_TIMEOUT"}},
		{"RejectsANegativeTimeout", with(full, "OSS2S3_TIMEOUT", "-1s"), nil, []string{"OSS2S3_TIMEOUT"}},
		{"RejectsStrayArguments", full, []string{"extra"}, []string{"unexpected arguments"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := run(t.Context(), append([]string{"aliyun-fc", "-addr", "127.0.0.1:0"}, tc.args...),
				mapEnv(tc.env), io.Discard, io.Discard)
			if err == nil {
				t.Fatal("run started, want a configuration error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	t.Run("DefaultsToFCPortAndTenSeconds", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadConfig([]string{"aliyun-fc"}, mapEnv(with(full, "FC_CUSTOM_LISTEN_PORT", "9123")), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.addr != "0.0.0.0:9123" || cfg.timeout != 10*time.Second || cfg.eventsURL != "https://gw.example.com/v1/events/oss" {
			t.Errorf("config = %+v", cfg)
		}
		cfg, err = loadConfig([]string{"aliyun-fc"}, mapEnv(with(full, "OSS2S3_GATEWAY_URL", "https://gw.example.com/base/")), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.addr != "0.0.0.0:9000" || cfg.eventsURL != "https://gw.example.com/base/v1/events/oss" {
			t.Errorf("config = %+v", cfg)
		}
	})
}

func TestForwarderSignsEachAttemptAtSendTime(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	f := newForwarder(gw.URL+"/v1/events/oss", testSecret, 5*time.Second)
	start := time.Now()
	var mu sync.Mutex
	ticks := 0
	f.now = func() time.Time { // 10 s pass between attempts
		mu.Lock()
		defer mu.Unlock()
		ticks++
		return start.Add(time.Duration(ticks) * 10 * time.Second)
	}

	out := f.forward(t.Context(), []byte(oneRecord), "req-sign", slog.New(slog.DiscardHandler))
	if out.status != http.StatusOK || out.attempts != 2 {
		t.Fatalf("outcome = %+v, want 200 after 2 attempts", out)
	}
	calls := gw.wantCalls(t, 2)
	ts := func(h string) string { v, _, _ := strings.Cut(h, ","); return v }
	if ts(calls[0].signature) == ts(calls[1].signature) {
		t.Errorf("both attempts signed with %s, want a fresh timestamp on the retry", ts(calls[0].signature))
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              -1,
		"3":                             3 * time.Second,
		"0":                             0,
		"soon":                          -1,
		"Tue, 24 Nov 2026 08:00:05 GMT": 5 * time.Second,
		"Tue, 24 Nov 2026 07:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// function is one running instance of the function under test.
type function struct {
	url    string
	logs   *testkit.SyncBuffer
	stdout *testkit.SyncBuffer
}

// startFunction runs the function as FC would (run with the environment FC
// and the deployment set) on a free port and waits until it answers.
func startFunction(t *testing.T, gatewayURL string, env map[string]string) *function {
	t.Helper()
	full := map[string]string{
		"OSS2S3_GATEWAY_URL":    gatewayURL,
		"OSS2S3_WEBHOOK_SECRET": testSecret,
		"FC_CUSTOM_LISTEN_PORT": "9000",
	}
	for k, v := range env {
		full[k] = v
	}
	logs, stdout := &testkit.SyncBuffer{}, &testkit.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"aliyun-fc", "-addr", "127.0.0.1:0"}, mapEnv(full), stdout, logs)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	var fn *function
	if !testkit.Eventually(5*time.Second, 10*time.Millisecond, func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("run returned before serving: %v\n%s", err, logs)
		default:
		}
		addr := listenAddr(logs.String())
		if addr == "" {
			return false
		}
		url := "http://" + addr
		resp, err := http.Get(url + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		fn = &function{url: url, logs: logs, stdout: stdout}
		return true
	}) {
		t.Fatalf("function not ready within 5s; logs:\n%s", logs)
	}
	return fn
}

// invoke posts body to /invoke the way FC delivers an async OSS trigger event.
func (f *function) invoke(t *testing.T, requestID, body string) (int, response) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/invoke", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("x-fc-request-id", requestID)
	req.Header.Set("x-fc-function-name", "oss2s3-forwarder")
	req.Header.Set("x-fc-function-handler", "index.handler")
	req.Header.Set("x-fc-invocation-type", "Async")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	var res response
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("invoke: decode answer (status %d): %v", resp.StatusCode, err)
	}
	// FC reads success or failure from x-fc-status, not the status code.
	want := "404"
	if resp.StatusCode == http.StatusOK {
		want = "200"
	}
	if got := resp.Header.Get("x-fc-status"); got != want {
		t.Errorf("invoke: status %d with x-fc-status %q, want %q", resp.StatusCode, got, want)
	}
	return resp.StatusCode, res
}

// gateway is a fake oss2s3 gateway that checks each request as the real one
// does and records it.
type gateway struct {
	*httptest.Server
	mu    sync.Mutex
	calls []call
}

type call struct {
	body      []byte
	requestID string
	signature string
}

// newGateway starts a gateway whose answer to the n-th request (from 1) is
// respond's. Requests that the real gateway would refuse fail the test.
func newGateway(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *gateway {
	t.Helper()
	gw := &gateway{}
	gw.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("gateway: read body: %v", err)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/events/oss" {
			t.Errorf("gateway: got %s %s, want POST /v1/events/oss", r.Method, r.URL.Path)
		}
		if err := signature.Verify(r.Header.Get(signature.Header), body, []string{testSecret}, time.Now(), signature.DefaultTolerance); err != nil {
			t.Errorf("gateway: signature: %v", err)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("gateway: Content-Type = %q, want application/json", ct)
		}
		gw.mu.Lock()
		gw.calls = append(gw.calls, call{body: body, requestID: r.Header.Get("X-Fc-Request-Id"), signature: r.Header.Get(signature.Header)})
		n := len(gw.calls)
		gw.mu.Unlock()
		respond(n, w, r)
	}))
	t.Cleanup(gw.Close)
	return gw
}

// wantCalls checks that the gateway was called n times and returns the calls.
func (gw *gateway) wantCalls(t *testing.T, n int) []call {
	t.Helper()
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if len(gw.calls) != n {
		t.Fatalf("gateway called %d times, want %d", len(gw.calls), n)
	}
	return append([]call(nil), gw.calls...)
}

// listenAddr is the address from the "listening" record of the logs, ""
// before it.
func listenAddr(logs string) string {
	for line := range strings.Lines(logs) {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
			return rec.Addr
		}
	}
	return ""
}

func mapEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func with(env map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(env)+1)
	for ek, ev := range env {
		out[ek] = ev
	}
	out[k] = v
	return out
}
