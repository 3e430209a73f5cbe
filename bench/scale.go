package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/s3test"
)

// The scale benchmark: the reconciler's diff scaled out over replicas. One
// report-mode run of a generated bucket (ossemu.Generated: the source
// against a destination with 1% missing, 1% different and 1% extra
// objects, read through the emulator's OSS and S3 APIs), with every
// listing page (and every planning probe) answered after a fixed latency,
// as real OSS and S3 listings take 100-300 ms. The run is started on one of
// N oss2s3 replica processes sharing one NATS server, cut into shards that
// every replica's workers take from the work queue; for N = 1, 2, 4, 8 (a
// fresh NATS server and fresh replicas each) the bench prints the keys
// listed per second, from the run's own start and finish, and the
// efficiency speedup(N)/N.

const scaleAdminToken = "bench-admin-token-0123456789abcdef"

type scaleOptions struct {
	objects     int64
	replicas    []int
	latency     time.Duration
	shards      int
	concurrency int
	dir         string
	keep        bool
	profile     bool
}

func parseScaleFlags(args []string, stderr io.Writer) (scaleOptions, error) {
	var o scaleOptions
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// 2.56M keys g00000000000-g00002559999 cut into 256 even key ranges
	// (the children two levels below g0000), four to a shard: with 1.3M,
	// 2 of the 64 shards had 30k keys and 62 had 20k.
	fs.Int64Var(&o.objects, "objects", 2_560_000, "objects in the generated bucket")
	replicas := fs.String("replicas", "1,2,4,8", "replica counts to run, comma-separated, ascending")
	fs.DurationVar(&o.latency, "page-latency", 100*time.Millisecond, "latency of every listing request, both APIs")
	fs.IntVar(&o.shards, "shards", 64, "the task's reconcile.shards: key ranges the run is cut into")
	// One shard at a time per replica: at 100 ms a page, eight replicas
	// listing two shards each would need about two cores for the
	// emulator and the replicas, all this machine has.
	fs.IntVar(&o.concurrency, "concurrency", 1, "each replica's workers.concurrency: the shards it lists at once")
	smoke := fs.Bool("smoke", false, "a quick check that it all works (200k objects, 1 and 2 replicas, 8 shards; about a minute)")
	fs.StringVar(&o.dir, "dir", "", "work directory (default $TMPDIR)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory and the logs")
	fs.BoolVar(&o.profile, "profile", false, "write CPU profiles of the harness (the emulator) and of each step's first replica into the work directory (implies -keep)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.keep = o.keep || o.profile
	if *smoke {
		o.objects, *replicas, o.shards = 200_000, "1,2", 8
	}
	for _, s := range strings.Split(*replicas, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || len(o.replicas) > 0 && n <= o.replicas[len(o.replicas)-1] {
			return o, fmt.Errorf("-replicas %q: want ascending counts of at least 1", *replicas)
		}
		o.replicas = append(o.replicas, n)
	}
	switch {
	case o.objects < 1000:
		return o, fmt.Errorf("-objects %d: want at least 1000", o.objects)
	case o.shards < 1 || o.shards > 1024:
		return o, fmt.Errorf("-shards %d: want 1 to 1024", o.shards)
	case o.concurrency < 1:
		return o, fmt.Errorf("-concurrency %d: want at least 1", o.concurrency)
	case o.latency < 0:
		return o, fmt.Errorf("-page-latency %v: want 0 or more", o.latency)
	}
	return o, nil
}

// scalePoint is what one run with N replicas measured.
type scalePoint struct {
	replicas int
	shards   int           // the run's
	keys     int64         // source keys listed
	elapsed  time.Duration // the run's, from its start to its end as it records them
	// shardRate is the median listing rate of one shard (keys/s), from the
	// replicas' "reconcile shard done" lines.
	shardRate float64
	// byReplica is how many shards each replica finished; resumed counts
	// the shards that ran more than once (redelivered).
	byReplica            []int
	resumed              int
	cpuReplicas, cpuNATS time.Duration
	cpuHarness           time.Duration
	// peakRSS is the largest peak RSS (VmHWM) of the replicas.
	peakRSS int64
}

func (p scalePoint) keysPerSec() float64 { return ratio(float64(p.keys), p.elapsed.Seconds()) }

// scaling is speedup(N) and efficiency = speedup(N)/N, against the smallest
// replica count measured (base): speedup(N) = rate(N) / (rate(base) /
// base.replicas), so a base of 1 replica gives the usual rate(N)/rate(1).
func scaling(base, p scalePoint) (speedup, efficiency float64) {
	perReplica := ratio(base.keysPerSec(), float64(base.replicas))
	speedup = ratio(p.keysPerSec(), perReplica)
	return speedup, ratio(speedup, float64(p.replicas))
}

func runScale(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	opts, err := parseScaleFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	goenv, err := moduleEnv(ctx, "scale")
	if err != nil {
		return err
	}
	dir, logs, err := makeWorkDir(opts.dir, os.TempDir(), "oss2s3-bench-scale-", "NATS")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, removeWorkDir(dir, opts.keep, logf)) }()
	root := filepath.Dir(goenv["GOMOD"])
	logf("building oss2s3 (go build ./server)")
	bin, err := buildOSS2S3(ctx, root, dir)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if opts.profile {
		f, err := os.Create(filepath.Join(dir, "harness.pprof"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	emu := ossemu.New(ossemu.Options{Credentials: map[string]string{ossAccessKey: ossSecretKey}, Region: ossRegion})
	defer emu.Close()
	url, err := emu.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	emu.SetGenerated("src", ossemu.Generated{Count: opts.objects})
	emu.SetGenerated("dst", ossemu.Generated{Count: opts.objects, Missing: 1, Different: 1, Extra: 1})
	for _, op := range []string{"ListObjectsV2", "ListObjects"} {
		emu.InjectFault(ossemu.Fault{Op: op, Latency: opts.latency})
	}
	fmt.Fprintf(stdout, "scale benchmark: %s, %d CPUs, load %s\n", cpuModel(), runtime.NumCPU(), loadAvg())
	fmt.Fprintf(stdout, "oss2s3 at %s; %d objects (destination: 1%% missing, 1%% different, 1%% extra); every listing page %v; %d shards; %d shards at once per replica\n",
		treeRevision(ctx, root), opts.objects, opts.latency, opts.shards, opts.concurrency)

	bed := scaleBed{bin: bin, self: self, dir: dir, logs: logs, emuURL: url, opts: opts, logf: logf}
	var points []scalePoint
	for _, n := range opts.replicas {
		logf("%d replica(s): a report run of %d objects", n, opts.objects)
		p, err := bed.run(ctx, n)
		if err != nil {
			return fmt.Errorf("%d replicas: %w", n, err)
		}
		points = append(points, p)
		fmt.Fprintln(stdout, scaleLine(points[0], p))
	}
	for _, l := range projectionLines(points[len(points)-1], opts.latency) {
		fmt.Fprintln(stdout, l)
	}
	last := points[len(points)-1]
	_, eff := scaling(points[0], last)
	fmt.Fprintf(stdout, "reconcile_scale replicas=%d page_latency_ms=%d keys_per_s=%.0f efficiency=%.2f\n",
		last.replicas, opts.latency.Milliseconds(), last.keysPerSec(), eff)
	return nil
}

// scaleLine is one replica count's figures.
func scaleLine(base, p scalePoint) string {
	speedup, eff := scaling(base, p)
	perKey := func(d time.Duration) float64 { return ratio(float64(d.Microseconds()), float64(p.keys)) }
	return fmt.Sprintf("replicas=%d shards=%d keys=%d elapsed=%.2fs keys_per_s=%.0f speedup=%.2f efficiency=%.2f shard_keys_per_s=%.0f"+
		" shards_by_replica=%v resumed=%d replica_peak_rss_mib=%d cpu_us_per_key: replicas=%.2f nats=%.2f emulator+harness=%.2f",
		p.replicas, p.shards, p.keys, p.elapsed.Seconds(), p.keysPerSec(), speedup, eff, p.shardRate,
		p.byReplica, p.resumed, mib(p.peakRSS), perKey(p.cpuReplicas), perKey(p.cpuNATS), perKey(p.cpuHarness))
}

// A projection is the time of a diff of keys objects cut into shards
// shards, all listed at once (replicas enough to run them), each at the
// rate one shard has at the given page latency.
type projection struct {
	keys    int64
	shards  int
	latency time.Duration
}

// pageKeys is how many keys one listing page holds (OSS and S3 alike).
const pageKeys = 1000

// shardRateAt is one shard's listing rate at page latency to, from its rate
// measured at latency from: a shard's listing is a chain of pages, each
// taking the latency plus a fixed cost (serving, parsing, comparing),
// which the measured rate gives.
func shardRateAt(measured float64, from, to time.Duration) float64 {
	if measured <= 0 {
		return 0
	}
	perPage := pageKeys / measured          // seconds
	fixed := max(0, perPage-from.Seconds()) // what is not latency
	return pageKeys / (fixed + to.Seconds())
}

// took is how long the diff lists at shardRate keys/s per shard.
func (pj projection) took(shardRate float64) time.Duration {
	if shardRate <= 0 || pj.shards <= 0 {
		return 0
	}
	return time.Duration(float64(pj.keys) / (float64(pj.shards) * shardRate) * float64(time.Second))
}

// projectionLines are the 1B-object diff on 16 replicas and 128 shards at
// real page latencies, from the largest run's per-shard rate.
func projectionLines(p scalePoint, measuredAt time.Duration) []string {
	var out []string
	for _, l := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond} {
		pj := projection{keys: 1_000_000_000, shards: 128, latency: l}
		rate := shardRateAt(p.shardRate, measuredAt, l)
		out = append(out, fmt.Sprintf("projection keys=%d replicas=16 shards=%d page_latency_ms=%d shard_keys_per_s=%.0f took=%s",
			pj.keys, pj.shards, l.Milliseconds(), rate, pj.took(rate).Round(time.Second)))
	}
	return out
}

// scaleBed runs one replica count: a NATS server of its own, the replicas,
// the run.
type scaleBed struct {
	bin, self, dir string
	logs           *logDir
	emuURL         string
	opts           scaleOptions
	logf           func(string, ...any)
}

func (b scaleBed) run(ctx context.Context, n int) (p scalePoint, err error) {
	step := filepath.Join(b.dir, fmt.Sprintf("n%d", n))
	port, err := freePort()
	if err != nil {
		return p, err
	}
	spec, err := json.Marshal(jstest.Node{Name: fmt.Sprintf("scale-n%d", n), Port: port, StoreDir: filepath.Join(step, "nats")})
	if err != nil {
		return p, err
	}
	nats, err := startProcess(b.self, []string{"nats-node", string(spec)}, os.Environ(), b.logs.path(fmt.Sprintf("nats-n%d.log", n)))
	if err != nil {
		return p, err
	}
	defer func() { err = errors.Join(err, nats.stop(10*time.Second)) }()
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", port)
	if err := waitTCP(ctx, nats, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		return p, err
	}
	var procs []*process
	var addrs, logPaths []string
	defer func() {
		for _, r := range procs {
			err = errors.Join(err, r.stop(15*time.Second))
		}
	}()
	for i := 1; i <= n; i++ {
		addr, err := s3test.FreeAddr()
		if err != nil {
			return p, err
		}
		data := filepath.Join(step, fmt.Sprintf("r%d", i))
		if err := os.MkdirAll(data, 0o755); err != nil {
			return p, err
		}
		cfg := filepath.Join(step, fmt.Sprintf("r%d.yaml", i))
		if err := os.WriteFile(cfg, []byte(b.replicaYAML(addr, data, natsURL)), 0o600); err != nil {
			return p, err
		}
		logPath := b.logs.path(fmt.Sprintf("oss2s3-n%d-r%d.log", n, i))
		env := replicaEnv()
		if b.opts.profile && i == 1 {
			env = append(env, "OSS2S3_CPUPROFILE="+filepath.Join(step, "r1.pprof"))
		}
		r, err := startProcess(b.bin, []string{"serve", "--config", cfg}, env, logPath)
		if err != nil {
			return p, err
		}
		procs, addrs, logPaths = append(procs, r), append(addrs, addr), append(logPaths, logPath)
	}
	for i, r := range procs {
		if err := waitReady(ctx, r, addrs[i]); err != nil {
			return p, fmt.Errorf("replica r%d: %w", i+1, err)
		}
	}
	cpu := func() (reps, nt time.Duration) {
		for _, r := range procs {
			c, _ := procCPU(r.pid()) // a replica gone is an error the run reports
			reps += c
		}
		nt, _ = procCPU(nats.pid())
		return reps, nt
	}
	reps0, nats0 := cpu()
	self0 := selfCPU()
	st, err := startAndWaitRun(ctx, addrs[0], procs)
	if err != nil {
		return p, err
	}
	reps1, nats1 := cpu()
	p = scalePoint{peakRSS: largestPeakRSS(procs), replicas: n, shards: st.Shards, keys: st.Listed, elapsed: time.Duration(st.Elapsed * float64(time.Second)),
		cpuReplicas: reps1 - reps0, cpuNATS: nats1 - nats0, cpuHarness: selfCPU() - self0}
	if err := checkScaleCounts(st, b.opts.objects); err != nil {
		return p, err
	}
	return p, p.readShardLogs(logPaths)
}

// readShardLogs reads the replicas' "reconcile shard done" lines: how many
// shards each ran, how many were resumed, and the median rate of a shard
// listed from its start.
func (p *scalePoint) readShardLogs(logPaths []string) error {
	var rates []float64
	for _, lp := range logPaths {
		done, err := shardsDone(lp)
		if err != nil {
			return err
		}
		p.byReplica = append(p.byReplica, len(done))
		for _, d := range done {
			if d.Resumed > 0 {
				p.resumed++
				continue
			}
			rates = append(rates, ratio(float64(d.Listed), d.elapsed().Seconds()))
		}
	}
	p.shardRate = median(rates)
	return nil
}

// largestPeakRSS is the largest peak RSS of procs (those that can be read).
func largestPeakRSS(procs []*process) int64 {
	var rss int64
	for _, r := range procs {
		if v, err := peakRSS(r.pid()); err == nil {
			rss = max(rss, v)
		}
	}
	return rss
}

func (b scaleBed) replicaYAML(addr, data, natsURL string) string {
	return fmt.Sprintf(`listen: %s
data_dir: %s
log: {level: info, format: json}
nats: {url: %s, replicas: 1}
webhook:
  secrets: ["${BENCH_WEBHOOK_SECRET}"]
admin:
  tokens: [%s]
workers:
  concurrency: %d
tasks:
  - name: %s
    source: {endpoint: %s, region: %s, bucket: src, access_key_id: "${BENCH_OSS_AK}", access_key_secret: "${BENCH_OSS_SK}"}
    destination: {endpoint: %s, region: %s, bucket: dst, access_key_id: "${BENCH_OSS_AK}", secret_access_key: "${BENCH_OSS_SK}"}
    reconcile: {shards: %d}
`, addr, data, natsURL, scaleAdminToken, b.opts.concurrency, benchTask, b.emuURL, ossRegion, b.emuURL, s3Region, b.opts.shards)
}

// waitTCP waits until addr accepts connections (p's, which must not exit).
func waitTCP(ctx context.Context, p *process, addr string) error {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var d net.Dialer
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			return nil
		}
		switch {
		case p.exited():
			return fmt.Errorf("exited: %v; log:\n%s", p.err, p.tail())
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("%s not accepting connections in 30s; log:\n%s", addr, p.tail())
		}
	}
}

// scaleRun is the part of a run's state (GET /v1/reconciles/{id}) the
// bench reads.
type scaleRun struct {
	ID         string  `json:"id"`
	Shards     int     `json:"shards"`
	Listed     int64   `json:"listed"`
	DstListed  int64   `json:"dst_listed"`
	Missing    int64   `json:"missing"`
	Different  int64   `json:"different"`
	Extraneous int64   `json:"extraneous"`
	Elapsed    float64 `json:"elapsed_seconds"`
	Done       bool    `json:"done"`
	Error      string  `json:"error"`
}

// startAndWaitRun starts a report run of the bench task on the replica at
// addr and polls it until it is done.
func startAndWaitRun(ctx context.Context, addr string, procs []*process) (scaleRun, error) {
	var started struct {
		ID string `json:"id"`
	}
	if err := adminCall(ctx, http.MethodPost, "http://"+addr+"/v1/tasks/"+benchTask+"/reconcile", `{"mode":"report"}`, http.StatusAccepted, &started); err != nil {
		return scaleRun{}, fmt.Errorf("start the run: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return scaleRun{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		for i, p := range procs {
			if p.exited() {
				return scaleRun{}, fmt.Errorf("replica r%d exited during the run: %v; log:\n%s", i+1, p.err, p.tail())
			}
		}
		var st scaleRun
		if err := adminCall(ctx, http.MethodGet, "http://"+addr+"/v1/reconciles/"+started.ID, "", http.StatusOK, &st); err != nil {
			return st, fmt.Errorf("read the run: %w", err)
		}
		if st.Done {
			if st.Error != "" {
				return st, fmt.Errorf("run %s failed: %s", st.ID, st.Error)
			}
			return st, nil
		}
	}
}

func adminCall(ctx context.Context, method, url, body string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+scaleAdminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(raw))
	}
	return json.Unmarshal(raw, out)
}

// checkScaleCounts checks the run found exactly the differences the
// generated buckets have.
func checkScaleCounts(st scaleRun, n int64) error {
	want := scaleRun{Listed: n, Missing: (n + 99) / 100, Different: (n + 98) / 100, Extraneous: (n + 97) / 100}
	if st.Listed != want.Listed || st.Missing != want.Missing || st.Different != want.Different || st.Extraneous != want.Extraneous {
		return fmt.Errorf("run %s: listed=%d missing=%d different=%d extraneous=%d, want %d %d %d %d",
			st.ID, st.Listed, st.Missing, st.Different, st.Extraneous, want.Listed, want.Missing, want.Different, want.Extraneous)
	}
	return nil
}

// shardDone is a replica's "reconcile shard done" log line.
type shardDone struct {
	Msg     string `json:"msg"`
	Listed  int64  `json:"listed"`
	Resumed int    `json:"resumed"`
	Elapsed int64  `json:"elapsed"` // nanoseconds, as slog's JSON writes a duration
}

func (d shardDone) elapsed() time.Duration { return time.Duration(d.Elapsed) }

// shardsDone reads the shards a replica finished from its JSON log.
func shardsDone(logPath string) ([]shardDone, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []shardDone
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"reconcile shard done"`)) {
			continue
		}
		var d shardDone
		if err := json.Unmarshal(line, &d); err != nil || d.Msg != "reconcile shard done" {
			continue
		}
		out = append(out, d)
	}
	return out, sc.Err()
}
