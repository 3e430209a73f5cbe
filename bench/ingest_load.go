package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

const (
	// ingestBucket is the source bucket of every event; the one task's
	// source bucket, so every record is routed to it.
	ingestBucket = "src-ingest"
	ingestEvent  = "ObjectCreated:PutObject"
	ingestSize   = 1024
	// unreachable is the task's OSS and S3 endpoint: with no workers,
	// oss2s3 never talks to either.
	unreachable = "http://127.0.0.1:9"
)

// ingestYAML is oss2s3's configuration for an ingest run: gateway only.
func ingestYAML(listen, dataDir, natsListen string, maxJobs int64, dupWindow time.Duration) string {
	return fmt.Sprintf(`listen: %s
data_dir: %s
log: {level: warn, format: text}
nats: {embedded_listen: "%s"}
queue: {max_jobs: %d, duplicate_window: %s}
webhook:
  secrets: ["${BENCH_WEBHOOK_SECRET}"]
workers: {concurrency: 0}
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
      bucket: dst-ingest
      endpoint: %s
      access_key_id: ${BENCH_S3_AK}
      secret_access_key: ${BENCH_S3_SK}
`, listen, dataDir, natsListen, maxJobs, dupWindow, benchTask, unreachable, ossRegion, ingestBucket, s3Region, unreachable)
}

// ingestServer is one gateway-only oss2s3 process.
type ingestServer struct {
	addr     string // HTTP
	natsAddr string // the embedded JetStream's client port, to count the stream
	proc     *process
}

func (b *ingestBed) startIngestServer(ctx context.Context, name, profile string) (*ingestServer, error) {
	dataDir := filepath.Join(b.dir, name)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	addr, err := s3test.FreeAddr()
	if err != nil {
		return nil, err
	}
	natsAddr, err := s3test.FreeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := dataDir + ".yaml"
	if err := os.WriteFile(cfgPath, []byte(ingestYAML(addr, dataDir, natsAddr, b.opts.maxJobs, b.opts.dupWindow)), 0o600); err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"BENCH_WEBHOOK_SECRET="+webhookSecret,
		"BENCH_OSS_AK="+ossAccessKey, "BENCH_OSS_SK="+ossSecretKey,
		"BENCH_S3_AK="+s3AccessKey, "BENCH_S3_SK="+s3SecretKey)
	if profile != "" {
		env = append(env, "OSS2S3_CPUPROFILE="+profile)
	}
	p, err := startProcess(b.oss2s3, []string{"serve", "--config", cfgPath}, env, b.logs.path(name+".log"))
	if err != nil {
		return nil, err
	}
	s := &ingestServer{addr: addr, natsAddr: natsAddr, proc: p}
	if err := waitReady(ctx, p, addr); err != nil {
		return nil, err
	}
	return s, nil
}

// loadResult is one oss2s3 run at one concurrency.
type loadResult struct {
	conc     int
	window   time.Duration   // measured time
	lats     []time.Duration // sorted: accepted requests that finished in the window
	errs     int             // failed requests that finished in the window
	accepted int             // every accepted request of the run (warm-up and tail too)
	failed   int
	reasons  map[string]int // why requests failed, all phases
	// CPU time used during the window by the oss2s3 process and by this
	// process (the load generator).
	cpuServer, cpuClient time.Duration
	// mallocs is how many heap allocations the oss2s3 process made in
	// the measured time (go_memstats_mallocs_total; -1: not read), gcs
	// how many garbage collections it finished (go_gc_duration_seconds_count).
	mallocs, gcs float64
	peakRSS      int64
	// Checks after the run.
	streamMsgs, metricQueued, metricJobs int
}

func (r *loadResult) rate() float64 { return float64(len(r.lats)) / r.window.Seconds() }

func (r *loadResult) p(q float64) time.Duration { return percentile(r.lats, q) }

// serverCPUPerEvent is the oss2s3 process's CPU time in the measured
// window per event accepted in it, in µs: the gateway's cost of one event
// (its embedded JetStream included).
func (r *loadResult) serverCPUPerEvent() float64 { return perEvent(r.cpuServer, float64(len(r.lats))) }

func (r *loadResult) summary() string {
	n := float64(len(r.lats))
	s := fmt.Sprintf("%7.0f events/s (%d in %.2fs)  latency p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms  errors %d; cpu: oss2s3 %.0f%% (%.0f µs/event), load generator %.0f%% (%.0f µs/event); oss2s3 peak RSS %d MiB; stream %d jobs = accepted %d = metrics %d",
		r.rate(), len(r.lats), r.window.Seconds(), ms(r.p(0.5)), ms(r.p(0.9)), ms(r.p(0.99)), ms(r.p(0.999)), ms(r.p(1)), r.errs,
		100*r.cpuServer.Seconds()/r.window.Seconds(), r.serverCPUPerEvent(),
		100*r.cpuClient.Seconds()/r.window.Seconds(), perEvent(r.cpuClient, n), mib(r.peakRSS), r.streamMsgs, r.accepted, r.metricQueued)
	if r.mallocs >= 0 && n > 0 {
		s += fmt.Sprintf("; oss2s3 allocations %.1f/event, GC cycles %.1f/s", r.mallocs/n, r.gcs/r.window.Seconds())
	}
	if r.failed > 0 {
		s += fmt.Sprintf("; %d failed request(s) in all: %s", r.failed, formatReasons(r.reasons))
	}
	return s
}

func perEvent(d time.Duration, n float64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / n
}

func formatReasons(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%dx %s", m[k], k))
	}
	return strings.Join(parts, "; ")
}

// percentile is the nearest-rank q-quantile of sorted (q=1: the maximum).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// oss2s3Run starts a fresh gateway-only oss2s3, loads it with conc
// concurrent signed single-record requests, and checks that its job stream
// holds exactly the accepted events.
func (b *ingestBed) oss2s3Run(ctx context.Context, name string, conc int) (res *loadResult, err error) {
	profile := ""
	if b.opts.cpuprofile != "" {
		profile = filepath.Join(b.opts.cpuprofile, name+".pprof")
	}
	srv, err := b.startIngestServer(ctx, name, profile)
	if err != nil {
		return nil, err
	}
	defer func() {
		// On the error paths; the success path stops it and checks.
		_ = srv.proc.stop(15 * time.Second)
		if !b.opts.keep {
			os.RemoveAll(filepath.Join(b.dir, name))
		}
	}()
	if profile != "" {
		// This process is the load generator: where its time goes says
		// how much of the machine the client side takes.
		stop, err := startSelfProfile(filepath.Join(b.opts.cpuprofile, "loadgen-"+name+".pprof"))
		if err != nil {
			return nil, err
		}
		// A profile that could not be written fails the run, as in bareRun.
		defer func() { err = errors.Join(err, stop()) }()
	}
	res, err = generateLoad(ctx, b.opts.client, "http://"+srv.addr, name, conc, b.opts.warmup, b.opts.duration, srv.proc.pid())
	if err != nil {
		return nil, err
	}
	if res.peakRSS, err = peakRSS(srv.proc.pid()); err != nil {
		res.peakRSS = 0
	}
	if err := srv.check(ctx, res); err != nil {
		return nil, err
	}
	if srv.proc.exited() {
		return nil, fmt.Errorf("oss2s3 exited during the run: %v; log:\n%s", srv.proc.err, srv.proc.tail())
	}
	if err := srv.proc.stop(15 * time.Second); err != nil {
		return nil, fmt.Errorf("oss2s3 stop: %w; log:\n%s", err, srv.proc.tail())
	}
	if profile != "" {
		if st, err := os.Stat(profile); err != nil || st.Size() == 0 {
			return nil, fmt.Errorf("oss2s3 wrote no CPU profile to %s (%v)", profile, err)
		}
		b.logf("CPU profiles: oss2s3 %s, load generator %s", profile, filepath.Join(b.opts.cpuprofile, "loadgen-"+name+".pprof"))
	}
	return res, nil
}

// check compares the accepted count with oss2s3's job stream and metrics.
func (s *ingestServer) check(ctx context.Context, res *loadResult) error {
	msgs, err := streamMsgs(ctx, "nats://"+s.natsAddr, transfer.JobStream)
	if err != nil {
		return fmt.Errorf("count oss2s3's job stream: %w", err)
	}
	res.streamMsgs = int(msgs)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	queued, ok1, err := parseCounter(bytes.NewReader(body), "oss2s3_events_received_total", map[string]string{"source": metrics.SourceOSSWebhook, "result": metrics.EventQueued})
	if err != nil {
		return err
	}
	jobs, ok2, err := parseCounter(bytes.NewReader(body), "oss2s3_jobs_queued_total", map[string]string{"task": benchTask})
	if err != nil {
		return err
	}
	if !ok1 || !ok2 {
		return fmt.Errorf("/metrics has no oss2s3_events_received_total{source=%q,result=%q} or oss2s3_jobs_queued_total{task=%q}", metrics.SourceOSSWebhook, metrics.EventQueued, benchTask)
	}
	res.metricQueued, res.metricJobs = int(queued), int(jobs)
	if res.streamMsgs != res.accepted || res.metricQueued != res.accepted || res.metricJobs != res.accepted {
		return fmt.Errorf("accepted %d events (202, queued=1), but the job stream holds %d jobs, events_received_total{queued} is %d and jobs_queued_total is %d (%d failed request(s): %s)",
			res.accepted, res.streamMsgs, res.metricQueued, res.metricJobs, res.failed, formatReasons(res.reasons))
	}
	return nil
}

// serverMallocs reads go_memstats_mallocs_total, the heap allocations the
// oss2s3 process at base made so far, and go_gc_duration_seconds_count, the
// garbage collections it finished, from its /metrics.
func serverMallocs(ctx context.Context, base string) (mallocs, gcs float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	mallocs, gcs = -1, -1
	for sc.Scan() && (mallocs < 0 || gcs < 0) {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_mallocs_total "); ok {
			if mallocs, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
				return 0, 0, err
			}
		}
		if v, ok := strings.CutPrefix(sc.Text(), "go_gc_duration_seconds_count "); ok {
			if gcs, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if mallocs < 0 || gcs < 0 {
		return 0, 0, errors.New("/metrics has no go_memstats_mallocs_total or no go_gc_duration_seconds_count")
	}
	return mallocs, gcs, nil
}

// streamMsgs counts the messages of a stream on the server at url.
func streamMsgs(ctx context.Context, url, stream string) (uint64, error) {
	nc, err := nats.Connect(url, nats.Name("bench-check"))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	return countStream(ctx, js, stream)
}

func countStream(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// matchSample reads one sample of a Prometheus text exposition, its labels
// (the text between the braces) and its value: match says whether every
// label of want is there with its value; v is the value (err if it does
// not parse) when it matches.
func matchSample(labels, value string, want map[string]string) (got map[string]string, v float64, match bool, err error) {
	got = map[string]string{}
	for _, m := range labelRE.FindAllStringSubmatch(labels, -1) {
		got[m[1]] = m[2]
	}
	for k, w := range want {
		if got[k] != w {
			return got, 0, false, nil
		}
	}
	v, err = strconv.ParseFloat(strings.Fields(value)[0], 64)
	return got, v, true, err
}

// parseCounter reads the value of the series name{labels...} (the labels
// given must match; others may be present) from a Prometheus text
// exposition.
func parseCounter(r io.Reader, name string, want map[string]string) (float64, bool, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		_, v, match, err := matchSample(labels, value, want)
		if !match {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("metrics: %q: %w", sc.Text(), err)
		}
		return v, true, nil
	}
	return 0, false, sc.Err()
}

// sample is one finished request (or bare publish batch).
type sample struct {
	end time.Duration // since the run's start
	lat time.Duration
	n   int // accepted events (0: failed)
}

// generateLoad runs conc client goroutines, each posting one signed
// single-record document at a time over its keep-alive connection to
// server's /v1/events/oss, for warmup and then duration. Requests that
// finish within the measured time count; serverPID's CPU time and this
// process's, and the server's allocation count (its /metrics), are read
// at its edges. client is the HTTP client the goroutines use ("fasthttp"
// or "net/http").
func generateLoad(ctx context.Context, client, server, run string, conc int, warmup, duration time.Duration, serverPID int) (*loadResult, error) {
	post, closeClient, err := newPoster(client, server+"/v1/events/oss", conc)
	if err != nil {
		return nil, err
	}
	defer closeClient()

	var stop atomic.Bool
	base := time.Now()
	outs := make([]workerOut, conc)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() { loadWorker(ctx, post, run, w, base, &stop, &outs[w]) })
	}
	sleep := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	sleep(warmup)
	mallocs0, gcs0, merr0 := serverMallocs(ctx, server)
	srv0, _ := procCPU(serverPID)
	cli0 := selfCPU()
	mStart := time.Since(base)
	sleep(duration)
	mEnd := time.Since(base)
	srv1, _ := procCPU(serverPID)
	cli1 := selfCPU()
	mallocs1, gcs1, merr1 := serverMallocs(ctx, server)
	stop.Store(true)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &loadResult{conc: conc, window: mEnd - mStart, reasons: map[string]int{}, cpuServer: srv1 - srv0, cpuClient: cli1 - cli0, mallocs: -1}
	if merr0 == nil && merr1 == nil {
		res.mallocs, res.gcs = mallocs1-mallocs0, gcs1-gcs0
	}
	for i := range outs {
		o := &outs[i]
		res.accepted += o.accepted
		res.failed += o.failed
		for k, v := range o.reasons {
			res.reasons[k] += v
		}
		for _, s := range o.samples {
			if s.end < mStart || s.end >= mEnd {
				continue
			}
			if s.n == 1 {
				res.lats = append(res.lats, s.lat)
			} else {
				res.errs++
			}
		}
	}
	slices.Sort(res.lats)
	return res, nil
}

// Load generator clients.
const (
	clientFast    = "fasthttp"
	clientNetHTTP = "net/http"
)

// poster sends one signed document and returns "" if it was accepted
// (202, queued=1), or why not. Each load goroutine calls it with its own
// buffers; it must be safe for concurrent use.
type poster func(ctx context.Context, body []byte, sig string) string

// newPoster returns the client side of the load generator. fasthttp is the
// default: Go's net/http client costs the shared machine ~35-50 µs per
// request (measured), as much CPU as the gateway's own HTTP handling, and
// that CPU is then missing from the server being measured; fasthttp's
// client does the same requests (HTTP/1.1, one keep-alive connection per
// goroutine, every answer read and checked) for a fraction of that.
func newPoster(client, url string, conc int) (poster, func(), error) {
	switch client {
	case clientFast:
		u, err := neturl.Parse(url)
		if err != nil {
			return nil, nil, err
		}
		hc := &fasthttp.HostClient{
			Addr:                          u.Host,
			MaxConns:                      conc,
			MaxIdleConnDuration:           90 * time.Second,
			ReadTimeout:                   30 * time.Second,
			WriteTimeout:                  30 * time.Second,
			NoDefaultUserAgentHeader:      true,
			DisableHeaderNamesNormalizing: true,
			DisablePathNormalizing:        true,
		}
		return func(ctx context.Context, body []byte, sig string) string {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			req.Header.SetMethod(http.MethodPost)
			req.Header.SetContentType("application/json")
			req.Header.Set(signature.Header, sig)
			req.SetBodyRaw(body)
			if err := hc.Do(req, resp); err != nil {
				return "transport: " + err.Error()
			}
			return acceptedReason(resp.StatusCode(), resp.Body(), nil)
		}, hc.CloseIdleConnections, nil
	case clientNetHTTP:
		tr := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conc,
			MaxIdleConnsPerHost: conc,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		return func(ctx context.Context, body []byte, sig string) string {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return "request: " + err.Error()
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(signature.Header, sig)
			resp, err := c.Do(req)
			if err != nil {
				return "transport: " + err.Error()
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			return acceptedReason(resp.StatusCode, b, err)
		}, tr.CloseIdleConnections, nil
	}
	return nil, nil, fmt.Errorf("unknown client %q (want %s or %s)", client, clientFast, clientNetHTTP)
}

type workerOut struct {
	samples  []sample
	accepted int
	failed   int
	reasons  map[string]int
}

func loadWorker(ctx context.Context, post poster, run string, w int, base time.Time, stop *atomic.Bool, out *workerOut) {
	out.reasons = map[string]int{}
	out.samples = make([]sample, 0, 8192)
	var body, key, etag []byte
	prefix := fmt.Sprintf("ingest/%s/w%03d/", run, w)
	for seq := 0; !stop.Load() && ctx.Err() == nil; seq++ {
		key = appendKey(key[:0], prefix, seq)
		etag = appendETag(etag[:0], w, seq)
		now := time.Now()
		body = ingestDoc.append(body[:0], key, etag, now)
		sig := signature.Sign(webhookSecret, now, body)
		t0 := time.Now()
		reason := post(ctx, body, sig)
		t1 := time.Now()
		s := sample{end: t1.Sub(base), lat: t1.Sub(t0)}
		if reason == "" {
			s.n = 1
			out.accepted++
		} else {
			if ctx.Err() != nil {
				return
			}
			out.failed++
			out.reasons[reason]++
		}
		out.samples = append(out.samples, s)
	}
}

// queuedOne is the gateway's 202 body for one new event (as encoding/json
// writes handlers.EventsAccepted{Queued: 1}; TestQueuedOneIsTheGatewaysBody).
var queuedOne = []byte(`{"queued":1,"duplicate":0,"ignored":0,"unrouted":0}` + "\n")

// acceptedReason returns "" for a 202 whose JSON says queued=1, or why the
// answer does not count.
func acceptedReason(code int, body []byte, readErr error) string {
	if readErr != nil {
		return fmt.Sprintf("HTTP %d, reading the body: %v", code, readErr)
	}
	if code != http.StatusAccepted {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return fmt.Sprintf("HTTP %d: %s", code, msg)
	}
	if bytes.Equal(body, queuedOne) {
		// The answer every accepted new event gets, compared as bytes: the
		// decode below cost the shared machine ~1.5 µs per request.
		return ""
	}
	var r struct {
		Queued *int `json:"queued"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Queued == nil {
		return fmt.Sprintf("HTTP 202 without a queued count: %.200s", body)
	}
	if *r.Queued != 1 {
		return fmt.Sprintf("HTTP 202 with queued=%d: %.200s", *r.Queued, body)
	}
	return ""
}
