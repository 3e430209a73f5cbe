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
	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer"
)

// natsNode is one node of the test's JetStream cluster, a process of its own.
type natsNode struct {
	jstest.Node
	cmd  *exec.Cmd
	logs *testkit.SyncBuffer
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
			StoreDir: t.TempDir()}, logs: &testkit.SyncBuffer{}}
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
	var err error
	if !testkit.Eventually(30*time.Second, 50*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = js.AccountInfo(ctx)
		cancel()
		return err == nil
	}) {
		t.Fatalf("JetStream cluster not ready in 30s: %v", err)
	}
	return nodes, url
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

// notInS3 says, for each of small and big not yet in S3 as it should be,
// its key and what is wrong.
func notInS3(ctx context.Context, b *bed, small []sample, big []synthetic) []string {
	var missing []string
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
	return missing
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

	replicas, procs := startReplicas(t, b, 3)
	js := jetStreamClient(t, natsURL)
	info, err := js.Stream(ctx, transfer.JobStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().Config.Replicas; n != 3 {
		t.Fatalf("job stream has %d replicas, want 3", n)
	}

	// Phase 1: work for everyone.
	load := &clusterLoad{t: t, b: b, rng: rand.New(rand.NewPCG(7, 7))}
	load.putSmall(0, 200)
	load.putBig("multipart/1.bin", 11<<20)
	load.putBig("multipart/2.bin", 13<<20+5)
	for i, r := range replicas {
		testkit.WaitFor(t, 60*time.Second, fmt.Sprintf("replica %d to copy something", i), func() bool {
			return metricValue(t, r.addr, copiedSeries) > 0
		})
	}

	// The kills, mid-run: a replica with copies in hand, then the node
	// leading the job stream.
	victim := replicas[1]
	testkit.WaitFor(t, 30*time.Second, "the replica to kill to hold a copy", func() bool {
		return metricValue(t, victim.addr, "oss2s3_jobs_in_flight") > 0
	})
	procs[1].kill(t)
	leader, leftBefore := killStreamLeader(t, nodes, info)
	if leftBefore == 0 {
		t.Fatal("the run was over before the kills; nothing was proven")
	}
	t.Logf("killed replica 1 and NATS node %s (the job stream's leader) with %d jobs left", leader, leftBefore)

	// Phase 2: more work on the degraded cluster, a giant object included
	// (split into part jobs shared by the surviving replicas).
	load.putSmall(200, 300)
	load.putBig("multipart/3.bin", 11<<20)
	load.putBig("giant/1.bin", 48<<20+3)

	var missing []string
	if !testkit.Eventually(90*time.Second, 100*time.Millisecond, func() bool {
		missing = notInS3(ctx, b, load.small, load.big)
		return len(missing) == 0
	}) {
		ci, _ := jobConsumerOf(ctx, js)
		t.Fatalf("%d objects not in S3 after 90s, e.g. %s; consumer %+v", len(missing), missing[0], ci)
	}

	noJobLeftBehind(t, js, info, b)
	var total float64
	for i, r := range replicas {
		if i == 1 {
			continue
		}
		total += metricValue(t, r.addr, copiedSeries)
	}
	t.Logf("%d objects (%d small, %d multipart or giant) verified in S3; the surviving replicas copied %v",
		len(load.small)+len(load.big), len(load.small), len(load.big), total)

	// The survivors stop cleanly.
	for i := range replicas {
		if i != 1 {
			stopChild(t, procs[i])
		}
	}
}

// startReplicas starts n oss2s3 processes at once, b's and copies of it
// with their own addresses and data directories: they create the R3
// streams, the consumer and the checkpoint bucket concurrently. The first
// also receives the webhooks. It returns when every one is ready.
func startReplicas(t *testing.T, b *bed, n int) ([]*bed, []*child) {
	t.Helper()
	replicas := []*bed{b}
	for range n - 1 {
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
	return replicas, procs
}

// clusterLoad puts objects in the source and remembers them.
type clusterLoad struct {
	t     *testing.T
	b     *bed
	rng   *rand.Rand
	small []sample
	big   []synthetic
}

// putSmall puts small/<from>.bin to small/<to-1>.bin, random bytes each.
func (l *clusterLoad) putSmall(from, to int) {
	for i := from; i < to; i++ {
		s := sample{key: fmt.Sprintf("small/%03d.bin", i), data: make([]byte, 512+l.rng.IntN(4096)), ctype: "application/octet-stream"}
		for j := range s.data {
			s.data[j] = byte(l.rng.Uint32())
		}
		if _, err := l.b.emu.PutObject(e2eSrc, s.key, s.data, http.Header{"Content-Type": {s.ctype}}); err != nil {
			l.t.Fatal(err)
		}
		l.small = append(l.small, s)
	}
}

// putBig puts a synthetic object of size bytes at key.
func (l *clusterLoad) putBig(key string, size int64) {
	o := synthetic{key: key, size: size, seed: uint64(len(l.big) + 1)}
	if _, err := l.b.emu.PutSynthetic(e2eSrc, o.key, o.size, o.seed, http.Header{"Content-Type": {"application/octet-stream"}}); err != nil {
		l.t.Fatal(err)
	}
	l.big = append(l.big, o)
}

// killStreamLeader SIGKILLs the node leading the job stream and returns
// its name and how many jobs the stream held just before.
func killStreamLeader(t *testing.T, nodes []*natsNode, info jetstream.Stream) (string, uint64) {
	t.Helper()
	si, err := info.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if si.Cluster == nil || si.Cluster.Leader == "" {
		t.Fatalf("job stream has no leader: %+v", si.Cluster)
	}
	for _, n := range nodes {
		if n.Name == si.Cluster.Leader {
			if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = n.cmd.Wait()
			return si.Cluster.Leader, si.State.Msgs
		}
	}
	t.Fatalf("leader %q is not one of the nodes", si.Cluster.Leader)
	return "", 0
}

// noJobLeftBehind checks that the work queue is empty, the consumer holds
// nothing, nothing was dead-lettered, and every webhook was accepted.
func noJobLeftBehind(t *testing.T, js jetstream.JetStream, info jetstream.Stream, b *bed) {
	t.Helper()
	ctx := context.Background()
	testkit.WaitFor(t, 30*time.Second, "an empty job stream", func() bool {
		for _, l := range transfer.Lanes { // each lane's consumer
			cons, err := js.Consumer(ctx, transfer.JobStream, l.Consumer)
			if err != nil {
				return false
			}
			ci, err := cons.Info(ctx)
			if err != nil || ci.NumPending != 0 || ci.NumAckPending != 0 {
				return false
			}
		}
		si, err := info.Info(ctx)
		return err == nil && si.State.Msgs == 0
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
}

func jobConsumerOf(ctx context.Context, js jetstream.JetStream) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(ctx, transfer.JobStream, transfer.WorkerConsumer)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}
