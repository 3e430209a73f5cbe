package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ingestOptions are the flags of `bench ingest`.
type ingestOptions struct {
	duration       time.Duration
	warmup         time.Duration
	concurrency    []int
	runs           int
	bareBatch      int
	barePublishers int
	maxJobs        int64
	dupWindow      time.Duration
	client         string
	cpuprofile     string
	dir            string
	keep           bool
}

func parseIngestFlags(args []string, stderr io.Writer) (ingestOptions, error) {
	var o ingestOptions
	fs := flag.NewFlagSet("bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./bench ingest [flags]\n\n"+
			"Sends signed single-record OSS event documents to POST /v1/events/oss of a real oss2s3\n"+
			"(gateway only: workers.concurrency 0, embedded JetStream on a fresh data_dir) from a load\n"+
			"generator in this process, then publishes the same jobs straight to JetStream (a bare\n"+
			"embedded nats-server, same stream shape) in two loops: one PublishMsg at a time, each ack\n"+
			"awaited (the \"bare publish loop\" ratio_vs_bare compares with), and several publishers with\n"+
			"async batches, every ack awaited (the most JetStream takes; its ratio is printed too), and\n"+
			"prints, as its last line:\n"+
			"  ingest events_per_s=N p99_ms=P ratio_vs_bare=R gateway_cpu_us=C\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each run (after the warm-up)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before the measured time of each run (not counted)")
	conc := fs.String("concurrency", "16,32,64", "comma-separated numbers of concurrent client requests (one keep-alive connection each); each is a run, the best counts")
	fs.IntVar(&o.runs, "runs", 2, "rounds: each round runs both bare publish loops and oss2s3 at every concurrency; the best of each counts")
	fs.IntVar(&o.bareBatch, "bare-batch", 256, "jobs per async publish batch of the batched bare loop (all acks awaited before the next batch)")
	fs.IntVar(&o.barePublishers, "bare-publishers", 4, "goroutines running the batched bare loop at once, each with its own batches")
	fs.StringVar(&o.client, "client", clientFast, "the load generator's HTTP client: "+clientFast+" or "+clientNetHTTP+" (Go's; costs the shared machine ~40 µs per request more)")
	fs.Int64Var(&o.maxJobs, "max-jobs", 100_000_000, "queue.max_jobs of oss2s3 and MaxMsgs of the bare stream (never reached)")
	fs.DurationVar(&o.dupWindow, "duplicate-window", 2*time.Minute, "queue.duplicate_window of oss2s3 and of the bare stream (oss2s3's default is 2m)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "directory to write CPU profiles to: oss2s3-<run>.pprof of each oss2s3 process (OSS2S3_CPUPROFILE, whole life), loadgen-oss2s3-<run>.pprof of this process (the load generator) meanwhile, bare<i>-<run>.pprof of this process during each bare run (0: serial, 1: batched)")
	fs.StringVar(&o.dir, "dir", "", "where to make the run's directory (JetStream stores, logs, configurations); default $TMPDIR; must be a real disk")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's directory (logs, configurations, stores) at the end")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-concurrency: %q is not a positive number", s)
		}
		if !slices.Contains(o.concurrency, n) {
			o.concurrency = append(o.concurrency, n)
		}
	}
	switch {
	case o.duration < 100*time.Millisecond:
		return o, errors.New("-duration must be at least 100ms")
	case o.warmup < 0:
		return o, errors.New("-warmup must not be negative")
	case o.runs < 1:
		return o, errors.New("-runs must be at least 1")
	case o.bareBatch < 1 || o.barePublishers < 1:
		return o, errors.New("-bare-batch and -bare-publishers must be at least 1")
	case o.client != clientFast && o.client != clientNetHTTP:
		return o, fmt.Errorf("-client: %q is neither %s nor %s", o.client, clientFast, clientNetHTTP)
	case o.maxJobs < 1:
		return o, errors.New("-max-jobs must be at least 1")
	case o.dupWindow < time.Second:
		return o, errors.New("-duplicate-window must be at least 1s (oss2s3's minimum)")
	}
	return o, nil
}

// ingestBed is what every ingest run shares.
type ingestBed struct {
	opts     ingestOptions
	progress io.Writer
	started  time.Time
	dir      string
	logs     *logDir
	oss2s3   string
	revision string
}

func (b *ingestBed) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench %6.1fs: %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

func runIngest(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	opts, err := parseIngestFlags(args, stderr)
	if err != nil {
		return err
	}
	b := &ingestBed{opts: opts, progress: stderr, started: time.Now()}
	goenv, err := moduleEnv(ctx, "ingest")
	if err != nil {
		return err
	}
	if b.dir, b.logs, err = makeWorkDir(opts.dir, getenv("TMPDIR"), "oss2s3-ingest-", "JetStream's file store"); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, removeWorkDir(b.dir, opts.keep, b.logf)) }()
	if opts.cpuprofile != "" {
		if err := os.MkdirAll(opts.cpuprofile, 0o755); err != nil {
			return err
		}
	}
	root := filepath.Dir(goenv["GOMOD"])
	b.logf("building oss2s3 (go build ./server)")
	b.revision = treeRevision(ctx, root)
	if b.oss2s3, err = buildOSS2S3(ctx, root, b.dir); err != nil {
		return err
	}
	b.header(stdout)

	shapes := b.bareShapes()
	loads, bares, err := b.rounds(ctx, stdout, shapes)
	if err != nil {
		return err
	}
	b.logf("done")
	b.summary(stdout, shapes, loads, bares)
	return nil
}

// ingestStep is one run of a round: a bare loop of that shape, or oss2s3
// at that concurrency.
type ingestStep struct {
	bare *bareShape
	conc int
}

// rounds runs opts.runs rounds of every bare shape and every oss2s3
// concurrency, printing each run's result; it returns the oss2s3 results
// by concurrency and the bare results by shape (as shapes is ordered).
func (b *ingestBed) rounds(ctx context.Context, stdout io.Writer, shapes []bareShape) (map[int][]*loadResult, [][]*bareResult, error) {
	opts := b.opts
	// Rounds alternate the order (the bare loops first, then oss2s3 by
	// rising concurrency; the next round the other way round), so that a
	// slow moment of the shared machine does not land on one contender only.
	var order []ingestStep
	for i := range shapes {
		order = append(order, ingestStep{bare: &shapes[i]})
	}
	for _, c := range opts.concurrency {
		order = append(order, ingestStep{conc: c})
	}
	loads := map[int][]*loadResult{}
	bares := make([][]*bareResult, len(shapes))
	for r := 1; r <= opts.runs; r++ {
		steps := slices.Clone(order)
		if r%2 == 0 {
			slices.Reverse(steps)
		}
		for _, s := range steps {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			if s.bare != nil {
				i := slices.Index(shapes, *s.bare)
				name := fmt.Sprintf("bare%d-r%d", i, r)
				b.logf("round %d/%d: bare JetStream publish loop (%s)", r, opts.runs, s.bare)
				res, err := b.bareRun(ctx, name, *s.bare)
				if err != nil {
					return nil, nil, fmt.Errorf("bare run %d (%s): %w", r, s.bare, err)
				}
				fmt.Fprintf(stdout, "run %d bare %-8s %s\n", r, s.bare.label()+":", res.summary())
				bares[i] = append(bares[i], res)
				continue
			}
			name := fmt.Sprintf("oss2s3-r%d-c%d", r, s.conc)
			b.logf("round %d/%d: oss2s3, %d concurrent requests", r, opts.runs, s.conc)
			res, err := b.oss2s3Run(ctx, name, s.conc)
			if err != nil {
				return nil, nil, fmt.Errorf("oss2s3 run %d at concurrency %d: %w", r, s.conc, err)
			}
			fmt.Fprintf(stdout, "run %d oss2s3 c=%-3d %s\n", r, s.conc, res.summary())
			loads[s.conc] = append(loads[s.conc], res)
		}
	}
	return loads, bares, nil
}

// summary prints the best run of each contender, the best oss2s3 against
// each bare loop, and the result line.
func (b *ingestBed) summary(stdout io.Writer, shapes []bareShape, loads map[int][]*loadResult, bares [][]*bareResult) {
	opts := b.opts
	var best *loadResult
	fmt.Fprintf(stdout, "\nsummary (best of %d run(s) each; events/s = 202 answers with queued=1 per second of measured time)\n", opts.runs)
	for _, c := range opts.concurrency {
		rb := bestLoad(loads[c])
		fmt.Fprintf(stdout, "  oss2s3 c=%-3d %8.0f events/s  p50 %.2f ms  p99 %.2f ms  (runs: %s)\n", c, rb.rate(), ms(rb.p(0.50)), ms(rb.p(0.99)), loadRates(loads[c]))
		if best == nil || rb.rate() > best.rate() {
			best = rb
		}
	}
	bests := make([]*bareResult, len(shapes))
	for i, shape := range shapes {
		bests[i] = bestBare(bares[i])
		fmt.Fprintf(stdout, "  bare %-8s %8.0f jobs/s  (runs: %s; %s)\n", shape.label(), bests[i].rate(), bareRates(bares[i]), shape)
	}
	fmt.Fprintf(stdout, "  best oss2s3: c=%d, %.0f events/s, p50 %.2f ms, p99 %.2f ms (goal: >= 10000 events/s, p99 <= 20 ms)\n",
		best.conc, best.rate(), ms(best.p(0.50)), ms(best.p(0.99)))
	for i, shape := range shapes {
		fmt.Fprintf(stdout, "  vs bare %-8s %.2fx (%s)\n", shape.label(), ratio(best.rate(), bests[i].rate()), shape)
	}
	fmt.Fprintf(stdout, "  ratio_vs_bare: against the %s loop (goal: >= 0.60x)\n", shapes[0].label())
	fmt.Fprintf(stdout, "  gateway_cpu_us: CPU of the oss2s3 process per accepted event in that run's measured time (goal: <= 30 µs)\n")
	fmt.Fprintln(stdout, ingestLine(best.rate(), ms(best.p(0.99)), ratio(best.rate(), bests[0].rate()), best.serverCPUPerEvent()))
}

// bareShapes are the bare publish loops of every round. The first is the
// one ratio_vs_bare compares with: the issue's "bare JetStream publish
// loop", a loop that publishes each job and awaits its ack. The second is
// the most JetStream can take from one process (several publishers, async
// batches), reported beside it so that nobody mistakes one for the other.
func (b *ingestBed) bareShapes() []bareShape {
	return []bareShape{
		{publishers: 1, batch: 0},
		{publishers: b.opts.barePublishers, batch: b.opts.bareBatch},
	}
}

func (s bareShape) label() string {
	if s.batch == 0 {
		return "serial"
	}
	return "batched"
}

func ingestLine(eventsPerSec, p99ms, vsBare, gatewayCPUus float64) string {
	return fmt.Sprintf("ingest events_per_s=%.0f p99_ms=%.2f ratio_vs_bare=%.2f gateway_cpu_us=%.1f", eventsPerSec, p99ms, vsBare, gatewayCPUus)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (b *ingestBed) header(w io.Writer) {
	o := b.opts
	fmt.Fprintf(w, "oss2s3 ingest benchmark, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %s, %d CPUs, %.1f GiB RAM, %s/%s, %s; the load generator and the server share it\n",
		cpuModel(), runtime.NumCPU(), float64(memTotal())/(1<<30), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(w, "oss2s3: `oss2s3 serve` built from this tree (%s), fresh data_dir per run under %s, embedded JetStream (file store), workers.concurrency 0, log.level warn, queue.max_jobs %d, duplicate_window %v\n",
		b.revision, b.dir, o.maxJobs, o.dupWindow)
	fmt.Fprintf(w, "load: signed single-record OSS documents (ObjectCreated:PutObject, distinct key each) to POST /v1/events/oss over keep-alive connections (%s client), concurrency %s; %v warm-up, then %v measured; only 202 with queued=1 counts\n",
		o.client, joinInts(o.concurrency), o.warmup, o.duration)
	fmt.Fprintf(w, "bare: nats-server (v2, embedded in the benchmark process, in-process connection, as oss2s3 embeds it), file store, the job stream's shape (WorkQueue, DiscardNew, same duplicate window, oss2s3.jobs.>, durable consumer), the same JSON jobs with Nats-Msg-Id; two loops: %s; and %s\n",
		b.bareShapes()[0], b.bareShapes()[1])
	fmt.Fprintf(w, "rounds: %d (each: bare and every concurrency, order alternating)\n\n", o.runs)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func bestLoad(rs []*loadResult) *loadResult {
	var best *loadResult
	for _, r := range rs {
		if best == nil || r.rate() > best.rate() {
			best = r
		}
	}
	return best
}

func bestBare(rs []*bareResult) *bareResult {
	var best *bareResult
	for _, r := range rs {
		if best == nil || r.rate() > best.rate() {
			best = r
		}
	}
	return best
}

func loadRates(rs []*loadResult) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%.0f", r.rate())
	}
	return strings.Join(s, ", ")
}

func bareRates(rs []*bareResult) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%.0f", r.rate())
	}
	return strings.Join(s, ", ")
}
