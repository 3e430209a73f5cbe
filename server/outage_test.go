package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

// answer is what the gateway said to one request.
type answer struct {
	code       int
	retryAfter string
	body       string
	took       time.Duration
}

// ask sends req with a client that gives up after 15s (longer than the
// gateway's 10s publish timeout, so a publish that hangs shows as slow, not
// as a transport error).
func ask(t *testing.T, req *http.Request) answer {
	t.Helper()
	start := time.Now()
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(body), took: time.Since(start)}
}

// waitHealthy waits until the gateway at base answers /healthz with 200.
func waitHealthy(t *testing.T, base string) {
	t.Helper()
	// Generous: on a loaded CI machine opening the task's clients has
	// taken more than 10 s.
	testkit.WaitFor(t, 45*time.Second, "/healthz to answer", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func getAt(t *testing.T, url string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ask(t, req)
}

// postEvent sends the gateway at addr a signed OSS trigger document for
// key, as the Function Compute function does.
func postEvent(t *testing.T, addr, key string) answer {
	t.Helper()
	rec := ossevent.NewRecord("ObjectCreated:PutObject", "cn-hangzhou", e2eSrc, key,
		"5D41402ABC4B2A76B9719D911017C592", 5, "text/plain", time.Now())
	body, err := json.Marshal(ossevent.Document{Events: []ossevent.Record{rec}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/events/oss", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(signature.Header, signature.Sign(e2eSecret, time.Now(), body))
	return ask(t, req)
}

// smallSamples are n small objects under prefix, each with bytes of its own.
func smallSamples(prefix string, n int) []sample {
	var s []sample
	for i := range n {
		s = append(s, sample{key: fmt.Sprintf("%s/%d.txt", prefix, i), data: []byte(fmt.Sprintf("%s object %d", prefix, i)), ctype: "text/plain"})
	}
	return s
}

// newRetryingBed is newFakeBed whose emulator retries a refused webhook
// for about a minute and a half (backoff up to 2s), as a trigger with
// retries does, so events refused while JetStream is away are delivered
// once it is back.
func newRetryingBed(t *testing.T, concurrency int) *bed {
	t.Helper()
	s3srv, stopS3, err := s3test.StartFake()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopS3)
	return newBedWith(t, s3srv, concurrency, ossemu.Options{WebhookRetries: 50})
}

func natsURLOnPort(port int) string { return fmt.Sprintf("nats://127.0.0.1:%d", port) }

// refused503 fails the test unless a is a 503 with Retry-After.
func refused503(t *testing.T, what string, a answer) {
	t.Helper()
	if a.code != http.StatusServiceUnavailable || a.retryAfter == "" {
		t.Fatalf("%s: %d (Retry-After %q) %s, want 503 with Retry-After", what, a.code, a.retryAfter, a.body)
	}
}

// TestGatewayServesAtOnceWhileNATSIsUnreachable: with an external NATS that
// is not there yet, the gateway still serves at once: /healthz 200, /readyz
// 503 saying why, every webhook and admin route 503 with Retry-After. Once
// NATS starts, the real handler takes over without a restart: /readyz 200,
// webhooks 202, and the upload whose webhook was refused meanwhile (the
// emulator retries it) is copied.
func TestGatewayServesAtOnceWhileNATSIsUnreachable(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	b := newRetryingBed(t, 2)
	b.extraConfig = "nats:\n  url: " + natsURLOnPort(port) + "\n"
	b.writeConfig(t, 2)
	p := b.launch(t)
	base := "http://" + b.addr

	waitHealthy(t, base)
	if a := getAt(t, base+"/readyz"); a.code != http.StatusServiceUnavailable || !strings.Contains(a.body, "jetstream not reachable yet") {
		t.Fatalf("/readyz while NATS is unreachable: %d %s", a.code, a.body)
	}
	refused503(t, "signed OSS webhook", postEvent(t, b.addr, "direct/refused.txt"))
	for _, route := range []struct{ method, path string }{
		{http.MethodPost, "/v1/events/eventbridge"},
		{http.MethodPost, "/v1/events/mns"},
		{http.MethodPost, "/v1/events/mns/some-token"},
		{http.MethodGet, "/v1/dlq"},
		{http.MethodPost, "/v1/dlq/redrive"},
		{http.MethodPost, "/v1/tasks/e2e/reconcile"},
		{http.MethodGet, "/v1/reconciles/x"},
	} {
		req, err := http.NewRequest(route.method, base+route.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		refused503(t, route.method+" "+route.path, ask(t, req))
	}
	if a := getAt(t, base+"/metrics"); a.code != http.StatusOK || !strings.Contains(a.body, "oss2s3_http_requests_total") {
		t.Fatalf("/metrics while NATS is unreachable: %d", a.code)
	}

	// An upload now: its webhook is refused, and the emulator retries it.
	s := smallSamples("late-nats", 3)
	upload(t, b.ossBucket(t), s)
	refusedSeries := `oss2s3_http_requests_total{code="503",method="POST",route="/v1/*"}`
	testkit.WaitFor(t, 10*time.Second, "the emulator's webhooks to be refused", func() bool {
		return metricValue(t, b.addr, refusedSeries) >= 2 // ours, and the emulator's first try
	})

	jstest.StartAt(t, t.TempDir(), port)
	testkit.WaitFor(t, 30*time.Second, "/readyz 200 once NATS is up", func() bool {
		return getAt(t, base+"/readyz").code == http.StatusOK
	})
	if a := postEvent(t, b.addr, "direct/accepted.txt"); a.code != http.StatusAccepted {
		t.Fatalf("signed OSS webhook once NATS is up: %d %s", a.code, a.body)
	}
	waitInS3(t, b, s)
	if errs := b.emu.WebhookErrors(); len(errs) > 0 {
		t.Fatalf("webhook deliveries failed: %v", errs)
	}
	select {
	case err := <-p.done:
		t.Fatalf("oss2s3 exited: %v", err)
	default:
	}
	stopBeforeNATS(t, b)
}

// stopBeforeNATS stops the process under test and checks that it ended
// cleanly, before the test's cleanups stop a NATS server started after it.
func stopBeforeNATS(t *testing.T, b *bed) {
	t.Helper()
	if err := b.stop(); err != nil {
		t.Fatalf("oss2s3 did not stop cleanly: %v", err)
	}
}

// TestSIGTERMWhileWaitingForNATSExitsCleanly: a process still waiting for
// an unreachable NATS stops at once and cleanly on SIGTERM.
func TestSIGTERMWhileWaitingForNATSExitsCleanly(t *testing.T) {
	t.Parallel()
	b := newFakeBed(t, 2)
	b.extraConfig = "drain_delay: 1m\nnats:\n  url: " + natsURLOnPort(freePort(t)) + "\n"
	b.writeConfig(t, 2)
	c := launchChild(t, b)
	testkit.WaitFor(t, 20*time.Second, "/readyz to answer 503", func() bool {
		resp, err := http.Get("http://" + b.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("oss2s3 did not exit cleanly on SIGTERM: %v\n%s", err, c.logs.String())
		}
	case <-time.After(20 * time.Second):
		// The drain delay (1m) is for load balancers that saw the gateway
		// ready; this one never was.
		t.Fatalf("oss2s3 still running 20s after SIGTERM\n%s", c.logs.String())
	}
}

// TestGatewayKeepsWaitingForNATSBeyondTheSetupTime: the queue's own setup
// gives up after 2 minutes; the process does not: it still answers /readyz
// 503 after that, and takes events as soon as NATS starts.
func TestGatewayKeepsWaitingForNATSBeyondTheSetupTime(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for more than 2 minutes")
	}
	t.Parallel()
	port := freePort(t)
	b := newFakeBed(t, 0)
	b.extraConfig = "nats:\n  url: " + natsURLOnPort(port) + "\n"
	b.writeConfig(t, 0)
	p := b.launch(t)
	base := "http://" + b.addr
	waitHealthy(t, base)
	// ensureSetupTime (transfer/queue.go) and a margin.
	for until := time.Now().Add(2*time.Minute + 20*time.Second); time.Now().Before(until); time.Sleep(time.Second) {
		select {
		case err := <-p.done:
			t.Fatalf("oss2s3 exited while NATS was unreachable: %v", err)
		default:
		}
		if a := getAt(t, base+"/readyz"); a.code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz while NATS is unreachable: %d %s", a.code, a.body)
		}
	}
	jstest.StartAt(t, t.TempDir(), port)
	testkit.WaitFor(t, 30*time.Second, "/readyz 200 once NATS is up", func() bool {
		return getAt(t, base+"/readyz").code == http.StatusOK
	})
	if a := postEvent(t, b.addr, "direct/accepted.txt"); a.code != http.StatusAccepted {
		t.Fatalf("signed OSS webhook once NATS is up: %d %s", a.code, a.body)
	}
	stopBeforeNATS(t, b)
}

// natsOutage is how long NATS stays down in TestNATSOutageMidRunLosesNothing.
// The issue speaks of a minute; nothing in oss2s3 changes its behaviour
// between 15s and a minute (the client reconnects every second, the
// emulator retries a webhook for about 90s), so the test keeps the package's
// run short. It passed by hand with a minute too.
const natsOutage = 15 * time.Second

// TestNATSOutageMidRunLosesNothing: an external NATS stopped while oss2s3
// runs, and started again on the same port and store after a while. During
// the outage /readyz answers 503 and webhooks 503 with Retry-After, at once
// (never a 2xx: the event is not stored); the process keeps running. After
// it, the workers resume by themselves, and every object uploaded before,
// during (the emulator retries the refused webhooks) and after the outage
// is in S3 byte for byte.
func TestNATSOutageMidRunLosesNothing(t *testing.T) {
	t.Parallel()
	port, store := freePort(t), t.TempDir()
	ns := jstest.StartAt(t, store, port)
	b := newRetryingBed(t, 2)
	b.extraConfig = "nats:\n  url: " + natsURLOnPort(port) + "\n"
	b.queueConfig = "  ack_wait: 5s\n"
	b.writeConfig(t, 2)
	p := b.launch(t)
	base := "http://" + b.addr
	testkit.WaitFor(t, 20*time.Second, "/readyz 200", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	bk := b.ossBucket(t)

	// Before: small objects, copied; and a multipart copy whose reads are
	// slow, still going when NATS stops.
	before := smallSamples("before", 4)
	upload(t, bk, before)
	waitInS3(t, b, before)
	big := sample{key: "before/big.bin", data: bytes.Repeat([]byte("0123456789abcdef"), 13<<20/16+1), ctype: "application/octet-stream"}
	b.emu.InjectFault(ossemu.Fault{Op: "GetObject", Key: big.key, Latency: 2 * time.Second, Times: 3})
	upload(t, bk, []sample{big})
	waitMetric(t, b.addr, "oss2s3_jobs_in_flight 1")

	ns.Shutdown()
	ns.WaitForShutdown()
	down := time.Now()
	testkit.WaitFor(t, 10*time.Second, "/readyz 503 once NATS is down", func() bool {
		return getAt(t, base+"/readyz").code == http.StatusServiceUnavailable
	})
	a := postEvent(t, b.addr, "direct/during.txt")
	refused503(t, "signed OSS webhook during the outage", a)
	if a.took > 2*time.Second {
		t.Fatalf("a webhook during the outage took %s to be refused: the publish waited instead of failing fast", a.took)
	}
	during := smallSamples("during", 3)
	upload(t, bk, during)
	for time.Since(down) < natsOutage {
		select {
		case err := <-p.done:
			t.Fatalf("oss2s3 exited during the outage: %v", err)
		default:
		}
		if a := getAt(t, base+"/readyz"); a.code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz during the outage: %d %s", a.code, a.body)
		}
		refused503(t, "signed OSS webhook during the outage", postEvent(t, b.addr, "direct/during.txt"))
		time.Sleep(500 * time.Millisecond)
	}

	jstest.StartAt(t, store, port)
	testkit.WaitFor(t, 30*time.Second, "/readyz 200 once NATS is back", func() bool {
		return getAt(t, base+"/readyz").code == http.StatusOK
	})
	after := smallSamples("after", 3)
	upload(t, bk, after)
	waitInS3(t, b, append(append(append(before, big), during...), after...))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.emu.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	if errs := b.emu.WebhookErrors(); len(errs) > 0 {
		t.Fatalf("webhook deliveries failed: %v", errs)
	}
	waitMetric(t, b.addr, `oss2s3_dead_letter_jobs{task="e2e"} 0`)
	stopBeforeNATS(t, b)
}

// TestFullQueueRefusesThenCopiesEverything: a gateway-only process whose
// job stream is full (queue.max_jobs) answers a webhook 503 with
// Retry-After and stores nothing; once a worker process drains the queue,
// the refused events (the emulator retries them) are taken and every
// object is copied.
func TestFullQueueRefusesThenCopiesEverything(t *testing.T) {
	t.Parallel()
	ns := jstest.Start(t)
	b := newRetryingBed(t, 0)
	b.extraConfig = "nats:\n  url: " + ns.ClientURL() + "\n"
	b.queueConfig = "  max_jobs: 3\n"
	b.writeConfig(t, 0)
	b.start(t)
	bk := b.ossBucket(t)

	first := smallSamples("fits", 3)
	upload(t, bk, first)
	cons := jobConsumer(t, ns.ClientURL())
	testkit.WaitFor(t, 20*time.Second, "the stream to be full", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 3
	})
	refused503(t, "signed OSS webhook past queue.max_jobs", postEvent(t, b.addr, "direct/past-the-limit.txt"))
	more := smallSamples("past-the-limit", 3)
	upload(t, bk, more)
	testkit.WaitFor(t, 20*time.Second, "the emulator's webhooks to be refused", func() bool {
		return metricValue(t, b.addr, `oss2s3_events_received_total{result="failed",source="oss_webhook"}`) >= 2
	})
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 3 {
		t.Fatalf("%d jobs in a stream limited to 3", info.NumPending)
	}

	// Space frees when a worker process joins and copies.
	w := *b
	w.addr, w.dataDir = freeAddr(t), t.TempDir()
	w.writeConfig(t, 2)
	w.start(t)
	waitInS3(t, b, append(first, more...))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.emu.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	if errs := b.emu.WebhookErrors(); len(errs) > 0 {
		t.Fatalf("webhook deliveries failed: %v", errs)
	}
}
