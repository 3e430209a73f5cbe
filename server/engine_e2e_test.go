package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/internal/testkit"
)

// TestFaultsEndToEnd: a 503 storm and bodies cut short on the source, odd
// keys, a real S3 server: everything arrives intact, nothing is left open.
func TestFaultsEndToEnd(t *testing.T) {
	t.Parallel()
	b := newBed(t, s3test.StartVersity(t), 4)
	b.start(t)
	big := make([]byte, 17<<20)
	_, _ = rand.Read(big)
	long := "long/" + strings.Repeat(strings.Repeat("k", 200)+"/", 5) + "end.txt"
	s := []sample{
		{key: "big/cut-and-throttled.bin", data: big, ctype: "application/octet-stream"},
		{key: "small/throttled.txt", data: []byte("throttled"), ctype: "text/plain"},
		// A folder marker: S3 allows bytes under a key ending in "/", but
		// versitygw's posix backend does not, so it is empty here.
		{key: "dir/trailing/", data: nil, ctype: "application/x-directory"},
		{key: long, data: []byte("a key of more than 1,000 bytes"), ctype: "text/plain"},
		{key: "sp ace/ünï/100%/a+b/c=d&e.txt", data: []byte("odd characters"), ctype: "text/plain"},
	}
	if len(long) < 1000 {
		t.Fatalf("long key is %d bytes", len(long))
	}
	// Every GET fails with 503 three times (a throttling storm), and the
	// first two ranged GETs of the big object are cut short.
	b.emu.InjectFault(ossemu.Fault{Op: "GetObject", Status: 503, Code: "ServiceUnavailable", Times: 3})
	b.emu.InjectFault(ossemu.Fault{Op: "GetObject", Key: s[0].key, CutBodyAfter: 1000, Times: 2})
	upload(t, b.ossBucket(t), s)
	waitInS3(t, b, s)
	waitMetric(t, b.addr, `oss2s3_objects_total{result="retried",task="e2e"}`)
	assertNoOpenUploads(t, b)
}

func assertNoOpenUploads(t *testing.T, b *bed) {
	t.Helper()
	out, err := b.s3.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(e2eDst)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) > 0 {
		t.Fatalf("%d multipart uploads left open, e.g. %s", len(out.Uploads), aws.ToString(out.Uploads[0].Key))
	}
}

// child is oss2s3 running as a separate process.
type child struct {
	cmd  *exec.Cmd
	logs *testkit.SyncBuffer
}

func startChild(t *testing.T, b *bed) *child {
	t.Helper()
	c := launchChild(t, b)
	c.waitReady(t, b.addr)
	return c
}

// launchChild starts oss2s3 on b's configuration without waiting for it.
func launchChild(t *testing.T, b *bed) *child {
	t.Helper()
	c := &child{logs: &testkit.SyncBuffer{}}
	c.cmd = exec.Command(os.Args[0], "serve", "--config", b.cfgPath)
	c.cmd.Env = append(os.Environ(), childEnv+"=1",
		"WEBHOOK_SECRET="+e2eSecret, "OSS_AK="+e2eAK, "OSS_SK="+e2eSK,
		"S3_AK="+b.s3.AccessKey, "S3_SK="+b.s3.SecretKey)
	c.cmd.Env = append(c.cmd.Env, b.childEnv...)
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		if t.Failed() {
			t.Logf("child %d logs:\n%s", c.cmd.Process.Pid, c.logs.String())
		}
	})
	return c
}

// kill ends the child as a crash does: SIGKILL, no shutdown. (Its logs
// are printed if the test fails: launchChild's cleanup.)
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

// waitReady waits until the child at addr answers /readyz with 200. The
// wait is long because readiness includes creating the streams and
// key-value buckets: on a 3-node cluster each is a meta-leader proposal
// replicated to three stores, and on a loaded CI machine under -race three
// replicas doing it at once took 16-25 s (the CI failure of 2026-12-05).
// A child that is never ready still fails the test.
func (c *child) waitReady(t *testing.T, addr string) {
	t.Helper()
	if !testkit.Eventually(90*time.Second, 20*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		t.Fatalf("child not ready:\n%s", c.logs.String())
	}
}

// TestWorkerKilledBetweenPartsIsResumedByAnother: a process is killed with
// SIGKILL after three of six parts; the next process continues from part
// four (the source is read once per part, not again from the start), and
// the object in S3 is complete and intact.
func TestWorkerKilledBetweenPartsIsResumedByAnother(t *testing.T) {
	t.Parallel()
	ns := jstest.Start(t) // outside the killed process, as a NATS cluster is
	b := newBed(t, s3test.StartVersity(t), 1)
	b.extraConfig = "nats:\n  url: " + ns.ClientURL() + "\n"
	b.queueConfig = "  ack_wait: 2s\n"
	b.workerConfig = "  parts_in_flight: 1\n"
	b.writeConfig(t, 1)

	data := make([]byte, 28<<20) // 6 parts of 5 MiB
	_, _ = rand.Read(data)
	s := []sample{{key: "killed/mid-copy.bin", data: data, ctype: "application/octet-stream"}}
	// The fourth ranged GET hangs, so the first process is caught between
	// parts 3 and 4.
	b.emu.InjectFault(ossemu.Fault{Op: "GetObject", Key: s[0].key, Skip: 3, Times: 1, Latency: time.Minute})

	first := startChild(t, b)
	upload(t, b.ossBucket(t), s)
	testkit.WaitFor(t, 30*time.Second, "the copy to reach part 4", func() bool { return b.emu.Requests()["GetObject"] >= 4 })
	first.kill(t)

	startChild(t, b)
	waitInS3(t, b, s)
	// 3 parts by the first process, the GET it died in, 3 by the second.
	if n := b.emu.Requests()["GetObject"]; n != 7 {
		t.Fatalf("%d GETs of the source, want 7 (a restart from scratch would take 10)", n)
	}
	assertNoOpenUploads(t, b)
}

// TestGiantObjectEndToEnd: an object over the giant threshold is copied as
// part jobs by two replicas on one NATS server.
func TestGiantObjectEndToEnd(t *testing.T) {
	t.Parallel()
	ns := jstest.Start(t)
	b := newBed(t, s3test.StartVersity(t), 2)
	b.extraConfig = "nats:\n  url: " + ns.ClientURL() + "\n"
	b.workerConfig = "  giant_threshold: 20MiB\n"
	b.writeConfig(t, 2)
	first := startChild(t, b)
	// A second replica: same configuration, another port.
	other := *b
	other.addr = freeAddr(t)
	other.writeConfig(t, 2)
	second := startChild(t, &other)
	// Each part's read takes a while: neither replica (2 workers, 2
	// messages pulled ahead) can take every part for itself.
	b.emu.InjectFault(ossemu.Fault{API: "OSS", Op: "GetObject", Bucket: e2eSrc, Key: "giant/synthetic.bin", Latency: 300 * time.Millisecond})

	const size = 64<<20 + 3
	info, err := b.emu.PutSynthetic(e2eSrc, "giant/synthetic.bin", size, 42, http.Header{"Content-Type": {"application/octet-stream"}})
	if err != nil {
		t.Fatal(err)
	}
	if !testkit.Eventually(60*time.Second, 100*time.Millisecond, func() bool {
		var out *s3.GetObjectOutput
		if out, err = b.s3.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(e2eDst), Key: aws.String("giant/synthetic.bin")}); err != nil {
			return false
		}
		var got bytes.Buffer
		_, err = got.ReadFrom(out.Body)
		out.Body.Close()
		var want bytes.Buffer
		_, _ = want.ReadFrom(ossemu.SyntheticReader(size, 42, 0))
		if err != nil || !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("giant copy differs (%d bytes, want %d): %v", got.Len(), size, err)
		}
		if out.Metadata["oss2s3-source-etag"] != info.ETag {
			t.Fatalf("source identity %v, want etag %s", out.Metadata, info.ETag)
		}
		return true
	}) {
		t.Fatalf("giant object not copied: %v", err)
	}
	assertNoOpenUploads(t, b)
	// Its parts were spread over the cluster: both replicas copied some.
	for i, c := range []*child{first, second} {
		if n := strings.Count(c.logs.String(), `"msg":"giant object: part copied"`); n == 0 {
			t.Errorf("replica %d copied no part of the giant object", i+1)
		}
	}
}

// TestObjectKindsEndToEnd: symlinks (the target's bytes), appendable
// objects (copied again after an append), archived objects (restored, then
// copied), tags, and deletes propagated only for copies oss2s3 wrote.
func TestObjectKindsEndToEnd(t *testing.T) {
	t.Parallel()
	b := newBed(t, s3test.StartVersity(t), 4)
	b.taskOptions = "      deletes: propagate\n      archive: restore\n      copy_tags: true\n"
	b.writeConfig(t, 4)
	b.start(t)
	bk := b.ossBucket(t)
	ctx := context.Background()

	target := sample{key: "kinds/target.txt", data: []byte("the target's bytes"), ctype: "text/plain"}
	upload(t, bk, []sample{target})
	// A link has its own content headers (OSS HeadObject documentation).
	if err := bk.PutSymlink("kinds/link", target.key, oss.ContentType("text/plain")); err != nil {
		t.Fatal(err)
	}
	next, err := bk.AppendObject("kinds/log", strings.NewReader("line 1\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := bk.PutObject("kinds/cold.bin", strings.NewReader("archived bytes"), oss.ObjectStorageClass(oss.StorageArchive),
		oss.ContentType("application/octet-stream")); err != nil {
		t.Fatal(err)
	}
	if err := bk.PutObject("kinds/tagged.txt", strings.NewReader("tagged"), oss.ContentType("text/plain"),
		oss.SetTagging(oss.Tagging{Tags: []oss.Tag{{Key: "team", Value: "media"}, {Key: "env", Value: "prod"}}})); err != nil {
		t.Fatal(err)
	}
	waitInS3(t, b, []sample{
		target,
		{key: "kinds/link", data: target.data, ctype: "text/plain"},
		{key: "kinds/cold.bin", data: []byte("archived bytes"), ctype: "application/octet-stream"},
	})
	waitBody(t, b, "kinds/log", "line 1\n")
	waitBody(t, b, "kinds/tagged.txt", "tagged")
	tags, err := b.s3.Client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(e2eDst), Key: aws.String("kinds/tagged.txt")})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range tags.TagSet {
		got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if got["team"] != "media" || got["env"] != "prod" {
		t.Fatalf("tags %v", got)
	}

	// An append is a new version of the object: copied again.
	if _, err := bk.AppendObject("kinds/log", strings.NewReader("line 2\n"), next); err != nil {
		t.Fatal(err)
	}
	waitBody(t, b, "kinds/log", "line 1\nline 2\n")

	// Deletes: our copy goes; an object oss2s3 did not write stays.
	if _, err := b.s3.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(e2eDst), Key: aws.String("kinds/foreign.txt"),
		Body: strings.NewReader("not ours")}); err != nil {
		t.Fatal(err)
	}
	if err := bk.DeleteObject(target.key); err != nil {
		t.Fatal(err)
	}
	b.emu.DeleteObject(e2eSrc, "kinds/foreign.txt") // fires ObjectRemoved for a key we never copied
	if !testkit.Eventually(30*time.Second, 50*time.Millisecond, func() bool {
		return strings.HasPrefix(checkS3(ctx, b, target), "not in S3")
	}) {
		t.Fatal("the copy of a deleted object was not deleted")
	}
	waitMetric(t, b.addr, `oss2s3_objects_total{result="deleted",task="e2e"} 1`)
	waitMetric(t, b.addr, `oss2s3_objects_total{result="deferred",task="e2e"}`)
	if _, err := b.s3.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(e2eDst), Key: aws.String("kinds/foreign.txt")}); err != nil {
		t.Fatalf("an object oss2s3 did not write was deleted: %v", err)
	}
}

func waitBody(t *testing.T, b *bed, key, want string) {
	t.Helper()
	var err error
	if !testkit.Eventually(30*time.Second, 50*time.Millisecond, func() bool {
		var out *s3.GetObjectOutput
		if out, err = b.s3.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(e2eDst), Key: aws.String(key)}); err != nil {
			return false
		}
		var got bytes.Buffer
		_, _ = got.ReadFrom(out.Body)
		out.Body.Close()
		return got.String() == want
	}) {
		t.Fatalf("%s: S3 never held %q (%v)", key, want, err)
	}
}
