package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/internal/sqsemu"
	"github.com/oss2s3/oss2s3/internal/testkit"
)

// e2eSrc2 is the source bucket of the tasks the reload tests add and
// remove.
const e2eSrc2 = "e2e-src2"

// secondTask is a task item copying e2eSrc2 into e2eDst under name/.
func secondTask(b *bed, name string) string {
	caLine := ""
	if b.s3.CAFile != "" {
		caLine = "      ca_file: " + b.s3.CAFile + "\n"
	}
	return `  - name: ` + name + `
    source:
      endpoint: ` + b.ossURL + `
      region: cn-hangzhou
      bucket: ` + e2eSrc2 + `
      access_key_id: ${OSS_AK}
      access_key_secret: ${OSS_SK}
    destination:
      region: ` + b.s3.Region + `
      bucket: ` + e2eDst + `
      prefix: ` + name + `/
      endpoint: ` + b.s3.Endpoint + `
` + caLine + `      access_key_id: ${S3_AK}
      secret_access_key: ${S3_SK}
`
}

// rewriteConfig writes the bed's configuration again in place, as an
// operator (or a ConfigMap update) replaces the file: a new file renamed
// over the old one.
func (b *bed) rewriteConfig(t *testing.T, concurrency int) {
	t.Helper()
	path := b.cfgPath
	b.writeConfig(t, concurrency)
	if err := os.Rename(b.cfgPath, path); err != nil {
		t.Fatal(err)
	}
	b.cfgPath = path
}

// replaceConfig puts data in place of the bed's configuration file.
func (b *bed) replaceConfig(t *testing.T, data string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "next.yaml")
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, b.cfgPath); err != nil {
		t.Fatal(err)
	}
}

// taskList is GET /v1/tasks.
type taskList struct {
	Tasks []struct {
		Name string `json:"name"`
		Jobs uint64 `json:"jobs"`
	} `json:"tasks"`
	Config *handlers.ConfigStatus `json:"config"`
}

func (l taskList) names() []string {
	var out []string
	for _, t := range l.Tasks {
		out = append(out, t.Name)
	}
	return out
}

func getTasks(t *testing.T, b *bed) taskList {
	t.Helper()
	code, data := adminDo(t, b, http.MethodGet, "/v1/tasks", e2eAdminToken, "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/tasks: %d %s", code, data)
	}
	var l taskList
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatalf("GET /v1/tasks: %v\n%s", err, data)
	}
	if l.Config == nil {
		t.Fatalf("GET /v1/tasks has no config: %s", data)
	}
	return l
}

// reloadWith sends a reload signal by send and waits until GET /v1/tasks
// reports a reload after the one before; it returns what it reports.
func reloadWith(t *testing.T, b *bed, send func()) taskList {
	t.Helper()
	before := getTasks(t, b).Config.LastReload
	send()
	var l taskList
	if !testkit.Eventually(30*time.Second, 20*time.Millisecond, func() bool {
		l = getTasks(t, b)
		r := l.Config.LastReload
		return r != nil && (before == nil || r.At.After(before.At))
	}) {
		t.Fatalf("no reload reported after the signal: %+v", l.Config)
	}
	return l
}

// sighup is reloadWith the bed's own signal channel.
func (b *bed) sighup(t *testing.T) taskList {
	t.Helper()
	return reloadWith(t, b, func() { b.hup <- syscall.SIGHUP })
}

func wantMetric(t *testing.T, addr, series string, want float64) {
	t.Helper()
	if got := metricValue(t, addr, series); got != want {
		t.Fatalf("%s = %v, want %v", series, got, want)
	}
}

// waitObject waits until the destination holds key with data.
func waitObject(t *testing.T, b *bed, key string, data []byte) {
	t.Helper()
	var last string
	if !testkit.Eventually(30*time.Second, 50*time.Millisecond, func() bool {
		out, err := b.s3.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(e2eDst), Key: aws.String(key)})
		if err != nil {
			last = err.Error()
			return false
		}
		defer out.Body.Close()
		got, _ := io.ReadAll(out.Body)
		last = "bytes differ"
		return bytes.Equal(got, data)
	}) {
		t.Fatalf("%s not at the destination: %s", key, last)
	}
}

// TestReloadRefusesAnInvalidFileAndKeepsServing (issue 17, item 4): a
// SIGHUP with a file that does not pass the check is refused with the
// report serve gives at start; nothing changes (the task in use still
// copies, the configuration's load time stays), the failure is counted,
// logged and shown by GET /v1/tasks. A valid file that changes a setting
// that needs a restart is refused too, naming the setting.
func TestReloadRefusesAnInvalidFileAndKeepsServing(t *testing.T) {
	t.Parallel()
	b := newFakeBed(t, 2)
	b.extraConfig = "admin:\n  tokens: [\"" + e2eAdminToken + "\"]\n"
	b.rewriteConfig(t, 2)
	p := b.start(t)
	start := getTasks(t, b)
	if start.Config.LoadedAt.IsZero() || start.Config.LastReload != nil {
		t.Fatalf("config at start: %+v", start.Config)
	}
	wantMetric(t, b.addr, `oss2s3_config_reloads_total{result="failure"}`, 0)
	loadedAt := metricValue(t, b.addr, "oss2s3_config_last_reload_success_timestamp_seconds")
	if loadedAt <= 0 {
		t.Fatalf("last reload success at start: %v", loadedAt)
	}

	// A task without endpoint nor destination, and a secret too short.
	good, err := os.ReadFile(b.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(good), `secrets: ["${WEBHOOK_SECRET}"]`, `secrets: ["${WEBHOOK_SECRET}", "short"]`, 1) +
		"  - name: broken\n    source: {bucket: x}\n"
	b.replaceConfig(t, bad)
	_, wantErr := loadConfig(b.cfgPath, env(map[string]string{
		"WEBHOOK_SECRET": e2eSecret, "OSS_AK": e2eAK, "OSS_SK": e2eSK, "S3_AK": b.s3.AccessKey, "S3_SK": b.s3.SecretKey}))
	if wantErr == nil {
		t.Fatal("the broken file passes the check")
	}
	l := b.sighup(t)
	r := l.Config.LastReload
	if r.OK || r.Error != wantErr.Error() {
		t.Fatalf("last reload %+v, want refused with the start's report:\n%s", r, wantErr)
	}
	for _, want := range []string{"webhook.secrets[1]", "tasks[1].source.endpoint", "tasks[1].destination.bucket"} {
		if !strings.Contains(r.Error, want) {
			t.Errorf("reload error lacks %s: %s", want, r.Error)
		}
	}
	if !l.Config.LoadedAt.Equal(start.Config.LoadedAt) || strings.Join(l.names(), ",") != "e2e" {
		t.Fatalf("after a refused reload: loaded at %v (was %v), tasks %v", l.Config.LoadedAt, start.Config.LoadedAt, l.names())
	}
	wantMetric(t, b.addr, `oss2s3_config_reloads_total{result="failure"}`, 1)
	wantMetric(t, b.addr, `oss2s3_config_reloads_total{result="success"}`, 0)
	wantMetric(t, b.addr, "oss2s3_config_last_reload_success_timestamp_seconds", loadedAt)
	if logs := p.logs.String(); !strings.Contains(logs, "configuration reload refused") || !strings.Contains(logs, "tasks[1].source.endpoint") {
		t.Fatalf("the refusal is not logged with its reason:\n%s", logs)
	}

	// The old configuration still serves: its secret signs, its task copies.
	s := samples(t)[:1]
	upload(t, b.ossBucket(t), s)
	waitInS3(t, b, s)

	// Valid, but the workers cannot change without a restart.
	b.rewriteConfig(t, 3)
	r = b.sighup(t).Config.LastReload
	if r.OK || !strings.Contains(r.Error, "take effect only at a restart: workers.concurrency (") {
		t.Fatalf("reload changing workers.concurrency: %+v", r)
	}
	wantMetric(t, b.addr, `oss2s3_config_reloads_total{result="failure"}`, 2)

	// The file put back as it was reloads.
	b.rewriteConfig(t, 2)
	l = b.sighup(t)
	if !l.Config.LastReload.OK || !l.Config.LoadedAt.After(start.Config.LoadedAt) {
		t.Fatalf("reload of the original file: %+v", l.Config)
	}
	wantMetric(t, b.addr, `oss2s3_config_reloads_total{result="success"}`, 1)
	if v := metricValue(t, b.addr, "oss2s3_config_last_reload_success_timestamp_seconds"); v <= loadedAt {
		t.Fatalf("last reload success %v, want after %v", v, loadedAt)
	}
}

// TestReloadAddsATask (issue 17, item 4): a SIGHUP sent to the process
// with a file that adds a task, and an SQS queue for it: the events of the
// new task's bucket, which no task wanted before, are accepted and copied
// from then on, without a restart, and so are the seed function's
// {"key","size"} messages of the queue; GET /v1/tasks and the metrics know
// the task.
func TestReloadAddsATask(t *testing.T) {
	t.Parallel()
	const sqsAK, sqsSK = "RELOADSQSACCESSKEY", "reload-sqs-secret"
	sq := sqsemu.New(sqsemu.Options{Credentials: map[string]string{sqsAK: sqsSK}, Region: "us-west-2"})
	endpoint, err := sq.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	queueURL := sq.CreateQueue("DTHS3Stack-S3TransferQueue", nil)

	b := newBed(t, s3test.StartVersity(t), 2)
	b.emu.CreateBucket(e2eSrc2)
	admin := "admin:\n  tokens: [\"" + e2eAdminToken + "\"]\n"
	b.extraConfig = admin
	b.rewriteConfig(t, 2)
	c := startChild(t, b)
	src2 := b.ossBucketNamed(t, e2eSrc2)

	put := func(key, data string) {
		t.Helper()
		if err := src2.PutObject(key, strings.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.emu.WaitWebhooks(ctx); err != nil {
			t.Fatal(err)
		}
	}
	put("before.txt", "before the reload")
	wantMetric(t, b.addr, `oss2s3_events_received_total{result="unrouted",source="oss_webhook"}`, 1)

	b.extraTasks = secondTask(b, "two")
	b.extraConfig = admin + fmt.Sprintf(`sqs:
  - name: dth
    queue_url: %s
    region: us-west-2
    endpoint: %s
    access_key_id: %s
    secret_access_key: %s
    task: two
    wait_seconds: 1
`, queueURL, endpoint, sqsAK, sqsSK)
	b.rewriteConfig(t, 2)
	// oss2s3 reload sends the process SIGHUP, as kubectl exec would.
	l := reloadWith(t, b, func() {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"oss2s3", "reload", "--pid", strconv.Itoa(c.cmd.Process.Pid)}, env(nil), nil, &out, io.Discard); err != nil ||
			!strings.Contains(out.String(), "SIGHUP sent to process") {
			t.Fatalf("oss2s3 reload: %v %s", err, out.String())
		}
	})
	if !l.Config.LastReload.OK || strings.Join(l.names(), ",") != "e2e,two" {
		t.Fatalf("after the reload: %+v, tasks %v\n%s", l.Config.LastReload, l.names(), c.logs.String())
	}
	wantMetric(t, b.addr, `oss2s3_config_reloads_total{result="success"}`, 1)
	wantMetric(t, b.addr, `oss2s3_objects_total{result="copied",task="two"}`, 0) // created with the task

	put("after.txt", "after the reload")
	waitObject(t, b, "two/after.txt", []byte("after the reload"))
	wantMetric(t, b.addr, `oss2s3_events_received_total{result="unrouted",source="oss_webhook"}`, 1)
	waitMetric(t, b.addr, `oss2s3_objects_total{result="copied",task="two"} 1`)

	// The queue the reload added is pulled, for the task it names.
	b.emu.SetWebhook("", "")
	put("sqs.txt", "announced on SQS only")
	if _, err := sq.SendMessage(queueURL, `{"key": "sqs.txt", "size": 21}`); err != nil {
		t.Fatal(err)
	}
	waitObject(t, b, "two/sqs.txt", []byte("announced on SQS only"))
	testkit.WaitFor(t, 10*time.Second, "the SQS message deleted", func() bool {
		st := sq.Stats(queueURL)
		return st.Visible+st.InFlight == 0
	})
	b.emu.SetWebhook("http://"+b.addr+"/v1/events/oss", e2eSecret)

	// The first task goes on as before.
	s := samples(t)[:1]
	upload(t, b.ossBucket(t), s)
	waitInS3(t, b, s)
}

// TestReloadKeepsTheJobsOfARemovedTask (issue 17, item 4): a job of a
// task that a reload removes is not acknowledged away nor dead-lettered
// while the task may come back: it stays in the queue, spending no
// attempt, and is copied once a reload brings the task back.
func TestReloadKeepsTheJobsOfARemovedTask(t *testing.T) {
	t.Parallel()
	b := newFakeBed(t, 2)
	b.emu.CreateBucket(e2eSrc2)
	b.extraConfig = "admin:\n  tokens: [\"" + e2eAdminToken + "\"]\n"
	// Attempts enough for the retries below, and jobs handed back soon.
	b.queueConfig = "  max_attempts: 1000\n  ack_wait: 1s\n"
	b.extraTasks = secondTask(b, "gone")
	b.rewriteConfig(t, 2)
	p := b.start(t)

	// The source answers 503 to the worker: the job of "gone" is retried
	// while its task is removed.
	for _, op := range []string{"HeadObject", "GetObjectMeta", "GetObject"} {
		b.emu.InjectFault(ossemu.Fault{API: "OSS", Op: op, Bucket: e2eSrc2, Status: http.StatusServiceUnavailable})
	}
	if err := b.ossBucketNamed(t, e2eSrc2).PutObject("kept.txt", strings.NewReader("kept through two reloads")); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, b.addr, `oss2s3_jobs_queued_total{task="gone"} 1`)
	if !testkit.Eventually(30*time.Second, 50*time.Millisecond, func() bool {
		return metricValue(t, b.addr, `oss2s3_objects_total{result="retried",task="gone"}`) >= 1
	}) {
		t.Fatal("the job of gone was not retried")
	}

	b.extraTasks = ""
	b.rewriteConfig(t, 2)
	if l := b.sighup(t); !l.Config.LastReload.OK || strings.Join(l.names(), ",") != "e2e" {
		t.Fatalf("reload removing gone: %+v, tasks %v", l.Config.LastReload, l.names())
	}
	b.emu.ClearFaults() // the source would answer now: only the missing task keeps the job back
	time.Sleep(4 * time.Second)
	code, data := adminDo(t, b, http.MethodGet, "/v1/dlq", e2eAdminToken, "")
	if code != http.StatusOK || !strings.Contains(string(data), `"count":0`) {
		t.Fatalf("dead letters after the task was removed: %d %s", code, data)
	}
	wantMetric(t, b.addr, `oss2s3_queue_jobs{task="(other)"}`, 1)
	if !strings.Contains(p.logs.String(), `"msg":"no task of this name is configured in this process`) {
		t.Fatalf("the hand-back is not logged:\n%s", p.logs.String())
	}
	if _, err := b.s3.Client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(e2eDst), Key: aws.String("gone/kept.txt")}); err == nil {
		t.Fatal("copied while its task was not configured")
	}

	b.extraTasks = secondTask(b, "gone")
	b.rewriteConfig(t, 2)
	if l := b.sighup(t); !l.Config.LastReload.OK || strings.Join(l.names(), ",") != "e2e,gone" {
		t.Fatalf("reload bringing gone back: %+v, tasks %v", l.Config.LastReload, l.names())
	}
	waitObject(t, b, "gone/kept.txt", []byte("kept through two reloads"))
	code, data = adminDo(t, b, http.MethodGet, "/v1/dlq", e2eAdminToken, "")
	if code != http.StatusOK || !strings.Contains(string(data), `"count":0`) {
		t.Fatalf("dead letters: %d %s", code, data)
	}
}

// ossBucketNamed is ossBucket for another bucket of the emulator.
func (b *bed) ossBucketNamed(t *testing.T, name string) *oss.Bucket {
	t.Helper()
	c, err := oss.New(b.ossURL, e2eAK, e2eSK)
	if err != nil {
		t.Fatal(err)
	}
	bk, err := c.Bucket(name)
	if err != nil {
		t.Fatal(err)
	}
	return bk
}

func TestReloadCommandWantsAProcess(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"--pid", "0"}, {"--pid", "-3"}} {
		err := run(context.Background(), append([]string{"oss2s3", "reload"}, args...), env(nil), nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "give --pid") {
			t.Errorf("reload %v: %v", args, err)
		}
	}
}

// TestReloadNamesTheSettingsThatNeedARestart: what restartOnlyChanges
// reports, by the YAML names; the tasks, the secrets and the rest of what
// reloads are not in it, nor the old name of max_attempts given the same
// value.
func TestReloadNamesTheSettingsThatNeedARestart(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"WEBHOOK_SECRET": "a-secret-of-enough-length", "OSS_AK": "ak", "OSS_SK": "sk"}
	parse := func(edit func(string) string) *Config {
		t.Helper()
		cfg, err := parseConfig("c.yaml", []byte(edit(validConfig)), env(vars))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	same := func(s string) string { return s }
	base := parse(same)
	for _, c := range []struct {
		name string
		edit func(string) string
		want string
	}{
		{"nothing", same, ""},
		{"what reloads", func(s string) string {
			s = strings.Replace(s, "bucket: my-photos-copy", "bucket: other-copy", 1)
			s = strings.Replace(s, `"${OLD_SECRET:-}"`, `"another-secret-of-enough-length"`, 1)
			return s + "admin: {tokens: [an-admin-token-0123456789]}\ntrusted_proxies: [10.0.0.0/8]\ndrain_delay: 5s\n"
		}, ""},
		{"max_deliver as max_attempts", func(s string) string { return strings.Replace(s, "max_deliver: 7", "max_attempts: 7", 1) }, ""},
		{"the process", func(s string) string {
			s = strings.Replace(s, "listen: 127.0.0.1:8080", "listen: 127.0.0.1:9090", 1)
			return strings.Replace(s, "data_dir: /var/lib/oss2s3", "data_dir: /var/lib/other\nlog: {level: debug}", 1)
		}, "listen, data_dir, log.level"},
		{"jetstream and the queue", func(s string) string {
			s = strings.Replace(s, "ack_wait: 90s", "ack_wait: 60s\n  max_jobs: 5", 1)
			return s + "nats: {url: nats://nats:4222, replicas: 3}\n"
		}, "nats.url, nats.replicas, queue.ack_wait, queue.max_jobs"},
		{"the workers", func(s string) string {
			return strings.Replace(strings.Replace(s, "part_size: 16MiB", "part_size: 32MiB", 1), "${WORKERS:-8}", "4", 1)
		}, "workers.concurrency, workers.part_size"},
	} {
		if got := strings.Join(restartOnlyChanges(base, parse(c.edit)), ", "); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestConfigStatusIsThatOfTheRequestsGeneration: GET /v1/tasks' config is
// read through the generation that serves the request: its load time, the
// reload that installed it, or a reload refused since.
func TestConfigStatusIsThatOfTheRequestsGeneration(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var refused atomic.Pointer[handlers.ReloadStatus]
	first := &generation{loadedAt: t0}
	second := &generation{loadedAt: t0.Add(time.Hour), reload: &handlers.ReloadStatus{At: t0.Add(time.Hour), OK: true}}
	show := func(g *generation) string {
		b, err := json.Marshal(configStatus{g: g, refused: &refused}.ConfigStatus())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got, want := show(first), `{"loaded_at":"2026-12-05T10:00:00Z"}`; got != want {
		t.Errorf("at start: %s, want %s", got, want)
	}
	refused.Store(&handlers.ReloadStatus{At: t0.Add(time.Minute), Error: "configuration c.yaml has 1 problem(s):\n  - listen: bad"})
	if got, want := show(first), `{"loaded_at":"2026-12-05T10:00:00Z","last_reload":{"at":"2026-12-05T10:01:00Z","ok":false,"error":"configuration c.yaml has 1 problem(s):\n  - listen: bad"}}`; got != want {
		t.Errorf("after a refusal: %s, want %s", got, want)
	}
	if got, want := show(second), `{"loaded_at":"2026-12-05T11:00:00Z","last_reload":{"at":"2026-12-05T11:00:00Z","ok":true}}`; got != want {
		t.Errorf("after a success: %s, want %s", got, want)
	}
	refused.Store(&handlers.ReloadStatus{At: t0.Add(2 * time.Hour), Error: "no"})
	if got, want := show(second), `{"loaded_at":"2026-12-05T11:00:00Z","last_reload":{"at":"2026-12-05T12:00:00Z","ok":false,"error":"no"}}`; got != want {
		t.Errorf("after a later refusal: %s, want %s", got, want)
	}
}
