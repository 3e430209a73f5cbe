package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/transfer"
)

// natsNode is one node of the test's JetStream cluster, a process of its own.
type natsNode struct {
	jstest.Node
	cmd  *exec.Cmd
	logs *syncBuffer
}

func freePort(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(freeAddr(t))
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startNATSCluster runs a 3-node JetStream cluster over loopback routes,
// each node a child process, and waits until JetStream answers (a meta
// leader is elected). It returns the nodes and the client URL list.
func startNATSCluster(t *testing.T) ([]*natsNode, string) {
	t.Helper()
	nodes := make([]*natsNode, 3)
	for i := range nodes {
		nodes[i] = &natsNode{Node: jstest.Node{Name: fmt.Sprintf("n%d", i+1), Port: freePort(t), ClusterPort: freePort(t),
			StoreDir: t.TempDir()}, logs: &syncBuffer{}}
	}
	var urls []string
	for i, n := range nodes {
		for j, o := range nodes {
			if i != j {
				n.Routes = append(n.Routes, o.ClusterPort)
			}
		}
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", n.Port))
		spec, _ := json.Marshal(n.Node)
		n.cmd = exec.Command(os.Args[0])
		n.cmd.Env = append(os.Environ(), natsNodeEnv+"="+string(spec))
		n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = n.cmd.Process.Kill()
			_ = n.cmd.Wait()
			if t.Failed() {
				t.Logf("nats node %s logs:\n%s", n.Name, n.logs.String())
			}
		})
	}
	url := strings.Join(urls, ",")
	js := jetStreamClient(t, url)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return nodes, url
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not ready in 30s: %v", err)
		}
	}
}

func jetStreamClient(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// metricValue reads one series from the /metrics of the process at addr;
// -1 if the series is not there.
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// synthetic is a big source object made of the emulator's seeded bytes.
type synthetic struct {
	key  string
	size int64
	seed uint64
}

func (o synthetic) sum() [32]byte {
	h := sha256.New()
	_, _ = io.Copy(h, ossemu.SyntheticReader(o.size, o.seed, 0))
	return [32]byte(h.Sum(nil))
}

// checkSynthetic is checkS3 for a synthetic object: same bytes, and the
// source identity recorded.
func checkSynthetic(ctx context.Context, b *bed, o synthetic) string {
	out, err := b.s3.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(e2eDst), Key: aws.String(o.key)})
	if err != nil {
		return "not in S3: " + err.Error()
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		return err.Error()
	}
	if n != o.size || [32]byte(h.Sum(nil)) != o.sum() {
		return fmt.Sprintf("bytes differ (%d bytes, want %d)", n, o.size)
	}
	if out.Metadata[transfer.MetaSourceETag] == "" {
		return fmt.Sprintf("source identity missing from metadata %v", out.Metadata)
	}
	return ""
}

const copiedSeries = `oss2s3_objects_total{result="copied",task="e2e"}`

// TestClusterLosesNothingWhenAReplicaAndANATSNodeAreKilled: three oss2s3
// replicas on a 3-node JetStream cluster with R3 streams share the work;
// SIGKILL of one replica (with copies in flight) and of the job stream's
// leader node in the middle of the run loses nothing: every object ends up
// in S3 byte for byte, and no job is left in the stream, held by the
// consumer, or dead-lettered.
func TestClusterLosesNothingWhenAReplicaAndANATSNodeAreKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and 3 oss2s3 processes")
	}
	t.Parallel()
	ctx := context.Background()
	nodes, natsURL := startNATSCluster(t)

	// The emulator's webhooks outlast a leader election, as a trigger's
	// retries do; each source GET takes a little while, so that the run is
	// still going when the kills happen.
	b := newBedWith(t, s3test.StartVersity(t), 2, ossemu.Options{WebhookRetries: 40})
	b.extraConfig = "nats:\n  url: " + natsURL + "\n  replicas: 3\n"
	b.queueConfig = "  ack_wait: 2s\n"
	b.workerConfig = "  giant_threshold: 20MiB\n"
	b.emu.InjectFault(ossemu.Fault{Op: "GetObject", Latency: 20 * time.Millisecond})

	// Three replicas, started at once: they create the R3 streams, the
	// consumer and the checkpoint bucket concurrently. The first also
	// receives the webhooks.
	replicas := []*bed{b}
	for range 2 {
		r := *b
		r.addr, r.dataDir = freeAddr(t), t.TempDir()
		replicas = append(replicas, &r)
	}
	procs := make([]*child, len(replicas))
	for i, r := range replicas {
		r.writeConfig(t, 2)
		procs[i] = launchChild(t, r)
	}
	for i, r := range replicas {
		procs[i].waitReady(t, r.addr)
	}
	js := jetStreamClient(t, natsURL)
	info, err := js.Stream(ctx, transfer.JobStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().Config.Replicas; n != 3 {
		t.Fatalf("job stream has %d replicas, want 3", n)
	}

	rng := rand.New(rand.NewPCG(7, 7))
	var small []sample
	var big []synthetic
	putSmall := func(from, to int) {
		for i := from; i < to; i++ {
			s := sample{key: fmt.Sprintf("small/%03d.bin", i), data: make([]byte, 512+rng.IntN(4096)), ctype: "application/octet-stream"}
			for j := range s.data {
				s.data[j] = byte(rng.Uint32())
			}
			if _, err := b.emu.PutObject(e2eSrc, s.key, s.data, http.Header{"Content-Type": {s.ctype}}); err != nil {
				t.Fatal(err)
			}
			small = append(small, s)
		}
	}
	putBig := func(key string, size int64) {
		o := synthetic{key: key, size: size, seed: uint64(len(big) + 1)}
		if _, err := b.emu.PutSynthetic(e2eSrc, o.key, o.size, o.seed, http.Header{"Content-Type": {"application/octet-stream"}}); err != nil {
			t.Fatal(err)
		}
		big = append(big, o)
	}

	// Phase 1: work for everyone.
	putSmall(0, 200)
	putBig("multipart/1.bin", 11<<20)
	putBig("multipart/2.bin", 13<<20+5)
	for i, r := range replicas {
		waitUntil(t, fmt.Sprintf("replica %d to copy something", i), 60*time.Second, func() bool {
			return metricValue(t, r.addr, copiedSeries) > 0
		})
	}

	// The kills, mid-run: a replica with copies in hand, then the node
	// leading the job stream.
	victim := replicas[1]
	waitUntil(t, "the replica to kill to hold a copy", 30*time.Second, func() bool {
		return metricValue(t, victim.addr, "oss2s3_jobs_in_flight") > 0
	})
	procs[1].kill(t)
	si, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.Cluster == nil || si.Cluster.Leader == "" {
		t.Fatalf("job stream has no leader: %+v", si.Cluster)
	}
	leftBefore := si.State.Msgs
	killed := false
	for _, n := range nodes {
		if n.Name == si.Cluster.Leader {
			if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = n.cmd.Wait()
			killed = true
		}
	}
	if !killed {
		t.Fatalf("leader %q is not one of the nodes", si.Cluster.Leader)
	}
	if leftBefore == 0 {
		t.Fatal("the run was over before the kills; nothing was proven")
	}
	t.Logf("killed replica 1 and NATS node %s (the job stream's leader) with %d jobs left", si.Cluster.Leader, leftBefore)

	// Phase 2: more work on the degraded cluster, a giant object included
	// (split into part jobs shared by the surviving replicas).
	putSmall(200, 300)
	putBig("multipart/3.bin", 11<<20)
	putBig("giant/1.bin", 48<<20+3)

	var missing []string
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		missing = missing[:0]
		for _, s := range small {
			if p := checkS3(ctx, b, s); p != "" {
				missing = append(missing, s.key+": "+p)
			}
		}
		for _, o := range big {
			if p := checkSynthetic(ctx, b, o); p != "" {
				missing = append(missing, o.key+": "+p)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			ci, _ := jobConsumerOf(ctx, js)
			t.Fatalf("%d objects not in S3 after 90s, e.g. %s; consumer %+v", len(missing), missing[0], ci)
		}
	}

	// No job left behind: the work queue is empty, the consumer holds
	// nothing, nothing was dead-lettered, and every webhook was accepted.
	cons, err := js.Consumer(ctx, transfer.JobStream, transfer.WorkerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	var ci *jetstream.ConsumerInfo
	var jobs uint64
	waitUntil(t, "an empty job stream", 30*time.Second, func() bool {
		if ci, err = cons.Info(ctx); err != nil {
			return false
		}
		if si, err = info.Info(ctx); err != nil {
			return false
		}
		jobs = si.State.Msgs
		return ci.NumPending == 0 && ci.NumAckPending == 0 && jobs == 0
	})
	dlq, err := js.Stream(ctx, transfer.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := dlq.CachedInfo().State.Msgs; n != 0 {
		t.Fatalf("%d dead letters", n)
	}
	if errs := b.emu.WebhookErrors(); len(errs) > 0 {
		t.Fatalf("webhook deliveries failed: %v", errs)
	}
	var total float64
	for i, r := range replicas {
		if i == 1 {
			continue
		}
		total += metricValue(t, r.addr, copiedSeries)
	}
	t.Logf("%d objects (%d small, %d multipart or giant) verified in S3; the surviving replicas copied %v",
		len(small)+len(big), len(small), len(big), total)

	// The survivors stop cleanly.
	for i := range replicas {
		if i != 1 {
			stopChild(t, procs[i])
		}
	}
}

func jobConsumerOf(ctx context.Context, js jetstream.JetStream) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(ctx, transfer.JobStream, transfer.WorkerConsumer)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}
