package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer"
)

const (
	e2eAK, e2eSK = "E2EACCESSKEY", "e2e-access-key-secret"
	e2eSecret    = "e2e-webhook-secret-0123456789"
	e2eSrc       = "e2e-src"
	e2eDst       = "e2e-dst"
)

// bed is one oss2s3 process under test with the servers around it.
type bed struct {
	emu     *ossemu.Server
	ossURL  string
	s3      *s3test.Server
	dataDir string
	addr    string
	cfgPath string
	stop    func() error
	client  *http.Client // set for a gateway that serves HTTPS; nil: plain HTTP

	// Extra configuration: top-level YAML, and lines added to the queue,
	// workers and task options sections; extraTasks are tasks after the
	// bed's own (items of the tasks list).
	extraConfig, queueConfig, workerConfig, taskOptions, extraTasks string
	// hup is the channel of the process's reload signals (SIGHUP's, for
	// run in this process: withReloadSignals).
	hup chan os.Signal
	// childEnv is added to the environment of a child process
	// (launchChild), as NAME=value.
	childEnv []string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newBed starts the OSS emulator (webhook pointed at the gateway) around the
// S3 server given, and writes a configuration file whose secrets come from
// the environment, as an operator's would.
func newBed(t *testing.T, s3srv *s3test.Server, concurrency int) *bed {
	t.Helper()
	return newBedWith(t, s3srv, concurrency, ossemu.Options{})
}

// newBedWith is newBed with more emulator options.
func newBedWith(t *testing.T, s3srv *s3test.Server, concurrency int, opts ossemu.Options) *bed {
	t.Helper()
	b := &bed{s3: s3srv, dataDir: t.TempDir(), addr: freeAddr(t)}
	opts.Credentials, opts.Region, opts.RestoreDelay = map[string]string{e2eAK: e2eSK}, "cn-hangzhou", 500*time.Millisecond
	b.emu = ossemu.New(opts)
	var err error
	if b.ossURL, err = b.emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.emu.Close() })
	b.emu.CreateBucket(e2eSrc)
	if err := s3srv.CreateBucket(context.Background(), e2eDst); err != nil {
		t.Fatal(err)
	}
	b.emu.SetWebhook("http://"+b.addr+"/v1/events/oss", e2eSecret)
	b.writeConfig(t, concurrency)
	return b
}

func (b *bed) writeConfig(t *testing.T, concurrency int) {
	t.Helper()
	caLine := ""
	if b.s3.CAFile != "" {
		caLine = "      ca_file: " + b.s3.CAFile + "\n"
	}
	grace := "  shutdown_grace: 5s\n"
	if strings.Contains(b.workerConfig, "shutdown_grace:") {
		grace = ""
	}
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
log: {level: debug, format: json}
webhook:
  secrets: ["${WEBHOOK_SECRET}"]
queue:
  retry_base: 100ms
  retry_max: 1s
%sworkers:
  concurrency: %d
  part_size: 5MiB
  multipart_threshold: 6MiB
%s%s%stasks:
  - name: e2e
    source:
      endpoint: %s
      region: cn-hangzhou
      bucket: %s
      access_key_id: ${OSS_AK}
      access_key_secret: ${OSS_SK}
    destination:
      region: %s
      bucket: %s
      endpoint: %s
%s      access_key_id: ${S3_AK}
      secret_access_key: ${S3_SK}
    options:
      restore_poll: 200ms
%s%s`, b.addr, b.dataDir, b.queueConfig, concurrency, grace, b.workerConfig, b.extraConfig, b.ossURL, e2eSrc, b.s3.Region, e2eDst, b.s3.Endpoint, caLine,
		b.taskOptions, b.extraTasks)
	b.cfgPath = filepath.Join(t.TempDir(), "oss2s3.yaml")
	if err := os.WriteFile(b.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs the whole program (run, as main does) and waits for /readyz.
func (b *bed) start(t *testing.T) *process {
	t.Helper()
	p := b.launch(t)
	client, base := http.DefaultClient, "http://"+b.addr
	if b.client != nil {
		client, base = b.client, "https://"+b.addr
	}
	ready := testkit.Eventually(20*time.Second, 20*time.Millisecond, func() bool {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("oss2s3 exited before it was ready: %v\n%s", err, p.logs.String())
		default:
		}
		return false
	})
	if !ready {
		t.Fatalf("oss2s3 not ready in 20s\n%s", p.logs.String())
	}
	return p
}

// process is the program started by launch.
type process struct {
	done chan error // run's result, once it returns
	logs *testkit.SyncBuffer
}

// launch runs the whole program (run, as main does) without waiting for
// anything; b.stop ends it.
func (b *bed) launch(t *testing.T) *process {
	t.Helper()
	getenv := env(map[string]string{
		"WEBHOOK_SECRET": e2eSecret, "OSS_AK": e2eAK, "OSS_SK": e2eSK,
		"S3_AK": b.s3.AccessKey, "S3_SK": b.s3.SecretKey,
	})
	if b.hup == nil {
		b.hup = make(chan os.Signal, 1)
	}
	ctx, cancel := context.WithCancel(withReloadSignals(context.Background(), b.hup))
	p := &process{done: make(chan error, 1), logs: &testkit.SyncBuffer{}}
	finished := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"oss2s3", "serve", "--config", b.cfgPath}, getenv, nil, io.Discard, p.logs)
		finished <- err
		p.done <- err
	}()
	stopped := false
	b.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-finished
	}
	t.Cleanup(func() {
		_ = b.stop()
		if t.Failed() {
			t.Logf("oss2s3 logs:\n%s", p.logs.String())
		}
	})
	return p
}

func (b *bed) ossBucket(t *testing.T) *oss.Bucket {
	t.Helper()
	c, err := oss.New(b.ossURL, e2eAK, e2eSK)
	if err != nil {
		t.Fatal(err)
	}
	bk, err := c.Bucket(e2eSrc)
	if err != nil {
		t.Fatal(err)
	}
	return bk
}

type sample struct {
	key   string
	data  []byte
	ctype string
	meta  map[string]string
	opts  []oss.Option
}

func samples(t *testing.T) []sample {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte("line of a log file\n"), 5000))
	_ = zw.Close()
	big := make([]byte, 13<<20+7)
	_, _ = rand.Read(big)
	return []sample{
		{key: "a.txt", data: []byte("hello"), ctype: "text/plain", meta: map[string]string{"owner": "alice", "team": "x y"}},
		{key: "empty", data: nil, ctype: "application/octet-stream"},
		{key: "dir/with space/ü 中文 🙂.txt", data: []byte("unicode"), ctype: "text/plain; charset=utf-8"},
		{key: "odd/100% + plus#hash?.txt", data: []byte("odd"), ctype: "text/plain"},
		{key: "logs/app.log.gz", data: gz.Bytes(), ctype: "text/plain", opts: []oss.Option{oss.ContentEncoding("gzip")}},
		{key: "big/random.bin", data: big, ctype: "application/x-binary", meta: map[string]string{"kind": "multipart"}},
	}
}

func upload(t *testing.T, bk *oss.Bucket, s []sample) {
	t.Helper()
	for _, o := range s {
		opts := append([]oss.Option{oss.ContentType(o.ctype)}, o.opts...)
		for k, v := range o.meta {
			opts = append(opts, oss.Meta(k, v))
		}
		if err := bk.PutObject(o.key, bytes.NewReader(o.data), opts...); err != nil {
			t.Fatalf("put %s: %v", o.key, err)
		}
	}
}

// waitInS3 waits until every sample is in S3 with identical bytes, content
// type, content encoding and user metadata, plus the source identity.
func waitInS3(t *testing.T, b *bed, s []sample) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for _, o := range s {
		var problem string
		if !testkit.Eventually(time.Until(deadline), 50*time.Millisecond, func() bool {
			problem = checkS3(ctx, b, o)
			return problem == ""
		}) {
			t.Fatalf("%s: %s", o.key, problem)
		}
	}
}

func checkS3(ctx context.Context, b *bed, o sample) string {
	out, err := b.s3.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(e2eDst), Key: aws.String(o.key)})
	if err != nil {
		return "not in S3: " + err.Error()
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		return err.Error()
	}
	if !bytes.Equal(got, o.data) {
		return fmt.Sprintf("bytes differ: %d bytes, want %d", len(got), len(o.data))
	}
	if ct := aws.ToString(out.ContentType); ct != o.ctype {
		return fmt.Sprintf("content type %q, want %q", ct, o.ctype)
	}
	if strings.HasSuffix(o.key, ".gz") && aws.ToString(out.ContentEncoding) != "gzip" {
		return fmt.Sprintf("content encoding %q, want gzip", aws.ToString(out.ContentEncoding))
	}
	for k, v := range o.meta {
		if out.Metadata[k] != v {
			return fmt.Sprintf("metadata %s = %q, want %q (all: %v)", k, out.Metadata[k], v, out.Metadata)
		}
	}
	if out.Metadata[transfer.MetaSourceETag] == "" || out.Metadata[transfer.MetaSourceCRC64] == "" {
		return fmt.Sprintf("source identity missing from metadata %v", out.Metadata)
	}
	return ""
}

// TestEndToEnd: OSS upload -> signed webhook -> gateway -> JetStream ->
// worker -> a real S3 server over TLS, verified byte for byte.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	b := newBed(t, s3test.StartVersity(t), 4)
	b.start(t)
	s := samples(t)
	upload(t, b.ossBucket(t), s)
	waitInS3(t, b, s)
	if errs := b.emu.WebhookErrors(); len(errs) > 0 {
		t.Fatalf("webhook deliveries failed: %v", errs)
	}

	// The big sample went through S3's multipart API (13 MiB in 5 MiB parts).
	head, err := b.s3.Client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(e2eDst), Key: aws.String("big/random.bin")})
	if err != nil || !strings.HasSuffix(strings.Trim(aws.ToString(head.ETag), `"`), "-3") {
		t.Fatalf("big/random.bin ETag %q (%v), want a 3-part multipart ETag", aws.ToString(head.ETag), err)
	}

	// An overwrite with the same size (what a size-only compare misses) is copied too.
	s[0].data = []byte("HELLO")
	upload(t, b.ossBucket(t), s[:1])
	waitInS3(t, b, s[:1])

	// The metrics saw it (counted just after the copy lands, so poll).
	for _, want := range []string{
		`oss2s3_objects_total{result="copied",task="e2e"} 7`,
		`oss2s3_events_received_total{result="queued",source="oss_webhook"} 7`,
		`oss2s3_copied_bytes_total{task="e2e"}`,
		// Every copy came from an event with a time, so all are in the lag.
		`oss2s3_end_to_end_lag_seconds_count{task="e2e"} 7`,
		// Read from JetStream at the scrape: the queue drained, nothing dead.
		"oss2s3_queue_up 1",
		`oss2s3_queue_jobs{task="e2e"} 0`,
		`oss2s3_dead_letter_jobs{task="e2e"} 0`,
		// The multipart copy gave back every part buffer it took.
		"oss2s3_multipart_parts_in_flight 0",
		"oss2s3_memory_budget_used_bytes 0",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		waitMetric(t, b.addr, want)
	}
}

func waitMetric(t *testing.T, addr, want string) {
	t.Helper()
	if !testkit.Eventually(10*time.Second, 50*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(body), want)
	}) {
		t.Fatalf("metrics lack %s", want)
	}
}

// TestRestartLosesNoQueuedJob: jobs accepted by a gateway-only process are
// still there after it stops, and a new process on the same data directory
// copies them.
func TestRestartLosesNoQueuedJob(t *testing.T) {
	t.Parallel()
	b := newFakeBed(t, 0)
	b.start(t)
	s := samples(t)
	upload(t, b.ossBucket(t), s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.emu.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	if errs := b.emu.WebhookErrors(); len(errs) > 0 {
		t.Fatalf("webhook deliveries failed: %v", errs)
	}
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	for _, o := range s {
		if problem := checkS3(ctx, b, o); !strings.HasPrefix(problem, "not in S3") {
			t.Fatalf("%s copied by a process without workers: %q", o.key, problem)
		}
	}

	b.writeConfig(t, 4)
	b.start(t)
	waitInS3(t, b, s)
}

func TestVersionAndUnknownCommand(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"oss2s3", "version"}, env(nil), nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "oss2s3 ") {
		t.Fatalf("version: %q, %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"oss2s3", "frobnicate"}, env(nil), nil, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
}

func TestServeRefusesABadConfigurationListingEveryProblem(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.yaml")
	_ = os.WriteFile(path, []byte("tasks:\n  - name: t\n    source: {bucket: x}\n"), 0o600)
	err := run(context.Background(), []string{"oss2s3", "--config", path}, env(nil), nil, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"webhook.secrets", "tasks[0].source.endpoint", "tasks[0].destination.bucket"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%s", want, err)
		}
	}
	if err := run(context.Background(), []string{"oss2s3", "serve"}, env(nil), nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "OSS2S3_CONFIG") {
		t.Fatalf("no config: %v", err)
	}
}

// newFakeBed is newBed with an in-process S3 (gofakes3), for tests about
// the gateway rather than the copy.
func newFakeBed(t *testing.T, concurrency int) *bed {
	t.Helper()
	s3srv, stopS3, err := s3test.StartFake()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopS3)
	return newBed(t, s3srv, concurrency)
}
