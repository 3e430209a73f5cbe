package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/s3test"
)

// runNATSNode is `bench nats-node <spec>`: one node of the chaos run's
// JetStream cluster, a process of its own so that it can be SIGKILLed
// alone. It serves until SIGTERM.
func runNATSNode(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) != 1 {
		return errors.New("nats-node wants one argument, the node's JSON description")
	}
	var n jstest.Node
	if err := json.Unmarshal([]byte(args[0]), &n); err != nil {
		return fmt.Errorf("nats-node: %w", err)
	}
	ns, err := jstest.StartNode(n)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, time.Now().Format(time.RFC3339Nano), "nats node", n.Name, "ready at", ns.ClientURL())
	<-ctx.Done()
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}

// natsNode is one node of the cluster: its process and the proxy oss2s3
// reaches it through.
type natsNode struct {
	spec  jstest.Node
	proxy *toxiproxy.Proxy
	log   string
	proc  *process // guarded by natsCluster.mu
}

// natsCluster is three nodes with R3 streams possible, each a child
// process (this program again, as `bench nats-node`), on loopback routes.
// The nodes do not advertise each other to clients, so oss2s3 connects
// only through the proxies it was given.
type natsCluster struct {
	self  string // this program's binary
	mu    sync.Mutex
	nodes []*natsNode
}

func newNATSCluster(dir string, logs *logDir, toxics *toxiproxy.ApiServer) (*natsCluster, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := &natsCluster{self: self}
	for i := range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cport, err := freePort()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("n%d", i+1)
		c.nodes = append(c.nodes, &natsNode{
			spec: jstest.Node{Name: name, Port: port, ClusterPort: cport, StoreDir: filepath.Join(dir, "nats-"+name), NoAdvertise: true},
			log:  logs.path("nats-" + name + ".log"),
		})
	}
	for i, n := range c.nodes {
		for j, o := range c.nodes {
			if i != j {
				n.spec.Routes = append(n.spec.Routes, o.spec.ClusterPort)
			}
		}
		n.proxy = toxiproxy.NewProxy(toxics, "nats-"+n.spec.Name, "127.0.0.1:0", fmt.Sprintf("127.0.0.1:%d", n.spec.Port))
		if err := n.proxy.Start(); err != nil {
			return nil, fmt.Errorf("proxy to NATS node %s: %w", n.spec.Name, err)
		}
	}
	return c, nil
}

func freePort() (int, error) {
	addr, err := s3test.FreeAddr()
	if err != nil {
		return 0, err
	}
	_, p, _ := net.SplitHostPort(addr)
	return strconv.Atoi(p)
}

// directURL is every node's own address, for the harness's checks.
func (c *natsCluster) directURL() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", n.spec.Port))
	}
	return strings.Join(urls, ",")
}

// proxiedURL is every node through its proxy, what oss2s3 is given.
func (c *natsCluster) proxiedURL() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, "nats://"+n.proxy.Listen)
	}
	return strings.Join(urls, ",")
}

// start starts node i (with the store it had) and waits until it accepts
// clients.
func (c *natsCluster) start(i int) error {
	n := c.nodes[i]
	spec, err := json.Marshal(n.spec)
	if err != nil {
		return err
	}
	p, err := startProcess(c.self, []string{"nats-node", string(spec)}, os.Environ(), n.log)
	if err != nil {
		return err
	}
	c.mu.Lock()
	n.proc = p
	c.mu.Unlock()
	addr := fmt.Sprintf("127.0.0.1:%d", n.spec.Port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("NATS node %s exited: %v; log:\n%s", n.spec.Name, p.err, p.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("NATS node %s not accepting clients in 30s; log:\n%s", n.spec.Name, p.tail())
		}
	}
}

// kill SIGKILLs node i.
func (c *natsCluster) kill(i int) {
	c.mu.Lock()
	p := c.nodes[i].proc
	c.mu.Unlock()
	p.kill()
}

// down lists the nodes whose process is not running.
func (c *natsCluster) down() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, n := range c.nodes {
		if n.proc == nil || n.proc.exited() {
			out = append(out, i)
		}
	}
	return out
}

func (c *natsCluster) index(name string) int {
	for i, n := range c.nodes {
		if n.spec.Name == name {
			return i
		}
	}
	return -1
}

func (c *natsCluster) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		_ = n.proc.stop(3 * time.Second) // teardown, best effort: nothing reads the nodes after it
		n.proxy.Stop()
	}
}

// chaosTuning is the queue and workers configuration of every replica:
// small parts and thresholds, so that multipart and giant copies happen
// with modest data; a short ack wait and retries, so that a run of
// minutes sees many of them (five attempts still span more than the
// longest reset window of the schedule); and an orphan sweep that runs
// within the end check's -orphan-wait. The lease is the default one.
const chaosTuning = `queue:
  ack_wait: 10s
  retry_base: 1s
  retry_max: 10s
workers:
  concurrency: 4
  part_size: 5MiB
  multipart_threshold: 6MiB
  giant_threshold: 32MiB
  shutdown_grace: 5s
  orphan_upload_age: 20s
  orphan_sweep_interval: 10s
`

// replicaConfig is what a replica's configuration names.
type replicaConfig struct {
	Listen, DataDir       string
	NATSURL               string
	SQSURL, SQSEndpoint   string
	OSSURL, SrcBucket     string
	S3URL, CAFile, DstBkt string
}

// yaml is the one place the replicas' configuration is written; secrets
// come from the environment (replicaEnv).
func (c replicaConfig) yaml() string {
	return fmt.Sprintf(`listen: %s
data_dir: %s
log: {level: info, format: json}
nats:
  url: %s
  replicas: 3
webhook:
  secrets: ["${BENCH_WEBHOOK_SECRET}"]
%ssqs:
  - name: chaos
    queue_url: %s
    region: %s
    endpoint: %s
    access_key_id: ${BENCH_SQS_AK}
    secret_access_key: ${BENCH_SQS_SK}
    task: %s
    wait_seconds: 2
    visibility_timeout: 10s
tasks:
  - name: %s
    source:
      endpoint: %s
      region: %s
      bucket: %s
      access_key_id: ${BENCH_OSS_AK}
      access_key_secret: ${BENCH_OSS_SK}
    destination:
      region: %s
      bucket: %s
      endpoint: %s
      ca_file: %s
      access_key_id: ${BENCH_S3_AK}
      secret_access_key: ${BENCH_S3_SK}
    options:
      deletes: propagate
`, c.Listen, c.DataDir, c.NATSURL, chaosTuning, c.SQSURL, s3Region, c.SQSEndpoint, chaosTask, chaosTask,
		c.OSSURL, ossRegion, c.SrcBucket, s3Region, c.DstBkt, c.S3URL, c.CAFile)
}

func replicaEnv() []string {
	return append(os.Environ(),
		"BENCH_WEBHOOK_SECRET="+webhookSecret,
		"BENCH_OSS_AK="+ossAccessKey, "BENCH_OSS_SK="+ossSecretKey,
		"BENCH_S3_AK="+s3AccessKey, "BENCH_S3_SK="+s3SecretKey,
		"BENCH_SQS_AK="+sqsAccessKey, "BENCH_SQS_SK="+sqsSecretKey)
}

// replica is one oss2s3 process slot: its address, data directory and log
// stay the same across restarts.
type replica struct {
	n       int
	addr    string
	cfgPath string
	logPath string
	proc    *process // guarded by replicaSet.mu
	up      bool     // ready and given webhooks; guarded by replicaSet.mu
}

func (r *replica) name() string { return fmt.Sprintf("r%d", r.n) }

// replicaSet is the oss2s3 replicas, and the load balancer in front of
// their webhooks (what a Kubernetes Service is in production).
type replicaSet struct {
	bin string
	env []string

	mu   sync.Mutex
	rs   []*replica
	next int
}

func newReplicaSet(bin, dir string, logs *logDir, n int, cfg replicaConfig) (*replicaSet, error) {
	s := &replicaSet{bin: bin, env: replicaEnv()}
	for i := 1; i <= n; i++ {
		addr, err := s3test.FreeAddr()
		if err != nil {
			return nil, err
		}
		r := &replica{n: i, addr: addr, cfgPath: filepath.Join(dir, fmt.Sprintf("r%d.yaml", i)), logPath: logs.path(fmt.Sprintf("oss2s3-r%d.log", i))}
		c := cfg
		c.Listen, c.DataDir = addr, filepath.Join(dir, fmt.Sprintf("r%d-data", i))
		if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(r.cfgPath, []byte(c.yaml()), 0o600); err != nil {
			return nil, err
		}
		s.rs = append(s.rs, r)
	}
	return s, nil
}

// start runs replica r and waits until it is ready, trying again a few
// times: a start may meet a NATS cluster in the middle of an election.
func (s *replicaSet) start(ctx context.Context, r *replica) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		f, ferr := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if ferr != nil {
			return ferr
		}
		fmt.Fprintf(f, `{"time":%q,"level":"INFO","msg":"chaos harness: starting replica %s"}`+"\n", time.Now().Format(time.RFC3339Nano), r.name())
		f.Close()
		var p *process
		if p, err = startProcess(s.bin, []string{"serve", "--config", r.cfgPath}, s.env, r.logPath); err != nil {
			return err
		}
		s.mu.Lock()
		r.proc = p
		s.mu.Unlock()
		if err = waitReady(ctx, p, r.addr); err == nil {
			s.mu.Lock()
			r.up = true
			s.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("replica %s: %w", r.name(), err)
}

// kill takes r out of the load balancer and SIGKILLs it; it returns the
// pid it had.
func (s *replicaSet) kill(r *replica) int {
	s.mu.Lock()
	r.up = false
	p := r.proc
	s.mu.Unlock()
	p.kill()
	return p.pid()
}

// running lists the replicas whose process runs, with their pids.
func (s *replicaSet) running() map[int]*replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]*replica{}
	for _, r := range s.rs {
		if r.proc != nil && !r.proc.exited() {
			out[r.proc.pid()] = r
		}
	}
	return out
}

// pick returns the next ready replica, round robin; nil if none is.
func (s *replicaSet) pick() *replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range s.rs {
		r := s.rs[s.next%len(s.rs)]
		s.next++
		if r.up && !r.proc.exited() {
			return r
		}
	}
	return nil
}

// ServeHTTP is the load balancer: each webhook goes to a ready replica;
// with none ready, or when the replica fails to answer, the sender gets a
// 5xx and tries again later, as a trigger does.
func (s *replicaSet) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r := s.pick()
	if r == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "no replica is ready", http.StatusServiceUnavailable)
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: r.addr})
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "replica "+r.name()+": "+err.Error(), http.StatusBadGateway)
		},
	}
	rp.ServeHTTP(w, req)
}

// stop ends every replica, all at once: each may take its shutdown grace.
func (s *replicaSet) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range s.rs {
		r.up = false
		wg.Go(func() { _ = r.proc.stop(10 * time.Second) })
	}
	wg.Wait()
}

// busyWorkerStacks ends every live replica with SIGQUIT, which makes the Go
// runtime print every goroutine's stack to the replica's log, and returns
// the stacks of the goroutines that were inside a job (Workers.handle), up
// to max in all. Called when a job is stuck after the drain: the stack says
// what the worker holding it waits for. The replicas are gone afterwards.
func (s *replicaSet) busyWorkerStacks(max int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.rs {
		if r.proc == nil || r.proc.exited() {
			continue
		}
		st, err := os.Stat(r.logPath)
		if err != nil {
			continue
		}
		_ = r.proc.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-r.proc.done:
		case <-time.After(10 * time.Second):
			_ = r.proc.cmd.Process.Kill()
			<-r.proc.done
		}
		r.up = false
		f, err := os.Open(r.logPath)
		if err != nil {
			continue
		}
		_, _ = f.Seek(st.Size(), io.SeekStart)
		dump, _ := io.ReadAll(io.LimitReader(f, 64<<20))
		f.Close()
		for _, g := range strings.Split(string(dump), "\n\n") {
			if len(out) < max && strings.Contains(g, "transfer.(*Workers).handle") {
				out = append(out, r.name()+" "+calls(g, 30))
			}
		}
	}
	return out
}

// calls is a goroutine's stack as its header and function calls only
// (without the file:line lines), at most n lines.
func calls(g string, n int) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(g), "\n") {
		if strings.HasPrefix(l, "\t") {
			continue
		}
		if i := strings.LastIndex(l, "("); i > 0 && !strings.HasPrefix(l, "goroutine ") {
			l = l[:i] // the arguments' words mean nothing here
		}
		if len(keep) == n {
			keep = append(keep, "...")
			break
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n        ")
}
