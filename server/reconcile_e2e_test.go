package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

const e2eAdminToken = "e2e-admin-token-0123456789"

func adminDo(t *testing.T, b *bed, method, path, token, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+b.addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

func waitReconcile(t *testing.T, b *bed, id string) reconcile.RunState {
	t.Helper()
	var st reconcile.RunState
	var data []byte
	if !testkit.Eventually(60*time.Second, 100*time.Millisecond, func() bool {
		var code int
		code, data = adminDo(t, b, http.MethodGet, "/v1/reconciles/"+id, e2eAdminToken, "")
		if code != http.StatusOK {
			t.Fatalf("GET run: %d %s", code, data)
		}
		st = reconcile.RunState{}
		if err := json.Unmarshal(data, &st); err != nil {
			t.Fatal(err)
		}
		return st.Done
	}) {
		t.Fatalf("run not done: %s", data)
	}
	return st
}

// Objects that no event announced (written before the trigger existed) are
// found by a reconcile run and copied to versitygw; a foreign object only
// at the destination is reported, and deleted only by sync.
func TestReconcileEndToEnd(t *testing.T) {
	b := newBed(t, s3test.StartVersity(t), 4)
	b.extraConfig = "admin:\n  tokens: [\"" + e2eAdminToken + "\"]\n"
	b.writeConfig(t, 4)
	b.emu.SetWebhook("", "") // no events: only the reconciler can find these
	ctx := context.Background()
	want := putUnannounced(t, b)
	b.start(t)

	badReconcileRequestsChangeNothing(t, b)

	id := startRun(t, b, "reconcile", `{"mode":"report"}`)
	st := waitReconcile(t, b, id)
	if st.Error != "" || st.Listed != 5 || st.Missing != 5 || st.Extraneous != 1 || st.Queued != 0 {
		t.Fatalf("report run: %+v", st)
	}
	// Its progress: the whole bucket listed, out of the bucket's stat.
	if p := st.Progress; p == nil || p.Phase != reconcile.PhaseDone || p.Listing.ObjectsTotal != 5 || p.Listing.Objects != 5 ||
		p.Percent == nil || *p.Percent != 100 || st.SourceBytes != st.ListedBytes {
		t.Fatalf("report run's progress: %+v (%+v)", st.Progress, st)
	}
	code, data := adminDo(t, b, http.MethodGet, "/v1/reconciles/"+id+"/report", e2eAdminToken, "")
	if code != http.StatusOK || strings.Count(string(data), "\n") != 6 || !strings.Contains(string(data), `"key":"stray.txt","result":"extraneous"`) {
		t.Fatalf("report: %d\n%s", code, data)
	}
	assertTaskShowsRun(t, b, id)

	// The CLI against the gateway, in copy mode: the workers copy.
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"oss2s3", "reconcile", "--task", "e2e", "--gateway", "http://" + b.addr, "--token", e2eAdminToken},
		env(nil), nil, &out, &errOut)
	if err != nil || !strings.Contains(out.String(), "missing=5") || !strings.Contains(out.String(), "queued=5") {
		t.Fatalf("oss2s3 reconcile: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "listing 5/5") || !strings.Contains(errOut.String(), "% ") {
		t.Fatalf("oss2s3 reconcile's progress bar has no percentage or listing total:\n%s", errOut.String())
	}
	waitContents(t, b, want, 30*time.Second)

	// Sync removes the stray object and nothing else.
	st = waitReconcile(t, b, startRun(t, b, "sync", `{"mode":"sync","max_deletes":5}`))
	if st.Error != "" || st.Deleted != 1 || st.Missing != 0 || st.Different != 0 {
		t.Fatalf("sync run: %+v", st)
	}
	onlyTheStrayIsGone(t, b, want)
}

// putUnannounced writes five objects to the source with its webhook off,
// and one object, stray.txt, only to the destination. It returns the
// source's objects, key -> content.
func putUnannounced(t *testing.T, b *bed) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := range 5 {
		k := fmt.Sprintf("old/%d.txt", i)
		want[k] = strings.Repeat(k, 100+i)
		if _, err := b.emu.PutObject(e2eSrc, k, []byte(want[k]), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.s3.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(e2eDst), Key: aws.String("stray.txt"),
		Body: strings.NewReader("not from oss")}); err != nil {
		t.Fatal(err)
	}
	return want
}

// onlyTheStrayIsGone checks that stray.txt is gone from the destination
// and every key of want is still there.
func onlyTheStrayIsGone(t *testing.T, b *bed, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	_, err := b.s3.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(e2eDst), Key: aws.String("stray.txt")})
	var nf interface{ ErrorCode() string }
	if err == nil || !errors.As(err, &nf) {
		t.Fatalf("stray.txt survived sync: %v", err)
	}
	for k := range want {
		if _, err := b.s3.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(e2eDst), Key: aws.String(k)}); err != nil {
			t.Fatalf("sync deleted %s: %v", k, err)
		}
	}
}

// startRun starts a run of task e2e with the options in body (what names
// it in a failure) and returns its id.
func startRun(t *testing.T, b *bed, what, body string) string {
	t.Helper()
	code, data := adminDo(t, b, http.MethodPost, "/v1/tasks/e2e/reconcile", e2eAdminToken, body)
	if code != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", what, code, data)
	}
	var started struct{ ID string }
	_ = json.Unmarshal(data, &started)
	return started.ID
}

// waitContents waits until S3 holds every key of want with its content.
func waitContents(t *testing.T, b *bed, want map[string]string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for k, v := range want {
		var err error
		if !testkit.Eventually(time.Until(deadline), 100*time.Millisecond, func() bool {
			var o *s3.GetObjectOutput
			if o, err = b.s3.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(e2eDst), Key: aws.String(k)}); err != nil {
				return false
			}
			got, _ := io.ReadAll(o.Body)
			o.Body.Close()
			if string(got) != v {
				t.Fatalf("%s: wrong content", k)
			}
			return true
		}) {
			t.Fatalf("%s never copied: %v", k, err)
		}
	}
}

// badReconcileRequestsChangeNothing: wrong tokens, options and tasks are
// refused, and an unknown run is not found.
func badReconcileRequestsChangeNothing(t *testing.T, b *bed) {
	t.Helper()
	for _, c := range []struct {
		path, token, body string
		code              int
	}{
		{"/v1/tasks/e2e/reconcile", "", `{}`, http.StatusUnauthorized},
		{"/v1/tasks/e2e/reconcile", "wrong", `{}`, http.StatusUnauthorized},
		{"/v1/tasks/e2e/reconcile", e2eAdminToken, `{"mode":"bogus"}`, http.StatusBadRequest},
		{"/v1/tasks/e2e/reconcile", e2eAdminToken, `{"verify":"md5"}`, http.StatusBadRequest},
		{"/v1/tasks/e2e/reconcile", e2eAdminToken, `{"modes":"report"}`, http.StatusBadRequest},
		{"/v1/tasks/e2e/reconcile", e2eAdminToken, `{"prefixes":[""]}`, http.StatusBadRequest},
		{"/v1/tasks/nope/reconcile", e2eAdminToken, `{}`, http.StatusNotFound},
	} {
		if code, data := adminDo(t, b, http.MethodPost, c.path, c.token, c.body); code != c.code {
			t.Errorf("POST %s %s: %d %s, want %d", c.path, c.body, code, data, c.code)
		}
	}
	if code, _ := adminDo(t, b, http.MethodGet, "/v1/reconciles/no-such-run", e2eAdminToken, ""); code != http.StatusNotFound {
		t.Errorf("GET unknown run: %d, want 404", code)
	}
}

// `oss2s3 reconcile --local` diffs in this process and writes its report
// to a file; `oss2s3 sync --local` copies what differs with this process's
// workers and returns when the queue is empty.
func TestReconcileAndSyncLocal(t *testing.T) {
	b := newBed(t, s3test.StartVersity(t), 2)
	b.emu.SetWebhook("", "")
	ctx := context.Background()
	for i := range 3 {
		if _, err := b.emu.PutObject(e2eSrc, fmt.Sprintf("k%d", i), []byte(strings.Repeat("x", i+1)), nil); err != nil {
			t.Fatal(err)
		}
	}
	getenv := env(map[string]string{"WEBHOOK_SECRET": e2eSecret, "OSS_AK": e2eAK, "OSS_SK": e2eSK,
		"S3_AK": b.s3.AccessKey, "S3_SK": b.s3.SecretKey})
	report := t.TempDir() + "/report.jsonl"
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"oss2s3", "reconcile", "--local", "--quiet", "--config", b.cfgPath, "--task", "e2e", "--mode", "report", "--report", report},
		getenv, nil, &out, &errOut)
	if err != nil || !strings.Contains(out.String(), "listed=3 dst_listed=0 missing=3") {
		t.Fatalf("reconcile --local: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	data, err := os.ReadFile(report)
	if err != nil || strings.Count(string(data), `"result":"missing"`) != 3 {
		t.Fatalf("report file: %v\n%s", err, data)
	}

	out.Reset()
	err = run(ctx, []string{"oss2s3", "sync", "--local", "--quiet", "--config", b.cfgPath, "--task", "e2e"}, getenv, nil, &out, &errOut)
	if err != nil || !strings.Contains(out.String(), "queued=3") {
		t.Fatalf("sync --local: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	for i := range 3 {
		if _, err := b.s3.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(e2eDst), Key: aws.String(fmt.Sprintf("k%d", i))}); err != nil {
			t.Fatalf("k%d not copied by sync: %v", i, err)
		}
	}
}

// A replica is SIGKILLed in the middle of a reconcile run's shard (its
// listing hangs): the shard is redelivered to the next replica after
// ack_wait, and every object the run should copy arrives.
func TestReconcileReplicaKilledMidRun(t *testing.T) {
	ns := jstest.Start(t)
	b := newBed(t, s3test.StartVersity(t), 2)
	b.extraConfig = "nats:\n  url: " + ns.ClientURL() + "\nadmin:\n  tokens: [\"" + e2eAdminToken + "\"]\n"
	b.queueConfig = "  ack_wait: 2s\n"
	b.writeConfig(t, 2)
	b.emu.SetWebhook("", "")
	var s []sample
	for i := range 6 {
		k := fmt.Sprintf("d%d/obj-%d.txt", i%2, i)
		s = append(s, sample{key: k, data: []byte(strings.Repeat(k, 50)), ctype: "application/octet-stream"})
		if _, err := b.emu.PutObject(e2eSrc, k, s[i].data, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The run's plan probes the source (see reconcile.Split: as many
	// requests as here); the first listing after them, a shard's, hangs in
	// the first process.
	src, err := transfer.NewOSSSource(transfer.SourceConfig{Endpoint: b.ossURL, Bucket: e2eSrc, AccessKeyID: e2eAK, AccessKeySecret: e2eSK}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reconcile.Split(context.Background(), &reconcile.OSSLister{Bucket: src.Bucket()}, reconcile.Range{}, 32); err != nil {
		t.Fatal(err)
	}
	probes := b.emu.Requests()["ListObjectsV2"]
	b.emu.ResetRequests()
	b.emu.InjectFault(ossemu.Fault{API: "OSS", Op: "ListObjectsV2", Skip: probes, Times: 1, Latency: time.Minute})
	first := startChild(t, b)
	code, data := adminDo(t, b, http.MethodPost, "/v1/tasks/e2e/reconcile", e2eAdminToken, `{}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST reconcile: %d %s", code, data)
	}
	testkit.WaitFor(t, 30*time.Second, "a shard to start listing", func() bool { return b.emu.Requests()["ListObjectsV2"] >= probes+1 })
	first.kill(t)
	startChild(t, b)
	waitInS3(t, b, s)
}

// `oss2s3 sync` against a gateway returns only when every copy its run
// queued has ended, a giant object's part jobs included: every object is
// in S3, byte for byte, the moment it returns. An object whose copy fails
// for good makes it exit with an error, after the others are copied.
func TestSyncOnAGatewayWaitsForTheCopies(t *testing.T) {
	b := newBed(t, s3test.StartVersity(t), 4)
	b.extraConfig = "admin:\n  tokens: [\"" + e2eAdminToken + "\"]\n"
	b.queueConfig = "  max_deliver: 2\n"
	b.workerConfig = "  giant_threshold: 10MiB\n"
	b.writeConfig(t, 4)
	b.emu.SetWebhook("", "") // no events: only the run copies
	ctx := context.Background()
	var s []sample
	for i := range 6 {
		k := fmt.Sprintf("one/%d.txt", i)
		s = append(s, sample{key: k, data: []byte(strings.Repeat(k, 200+i)), ctype: "application/octet-stream"})
		if _, err := b.emu.PutObject(e2eSrc, k, s[i].data, nil); err != nil {
			t.Fatal(err)
		}
	}
	const giantSize = 15 << 20 // 3 part jobs of 5 MiB
	if _, err := b.emu.PutSynthetic(e2eSrc, "one/giant.bin", giantSize, 42, nil); err != nil {
		t.Fatal(err)
	}
	giant, err := io.ReadAll(ossemu.SyntheticReader(giantSize, 42, 0))
	if err != nil {
		t.Fatal(err)
	}
	s = append(s, sample{key: "one/giant.bin", data: giant, ctype: "application/octet-stream"})
	// Copies that take longer than the diff (which reads no object): a
	// sync that returned with the diff would find them missing.
	b.emu.InjectFault(ossemu.Fault{API: "OSS", Op: "GetObject", Key: "one/3.txt", Latency: 3 * time.Second, Times: 1})
	b.emu.InjectFault(ossemu.Fault{API: "OSS", Op: "GetObject", Key: "one/giant.bin", Latency: 3 * time.Second, Times: 1})
	b.start(t)

	sync := func() (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, []string{"oss2s3", "sync", "--task", "e2e", "--gateway", "http://" + b.addr, "--token", e2eAdminToken},
			env(nil), nil, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	out, errOut, err := sync()
	if err != nil || !strings.Contains(out, "queued=7 copied=7 skipped=0 failed=0") {
		t.Fatalf("oss2s3 sync: %v\n%s\n%s", err, out, errOut)
	}
	for _, o := range s { // right now: no waiting
		if problem := checkS3(ctx, b, o); problem != "" {
			t.Errorf("%s when sync returned: %s", o.key, problem)
		}
	}
	if !strings.Contains(errOut, "copies 7/7 (copied 7, skipped 0, failed 0)") {
		t.Errorf("progress line does not show the copies:\n%s", errOut)
	}

	// One object fails every attempt; the others still arrive, and sync
	// says it failed.
	var more []sample
	for i := range 3 {
		k := fmt.Sprintf("two/%d.txt", i)
		more = append(more, sample{key: k, data: []byte(strings.Repeat(k, 300+i)), ctype: "application/octet-stream"})
		if _, err := b.emu.PutObject(e2eSrc, k, more[i].data, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.emu.PutObject(e2eSrc, "two/bad.txt", []byte("never copied"), nil); err != nil {
		t.Fatal(err)
	}
	b.emu.InjectFault(ossemu.Fault{API: "OSS", Op: "GetObject", Key: "two/bad.txt", Status: http.StatusInternalServerError})
	b.emu.InjectFault(ossemu.Fault{API: "OSS", Op: "GetObject", Key: "two/1.txt", Latency: 3 * time.Second, Times: 1})
	out, errOut, err = sync()
	if err == nil || !strings.Contains(err.Error(), "1 copies failed for good") ||
		!strings.Contains(out, "queued=4 copied=3 skipped=0 failed=1") {
		t.Fatalf("oss2s3 sync with a failing copy: %v\n%s\n%s", err, out, errOut)
	}
	for _, o := range more {
		if problem := checkS3(ctx, b, o); problem != "" {
			t.Errorf("%s when sync returned: %s", o.key, problem)
		}
	}
	code, data := adminDo(t, b, http.MethodGet, "/v1/dlq?task=e2e", e2eAdminToken, "")
	if code != http.StatusOK || !strings.Contains(string(data), "two/bad.txt") {
		t.Errorf("dead-letter queue: %d %s", code, data)
	}
}

// `oss2s3 reconcile --local` of a task with a prefix_list in another OSS
// bucket reads it through the task's own OSS client, each time it runs;
// a missing list stops the run and says which.
func TestReconcileLocalReadsThePrefixListObject(t *testing.T) {
	b := newBed(t, s3test.StartVersity(t), 2)
	b.emu.SetWebhook("", "")
	b.emu.CreateBucket("lists")
	cfg, err := os.ReadFile(b.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	withList := strings.Replace(string(cfg), "      access_key_secret: ${OSS_SK}\n",
		"      access_key_secret: ${OSS_SK}\n      prefix_list: oss://lists/dth/prefixes.txt\n", 1)
	if err := os.WriteFile(b.cfgPath, []byte(withList), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a/1", "b/1", "b/2", "c/1"} {
		if _, err := b.emu.PutObject(e2eSrc, k, []byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	getenv := env(map[string]string{"WEBHOOK_SECRET": e2eSecret, "OSS_AK": e2eAK, "OSS_SK": e2eSK,
		"S3_AK": b.s3.AccessKey, "S3_SK": b.s3.SecretKey})
	reconcile := func() (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"oss2s3", "reconcile", "--local", "--quiet", "--config", b.cfgPath, "--task", "e2e", "--mode", "report"},
			getenv, nil, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := reconcile(); err == nil || !strings.Contains(err.Error()+out, "prefix list oss://lists/dth/prefixes.txt: no such file or object") {
		t.Fatalf("no list yet: %v\n%s", err, out)
	}
	for list, want := range map[string]string{"# DTH\na/\n": "listed=1 ", "b/\nc/\n": "listed=3 "} {
		if _, err := b.emu.PutObject("lists", "dth/prefixes.txt", []byte(list), nil); err != nil {
			t.Fatal(err)
		}
		if out, err := reconcile(); err != nil || !strings.Contains(out, want) {
			t.Fatalf("list %q: %v\n%s", list, err, out)
		}
	}
}

// assertTaskShowsRun: GET /v1/tasks names the task with its queue and the
// run id as its latest reconcile, and GET /v1/reconciles lists that run
// first.
func assertTaskShowsRun(t *testing.T, b *bed, id string) {
	t.Helper()
	code, data := adminDo(t, b, http.MethodGet, "/v1/tasks", e2eAdminToken, "")
	var tasks struct {
		Tasks []struct {
			Name          string `json:"name"`
			Jobs          *uint64
			DeadLetters   *uint64 `json:"dead_letters"`
			LastReconcile *struct {
				ID string `json:"id"`
			} `json:"last_reconcile"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(data, &tasks); code != http.StatusOK || err != nil || len(tasks.Tasks) != 1 {
		t.Fatalf("GET /v1/tasks: %d %s (%v)", code, data, err)
	}
	tk := tasks.Tasks[0]
	if tk.Name != "e2e" || tk.Jobs == nil || tk.DeadLetters == nil || tk.LastReconcile == nil || tk.LastReconcile.ID != id {
		t.Errorf("GET /v1/tasks: %s, want task e2e with its queue and last run %s", data, id)
	}
	code, data = adminDo(t, b, http.MethodGet, "/v1/reconciles?task=e2e&limit=1", e2eAdminToken, "")
	if code != http.StatusOK || !strings.HasPrefix(string(data), `{"runs":[{"id":"`+id+`"`) {
		t.Errorf("GET /v1/reconciles?task=e2e&limit=1: %d %s, want run %s", code, data, id)
	}
}
