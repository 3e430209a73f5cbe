package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/internal/sqsemu"
	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// These tests run the Function Compute function (aliyun-fc) as FC does: its
// binary, built as build.sh builds it, started as a process of its own with
// FC_CUSTOM_LISTEN_PORT, invoked with POST /invoke and FC's headers, with
// the document the OSS emulator's trigger produced. They follow each event
// to the object in S3 (versitygw).

// buildFunction builds aliyun-fc into a temporary directory, as build.sh
// does (static, trimmed, stripped), for this machine's OS.
func buildFunction(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "../aliyun-fc")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build aliyun-fc: %v\n%s", err, out)
	}
	return bin
}

// fcProcess is one running instance of the function.
type fcProcess struct {
	url  string
	logs *testkit.SyncBuffer
}

// startFunction starts the function binary with env plus the port FC
// gives, and waits until it answers.
func startFunction(t *testing.T, bin string, env map[string]string) *fcProcess {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin)
	cmd.Env = []string{"FC_CUSTOM_LISTEN_PORT=" + port, "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited: //nolint:errcheck // stopped by this cleanup: how it ended does not matter
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited //nolint:errcheck // killed by this cleanup
		}
		if t.Failed() {
			t.Logf("function logs:\n%s", logs.String())
		}
	})
	fn := &fcProcess{url: "http://" + addr, logs: logs}
	if !testkit.Eventually(10*time.Second, 10*time.Millisecond, func() bool {
		if resp, err := http.Get(fn.url + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("function exited before answering: %v\n%s", err, logs.String())
		default:
		}
		return false
	}) {
		t.Fatalf("function not answering in 10s\n%s", logs.String())
	}
	return fn
}

// fcAnswer is the part of the function's answer the tests read.
type fcAnswer struct {
	Records       int    `json:"records"`
	GatewayStatus int    `json:"gateway_status"`
	Attempts      int    `json:"attempts"`
	Sent          int    `json:"sent"`
	Failed        int    `json:"failed"`
	Error         string `json:"error"`
}

// invoke makes one asynchronous invocation as FC does: POST /invoke, the
// event as the body, FC's headers.
func (fn *fcProcess) invoke(t *testing.T, requestID string, body []byte) (int, fcAnswer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fn.url+"/invoke", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"Content-Type":          "application/octet-stream",
		"x-fc-request-id":       requestID,
		"x-fc-function-name":    "oss2s3-forwarder",
		"x-fc-function-handler": "index.handler",
		"x-fc-function-memory":  "128",
		"x-fc-function-timeout": "60",
		"x-fc-region":           "cn-hangzhou",
		"x-fc-account-id":       "1234",
		"x-fc-qualifier":        "LATEST",
		"x-fc-invocation-type":  "Async",
	} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	var a fcAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("invoke: answer (status %d) is not JSON: %v", resp.StatusCode, err)
	}
	// FC tells a function error from a success by x-fc-status.
	if fcStatus := resp.Header.Get("x-fc-status"); (resp.StatusCode == http.StatusOK) != (fcStatus == "200") || (fcStatus != "200" && fcStatus != "404") {
		t.Errorf("invoke: status %d with x-fc-status %q", resp.StatusCode, fcStatus)
	}
	return resp.StatusCode, a
}

// trigger stands in for the OSS trigger: the emulator's event
// notifications are kept, to be handed to the function by the test.
type trigger struct {
	mu   sync.Mutex
	docs [][]byte
}

func newTrigger(t *testing.T, b *bed) *trigger {
	t.Helper()
	tr := &trigger{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tr.mu.Lock()
		tr.docs = append(tr.docs, body)
		tr.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	b.emu.SetWebhook(srv.URL, "unused")
	return tr
}

// next waits for the n next documents.
func (tr *trigger) next(t *testing.T, b *bed, n int) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.emu.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.docs) < n {
		t.Fatalf("OSS trigger produced %d documents, want %d", len(tr.docs), n)
	}
	out := tr.docs[:n]
	tr.docs = tr.docs[n:]
	return out
}

// merge makes one multi-record document of several one-record ones.
func merge(t *testing.T, docs [][]byte) []byte {
	t.Helper()
	var all ossevent.Document
	for _, d := range docs {
		doc, err := ossevent.Parse(d)
		if err != nil {
			t.Fatal(err)
		}
		all.Events = append(all.Events, doc.Events...)
	}
	b, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func webhookEnv(gatewayURL, timeout string) map[string]string {
	return map[string]string{"OSS2S3_GATEWAY_URL": gatewayURL, "OSS2S3_WEBHOOK_SECRET": e2eSecret, "OSS2S3_TIMEOUT": timeout}
}

func TestFunctionComputeWebhookEndToEnd(t *testing.T) {
	bin := buildFunction(t)
	b := newBed(t, s3test.StartVersity(t), 2)
	tr := newTrigger(t, b)
	fn := startFunction(t, bin, webhookEnv("http://"+b.addr, "3s"))
	s := samples(t)[:4]

	// The gateway is down: the function says so within its budget, and
	// FC keeps the event.
	upload(t, b.ossBucket(t), s[:1])
	first := tr.next(t, b, 1)[0]
	status, a := fn.invoke(t, "req-down", first)
	if status != http.StatusBadGateway || a.GatewayStatus != 0 || a.Attempts < 2 {
		t.Fatalf("gateway down: status %d, answer %+v; want 502 after several attempts", status, a)
	}

	// FC's retry, once the gateway is up, delivers it.
	b.start(t)
	if status, a := fn.invoke(t, "req-down", first); status != http.StatusOK || a.GatewayStatus != http.StatusAccepted {
		t.Fatalf("FC's retry: status %d, answer %+v; want 200 with the gateway's 202", status, a)
	}
	waitInS3(t, b, s[:1])

	// A multi-record document: every record copied.
	upload(t, b.ossBucket(t), s[1:])
	doc := merge(t, tr.next(t, b, 3))
	if status, a := fn.invoke(t, "req-multi", doc); status != http.StatusOK || a.Records != 3 {
		t.Fatalf("multi-record document: status %d, answer %+v; want 200 for 3 records", status, a)
	}
	waitInS3(t, b, s)

	// A malformed document: refused, said so in a log line, nothing sent.
	status, a = fn.invoke(t, "req-malformed", []byte(`{"events":[{"eventName":"ObjectCreated:PutObject","oss":{"bucket":{"name":"e2e-src"},"object":{"size":3}}}]}`))
	if status != http.StatusBadRequest || !strings.Contains(a.Error, "oss.object.key is missing") {
		t.Fatalf("malformed document: status %d, answer %+v; want 400 naming the missing key", status, a)
	}
	wantLogLine(t, fn.logs, "malformed OSS event document, not forwarded", "req-malformed", "oss.object.key is missing")
}

func TestFunctionComputeSlowGateway(t *testing.T) {
	bin := buildFunction(t)
	b := newBed(t, s3test.StartVersity(t), 2)
	tr := newTrigger(t, b)
	b.start(t)

	// A proxy that holds each request for longer than the function's
	// budget before passing it on: the gateway is slow.
	gw, _ := url.Parse("http://" + b.addr)
	var slow sync.Mutex
	holdFor := 5 * time.Second
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slow.Lock()
		d := holdFor
		slow.Unlock()
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		httputil.NewSingleHostReverseProxy(gw).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	fn := startFunction(t, bin, webhookEnv(proxy.URL, "1s"))

	s := samples(t)[:1]
	upload(t, b.ossBucket(t), s)
	doc := tr.next(t, b, 1)[0]
	start := time.Now()
	status, a := fn.invoke(t, "req-slow", doc)
	if status != http.StatusGatewayTimeout || !strings.Contains(a.Error, "budget") {
		t.Fatalf("slow gateway: status %d, answer %+v; want 504 naming the budget", status, a)
	}
	if took := time.Since(start); took > 3*time.Second { // the gateway holds requests 5s
		t.Errorf("answered after %v, want within about the 1s budget", took)
	}
	wantLogLine(t, fn.logs, "event not delivered to the gateway", "req-slow", "budget")

	// FC's retry, when the gateway is quick again, delivers it.
	slow.Lock()
	holdFor = 0
	slow.Unlock()
	if status, a := fn.invoke(t, "req-slow", doc); status != http.StatusOK {
		t.Fatalf("FC's retry: status %d, answer %+v; want 200", status, a)
	}
	waitInS3(t, b, s)
}

func TestFunctionComputeSQSEndToEnd(t *testing.T) {
	bin := buildFunction(t)
	const sqsAK, sqsSK = "FCSQSACCESSKEY", "fc-sqs-secret"
	sq := sqsemu.New(sqsemu.Options{Credentials: map[string]string{sqsAK: sqsSK}, Region: "us-west-2"})
	endpoint, err := sq.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	queueURL := sq.CreateQueue("DTHS3Stack-S3TransferQueue", nil)

	b := newBed(t, s3test.StartVersity(t), 2)
	tr := newTrigger(t, b)
	// The gateway pulls the queue the function writes to.
	b.extraConfig = fmt.Sprintf(`sqs:
  - name: dth
    queue_url: %s
    region: us-west-2
    endpoint: %s
    access_key_id: %s
    secret_access_key: %s
    task: e2e
    wait_seconds: 1
`, queueURL, endpoint, sqsAK, sqsSK)
	b.writeConfig(t, 2)
	b.start(t)

	env := func(format string) map[string]string {
		return map[string]string{
			"OSS2S3_MODE": "sqs", "OSS2S3_SQS_FORMAT": format, "OSS2S3_TIMEOUT": "5s",
			"OSS2S3_SQS_QUEUE_URL": queueURL, "OSS2S3_SQS_REGION": "us-west-2", "OSS2S3_SQS_ENDPOINT": endpoint,
			"AWS_ACCESS_KEY_ID": sqsAK, "AWS_SECRET_ACCESS_KEY": sqsSK,
		}
	}
	s := samples(t)[:4]

	t.Run("EventFormat", func(t *testing.T) {
		fn := startFunction(t, bin, env("event"))
		upload(t, b.ossBucket(t), s[:1])
		if status, a := fn.invoke(t, "req-sqs-event", tr.next(t, b, 1)[0]); status != http.StatusOK || a.Sent != 1 {
			t.Fatalf("status %d, answer %+v; want 200 with 1 sent", status, a)
		}
		waitInS3(t, b, s[:1])
	})

	t.Run("DTHFormat", func(t *testing.T) {
		fn := startFunction(t, bin, env("dth"))
		upload(t, b.ossBucket(t), s[1:2])
		if status, a := fn.invoke(t, "req-sqs-dth", tr.next(t, b, 1)[0]); status != http.StatusOK || a.Sent != 1 {
			t.Fatalf("status %d, answer %+v; want 200 with 1 sent", status, a)
		}
		waitInS3(t, b, s[1:2])
	})

	t.Run("PartialBatchFailureIsRetried", func(t *testing.T) {
		fn := startFunction(t, bin, env("event"))
		upload(t, b.ossBucket(t), s[2:4])
		doc := merge(t, tr.next(t, b, 2))
		sentBefore := sq.Stats(queueURL).Sent
		// SQS fails the first entry of the first batch.
		sq.InjectFault(sqsemu.Fault{Op: "SendMessageBatch", FailEntries: 1, Times: 1})
		status, a := fn.invoke(t, "req-sqs-partial", doc)
		if status != http.StatusOK || a.Sent != 2 || a.Attempts != 2 {
			t.Fatalf("status %d, answer %+v; want 200 with 2 sent after 2 rounds", status, a)
		}
		if sent := sq.Stats(queueURL).Sent - sentBefore; sent != 2 {
			t.Errorf("SQS accepted %d messages, want 2 (the failed entry once, on the retry)", sent)
		}
		waitInS3(t, b, s[2:4])
	})

	t.Run("EntriesThatKeepFailingAnswerNon200", func(t *testing.T) {
		fn := startFunction(t, bin, fcEnvWith(env("event"), "OSS2S3_TIMEOUT", "1s"))
		sq.InjectFault(sqsemu.Fault{Op: "SendMessageBatch", FailEntries: 1})
		defer sq.ClearFaults()
		status, a := fn.invoke(t, "req-sqs-stuck", tr.docsOf(t, b, s[:1]))
		if status == http.StatusOK || a.Failed != 1 {
			t.Fatalf("status %d, answer %+v; want non-200 with 1 failed", status, a)
		}
		wantLogLine(t, fn.logs, "event not delivered to SQS", "req-sqs-stuck", "unsent")
	})

	// Every message the function wrote was taken by the gateway: nothing
	// waits in the queue or in flight.
	var st sqsemu.QueueStats
	if !testkit.Eventually(20*time.Second, 50*time.Millisecond, func() bool {
		st = sq.Stats(queueURL)
		return st.Visible+st.InFlight == 0
	}) {
		t.Fatalf("queue still holds messages: %+v", st)
	}
}

// docsOf uploads s again and returns the trigger's document of it.
func (tr *trigger) docsOf(t *testing.T, b *bed, s []sample) []byte {
	t.Helper()
	upload(t, b.ossBucket(t), s)
	return tr.next(t, b, 1)[0]
}

// wantLogLine checks that the JSON log holds an ERROR line with message
// msg for the request, whose text contains each of the others. The line
// comes through the child's stderr pipe, so it may arrive just after the
// answer: it is waited for.
func wantLogLine(t *testing.T, logs *testkit.SyncBuffer, msg, requestID string, contains ...string) {
	t.Helper()
	if !testkit.Eventually(5*time.Second, 20*time.Millisecond, func() bool {
		return hasLogLine(logs.String(), msg, requestID, contains)
	}) {
		t.Errorf("no ERROR log line %q for %s containing %q:\n%s", msg, requestID, contains, logs.String())
	}
}

func hasLogLine(logs, msg, requestID string, contains []string) bool {
	for line := range strings.Lines(logs) {
		var rec struct {
			Msg       string `json:"msg"`
			Level     string `json:"level"`
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != msg || rec.RequestID != requestID || rec.Level != "ERROR" {
			continue
		}
		ok := true
		for _, c := range contains {
			ok = ok && strings.Contains(line, c)
		}
		if ok {
			return true
		}
	}
	return false
}

// fcEnvWith is env with k set to v.
func fcEnvWith(env map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for ek, ev := range env {
		if ek != k {
			out[ek] = ev
		}
	}
	return out
}
