package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/internal/ossemu"
)

const (
	lagSrcBucket = "src-lag"
	// lagMetric is oss2s3's own event-to-copy histogram
	// (metrics.Metrics.EndToEndLag, observed when a copy is settled).
	lagMetric = "oss2s3_end_to_end_lag_seconds"
)

// Steps of `bench lag`.
const (
	stepSmall = "small" // small objects only, at -rate: the main step
	stepMixed = "mixed" // the same rate with -multipart-share multipart objects
	stepMax   = "max"   // small objects only at -max-rate
)

// lagOptions are the flags of `bench lag`.
type lagOptions struct {
	rate          int
	maxRate       int
	duration      time.Duration
	warmup        time.Duration
	drain         time.Duration
	steps         []string
	smallSize     sizeRange
	multipartSize sizeRange
	share         float64
	senders       int
	listers       int
	poll          time.Duration
	workers       string
	seed          uint64
	cpuprofile    string
	dir           string
	keep          bool
	smoke         bool
}

func parseLagFlags(args []string, stderr io.Writer) (lagOptions, error) {
	o := lagOptions{smallSize: sizeRange{10 << 10, 10 << 10}, multipartSize: sizeRange{20 << 20, 40 << 20}}
	fs := flag.NewFlagSet("bench lag", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./bench lag [flags]\n\n"+
			"Writes objects to the OSS emulator at a steady rate and posts each one's signed OSS event to a\n"+
			"real oss2s3 (copy workers on, embedded JetStream), which copies them to versitygw; the harness\n"+
			"lists the destination to see when each object becomes readable. Steps: small objects only at\n"+
			"-rate (the main step), the same rate with -multipart-share multipart objects, and small objects\n"+
			"at -max-rate if set. Prints the lag per step and class, oss2s3's own lag histogram over the\n"+
			"step, each process's CPU share, and, as its last line:\n"+
			"  lag events_per_s=N p50_ms=X p99_ms=Y p999_ms=Z max_ms=M mixed_small_p99_ms=S\n"+
			"(a figure of a step not run is NaN; one over objects of which too many never arrived is +Inf).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.rate, "rate", 1000, "events a second of the small and mixed steps")
	fs.IntVar(&o.maxRate, "max-rate", 0, "if > 0, a third step of small objects only at this rate (the highest oss2s3 sustains, found by trying)")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "measured time of each step (after the warm-up)")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "load before the measured time of each step (tracked, not counted)")
	fs.DurationVar(&o.drain, "drain", 60*time.Second, "after the load, how long to wait for the small objects still missing (multipart ones are not waited for)")
	steps := fs.String("steps", stepSmall+","+stepMixed, "comma-separated steps: small, mixed (max is added by -max-rate)")
	fs.Var(&o.smallSize, "small-size", "size of each small object, or a range low-high (uniform)")
	fs.Var(&o.multipartSize, "multipart-size", "size range of the multipart objects of the mixed step ("+fmt.Sprint(multipartVariants)+" sizes spread over it; above oss2s3's multipart_threshold, 16MiB by default)")
	fs.Float64Var(&o.share, "multipart-share", 0.10, "share of the mixed step's events that are multipart objects")
	fs.IntVar(&o.senders, "senders", 256, "goroutines writing objects and posting events (one keep-alive connection each); the pacer waits when all are busy, so they must cover the rate times the gateway's accept latency (50 ms while multipart copies run)")
	fs.IntVar(&o.listers, "listers", 4, "LIST requests the lag tracker makes at once")
	fs.DurationVar(&o.poll, "poll", 5*time.Millisecond, "shortest interval between two LISTs of one chunk of keys (the lag's resolution while copies keep up)")
	fs.StringVar(&o.workers, "oss2s3-workers", "{shutdown_grace: 2s}", "YAML flow mapping for oss2s3's workers section (the default only shortens the stop at the end of a step, when multipart copies may still run)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the classes and sizes of the events")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "directory to write CPU profiles to: oss2s3-<step>.pprof (OSS2S3_CPUPROFILE, the process's whole life) and harness-<step>.pprof (this process: emulator, load, lister) per step")
	fs.StringVar(&o.dir, "dir", "", "where to make the run's directory (the destination's files, JetStream, logs); default $TMPDIR; must be a real disk")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's directory at the end")
	fs.BoolVar(&o.smoke, "smoke", false, "a quick check that the bench works (under a minute, a third of it building): -rate 200 -warmup 1s -duration 4s -drain 5s unless given; its figures are not the benchmark's")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.smoke {
		smokeDefaults(fs)
	}
	var err error
	if o.steps, err = parseSteps(*steps, o.maxRate); err != nil {
		return o, err
	}
	if err := o.validate(); err != nil {
		return o, err
	}
	return o, nil
}

// smokeDefaults sets -smoke's short figures on the flags not given.
func smokeDefaults(fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range map[string]string{"rate": "200", "warmup": "1s", "duration": "4s", "drain": "5s"} {
		if !set[name] {
			_ = fs.Set(name, v) // the values above parse
		}
	}
}

// parseSteps reads -steps, each step once, and adds the max step when
// -max-rate is set.
func parseSteps(list string, maxRate int) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s != stepSmall && s != stepMixed {
			return nil, fmt.Errorf("-steps: unknown step %q (want small, mixed)", s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if maxRate > 0 {
		out = append(out, stepMax)
	}
	return out, nil
}

func (o lagOptions) validate() error {
	switch {
	case o.rate < 1 || o.maxRate < 0:
		return errors.New("-rate must be at least 1 and -max-rate not negative")
	case o.duration < time.Second || o.warmup < 0 || o.drain < 0:
		return errors.New("-duration must be at least 1s; -warmup and -drain not negative")
	case o.share < 0 || o.share > 1:
		return errors.New("-multipart-share must be within 0..1")
	case o.smallSize.hi > 1<<20:
		return errors.New("-small-size: at most 1MiB (small objects are held in the emulator's memory)")
	case o.senders < 1 || o.listers < 1:
		return errors.New("-senders and -listers must be at least 1")
	case o.poll < time.Millisecond:
		return errors.New("-poll must be at least 1ms")
	}
	return nil
}

// lagStep is one load level of a run.
type lagStep struct {
	index int
	name  string
	rate  int
	share float64 // of multipart objects
}

// prefix is the step's key prefix at the source and destination.
func (s lagStep) prefix() string { return s.name + "/" }

func (o lagOptions) plan() []lagStep {
	var out []lagStep
	for i, name := range o.steps {
		st := lagStep{index: i, name: name, rate: o.rate}
		switch name {
		case stepMixed:
			st.share = o.share
		case stepMax:
			st.rate = o.maxRate
		}
		out = append(out, st)
	}
	return out
}

// lagBed is what every step shares.
type lagBed struct {
	opts           lagOptions
	progress       io.Writer
	started        time.Time
	dir            string
	logs           *logDir
	emu            *ossemu.Server
	s3             *versity
	ossURL         string
	oss2s3         string
	revision       string
	pool           []byte  // small objects' bytes are slices of it
	multipartSizes []int64 // the sizes multipart objects take
}

func (b *lagBed) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench %6.1fs: %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

func runLag(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	opts, err := parseLagFlags(args, stderr)
	if err != nil {
		return err
	}
	b := &lagBed{opts: opts, progress: stderr, started: time.Now()}
	goenv, err := moduleEnv(ctx, "lag")
	if err != nil {
		return err
	}
	versityBin, err := findTool("versitygw", goenv)
	if err != nil {
		return fmt.Errorf("%v; install it with: %s", err, versityInstall)
	}
	if b.dir, b.logs, err = makeWorkDir(opts.dir, getenv("TMPDIR"), "oss2s3-lag-", "the destination"); err != nil {
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

	b.emu = ossemu.New(ossemu.Options{Credentials: map[string]string{ossAccessKey: ossSecretKey}, Region: ossRegion})
	defer b.emu.Close()
	if b.ossURL, err = b.emu.Start("127.0.0.1:0"); err != nil {
		return err
	}
	b.emu.CreateBucket(lagSrcBucket)
	b.pool = make([]byte, 4<<20)
	fillRandom(b.pool, opts.seed)
	b.multipartSizes = opts.multipartSize.variants(multipartVariants)
	b.logf("starting versitygw (%s)", versityBin)
	if b.s3, err = startVersity(ctx, versityBin, filepath.Join(b.dir, "versitygw"), b.logs); err != nil {
		return err
	}
	defer b.s3.stop()

	b.header(stdout, versityBin)
	results := map[string]*stepResult{}
	for _, st := range opts.plan() {
		if st.share > 0 {
			// The emulator computes each synthetic object's CRC-64 once;
			// doing it now keeps it out of the step.
			for v, size := range b.multipartSizes {
				if _, err := b.emu.PutSynthetic(lagSrcBucket, "warm/"+fmt.Sprint(v), size, 1<<40*uint64(v+1), nil); err != nil {
					return err
				}
			}
		}
		b.logf("step %s: %d events/s for %v after %v of warm-up, %.0f%% multipart; load average %s", st.name, st.rate,
			opts.duration, opts.warmup, 100*st.share, loadAvg())
		res, err := b.runStep(ctx, st)
		if err != nil {
			return fmt.Errorf("step %s: %w", st.name, err)
		}
		res.print(stdout, opts)
		results[st.name] = res
	}
	b.logf("done")
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, lagLine(results))
	return nil
}

func (b *lagBed) header(w io.Writer, versityBin string) {
	o := b.opts
	fmt.Fprintf(w, "oss2s3 lag benchmark, %s; load average %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), loadAvg())
	fmt.Fprintf(w, "machine: %s, %d CPUs, %.1f GiB RAM, %s/%s, %s; the emulator, versitygw, oss2s3 and the harness share it (and whatever else runs)\n",
		cpuModel(), runtime.NumCPU(), float64(memTotal())/(1<<30), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(w, "source: OSS emulator (in this process) %s; small objects %s of random bytes in memory, multipart ones %s synthetic (%d sizes)\n",
		b.ossURL, o.smallSize.String(), o.multipartSize.String(), len(b.multipartSizes))
	fmt.Fprintf(w, "destination: versitygw (%s) over TLS at %s, files on %s; a fresh bucket per step\n", versityBin, b.s3.Endpoint, b.s3.Root)
	fmt.Fprintf(w, "oss2s3: `oss2s3 serve` built from this tree (%s), a fresh process and data_dir per step, workers: %s, log.level warn; events are single-record signed OSS documents to POST /v1/events/oss, %d senders\n",
		b.revision, o.workers, o.senders)
	fmt.Fprintf(w, "lag: OSS event time (the object written to the source, just before its event is posted) to the first ListObjectsV2 of its chunk of %d keys that shows it at the destination with its size; a chunk is listed again after a tenth of its oldest missing object's age, at least %v, at most 500ms, %d LISTs at once\n\n",
		lagChunk, o.poll, o.listers)
}

// cpuSnap is the CPU time used so far by each process of the bed.
type cpuSnap struct {
	at                      time.Time
	oss2s3, versity, self   time.Duration
	machineBusy, machineAll time.Duration
	stallCPU, stallIO       time.Duration // PSI "some" totals
}

func (b *lagBed) snap(oss2s3PID int) cpuSnap {
	s := cpuSnap{at: time.Now(), self: selfCPU()}
	s.oss2s3, _ = procCPU(oss2s3PID)
	s.versity, _ = procCPU(b.s3.proc.pid())
	if t, err := machineCPU(); err == nil {
		s.machineBusy, s.machineAll = t.busy, t.busy+t.idle+t.iowait
	}
	s.stallCPU, _ = pressureSome("cpu")
	s.stallIO, _ = pressureSome("io")
	return s
}

// stepResult is what one step measured.
type stepResult struct {
	step        lagStep
	load        *lagLoad
	window      time.Duration
	events      int          // accepted events of the measured window
	lags        [2][]float64 // ms, sorted, per class, of the measured window's events; +Inf: never seen
	all         []float64    // ms, sorted: every object of the step seen (warm-up too), as oss2s3's histogram counts
	missing     [2]int       // objects of the whole step never seen
	objs        [2][]lagObj  // the tracker's, per class
	hist        histogram    // oss2s3's, over the step
	cpu0        cpuSnap
	cpu1        cpuSnap
	lists       int64
	listErrs    int
	lastListErr string
	errs        []string
	samples     []cpuSnap      // every second of the load
	results     map[string]int // oss2s3_objects_total by result
	requests    map[string]int // oss2s3's requests to the source, by operation
	drainFor    time.Duration
}

func (b *lagBed) runStep(ctx context.Context, st lagStep) (res *stepResult, err error) {
	o := b.opts
	dst := "lag-" + st.name
	if err := b.s3.createBucket(ctx, dst); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.s3.dropBucket(dst)) }()
	cfg := oss2s3Config{
		DataDir: filepath.Join(b.dir, st.name), OSSURL: b.ossURL, SrcBucket: lagSrcBucket,
		S3URL: b.s3.Endpoint, CAFile: b.s3.CAFile, DstBucket: dst, Workers: o.workers,
	}
	if o.cpuprofile != "" {
		cfg.Env = []string{"OSS2S3_CPUPROFILE=" + filepath.Join(o.cpuprofile, "oss2s3-"+st.name+".pprof")}
		stop, err := startSelfProfile(filepath.Join(o.cpuprofile, "harness-"+st.name+".pprof"))
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	srv, err := startOSS2S3(ctx, b.oss2s3, cfg, b.logs.path(st.name+".log"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = srv.stop() }() // the error paths; the success path stops it below
	b.emu.ResetRequests()
	before, err := scrapeLag(ctx, srv.addr)
	if err != nil {
		return nil, err
	}

	tr := newListTracker(b.s3.Client, dst, st.name, o.poll, o.listers, func(class, seq int) {
		if class == classSmall { // held in memory: let it go once copied
			b.emu.DeleteObject(lagSrcBucket, lagKey(st.prefix(), class, seq))
		}
	})
	pctx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() { tr.run(pctx); close(polled) }()
	defer func() { stopPoll(); <-polled }()

	post, closeClient, err := newPoster(clientFast, "http://"+srv.addr+"/v1/events/oss", o.senders)
	if err != nil {
		return nil, err
	}
	defer closeClient()
	res = &stepResult{step: st}
	// A CPU snapshot a second, so that the report can say, slice by
	// slice, whether the lag grew when something else took the cores.
	stopSampling := b.sample(ctx, srv.proc.pid(), res)
	edges := 0
	load, err := b.loadStep(ctx, st, tr, post, func() {
		if edges == 0 {
			res.cpu0 = b.snap(srv.proc.pid())
		} else {
			res.cpu1 = b.snap(srv.proc.pid())
		}
		edges++
	})
	stopSampling()
	if err != nil {
		return nil, err
	}
	res.load = load
	b.logf("step %s: load done (%d events accepted, %d refused); waiting up to %v for the small objects still missing (%d)",
		st.name, load.accepted, load.failed, o.drain, tr.pendingCount(classSmall))

	waitFrom := time.Now()
	if err := b.waitMissing(ctx, st, tr, srv); err != nil {
		return nil, err
	}
	res.drainFor = time.Since(waitFrom)
	after, err := scrapeLag(ctx, srv.addr)
	if err != nil {
		return nil, err
	}
	res.hist = after.minus(before)
	if c, err := srv.counts(ctx); err == nil {
		res.results = c.byResult
	}
	res.requests = b.emu.Requests()
	stopPoll()
	<-polled
	if err := srv.stop(); err != nil {
		return nil, fmt.Errorf("oss2s3 stop: %w; log:\n%s", err, srv.proc.tail())
	}
	res.lists = tr.lists.Load()
	res.errs = tr.errors()
	res.listErrs, res.lastListErr = tr.listErrors()
	res.tally(tr)
	for class := range 2 {
		for seq := range len(tr.snapshot(class)) {
			b.emu.DeleteObject(lagSrcBucket, lagKey(st.prefix(), class, seq))
		}
	}
	if len(res.errs) > 0 {
		return nil, fmt.Errorf("the destination is wrong or could not be listed (%d problems), e.g. %s", len(res.errs), res.errs[0])
	}
	return res, nil
}

// sample takes a CPU snapshot a second into res.samples until the
// returned function is called, so that the report can say, slice by
// slice, whether the lag grew when something else took the cores.
func (b *lagBed) sample(ctx context.Context, pid int, res *stepResult) (stop func()) {
	sampled := make(chan struct{})
	sctx, stopSampling := context.WithCancel(ctx)
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			res.samples = append(res.samples, b.snap(pid))
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { stopSampling(); <-sampled }
}

// waitMissing waits, up to -drain, for the small objects still missing
// (and the multipart ones of a step without any).
func (b *lagBed) waitMissing(ctx context.Context, st lagStep, tr *listTracker, srv *oss2s3Run) error {
	for deadline := time.Now().Add(b.opts.drain); ; {
		missing := tr.pendingCount(classSmall)
		if st.share == 0 {
			missing += tr.pendingCount(classMultipart)
		}
		if missing == 0 || time.Now().After(deadline) {
			return nil
		}
		if srv.proc.exited() {
			return fmt.Errorf("oss2s3 exited: %v; log:\n%s", srv.proc.err, srv.proc.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tally turns the tracker's objects into the step's lags.
func (r *stepResult) tally(tr *listTracker) {
	r.window = r.load.end.Sub(r.load.start)
	for class := range 2 {
		r.objs[class] = tr.snapshot(class)
		for _, o := range r.objs[class] {
			if o.state == objRejected || o.sent.IsZero() {
				continue
			}
			lag := lagOf(o)
			if o.state == objArrived {
				r.all = append(r.all, lag)
			} else {
				r.missing[class]++
			}
			if !o.sent.Before(r.load.start) && o.sent.Before(r.load.end) {
				r.lags[class] = append(r.lags[class], lag)
			}
		}
		slices.Sort(r.lags[class])
		r.events += len(r.lags[class])
	}
	slices.Sort(r.all)
}

func (r *stepResult) rate() float64 { return float64(r.events) / r.window.Seconds() }

// smallQ is a quantile of the measured window's small objects.
func (r *stepResult) smallQ(q float64) float64 { return lagQuantile(r.lags[classSmall], q) }

func (r *stepResult) print(w io.Writer, o lagOptions) {
	st := r.step
	fmt.Fprintf(w, "step %s: %d events/s asked, %.1f/s achieved (%d events sent in %.1fs measured, after %v of warm-up), %.0f%% multipart; %d event(s) refused, %d sent over one period late (pacer or senders behind)\n",
		st.name, st.rate, r.rate(), r.events, r.window.Seconds(), o.warmup, 100*st.share, r.load.failed, r.load.late)
	if r.load.failed > 0 {
		fmt.Fprintf(w, "  refused: %s\n", formatReasons(r.load.reasons))
	}
	for class := range 2 {
		ls := r.lags[class]
		if len(ls) == 0 {
			continue
		}
		notSeen := len(ls) - len(slices.DeleteFunc(slices.Clone(ls), func(v float64) bool { return math.IsInf(v, 1) }))
		fmt.Fprintf(w, "  %-9s lag ms: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%d objects, %d never seen)\n", classNames[class],
			fmtMS(lagQuantile(ls, 0.5)), fmtMS(lagQuantile(ls, 0.9)), fmtMS(lagQuantile(ls, 0.99)), fmtMS(lagQuantile(ls, 0.999)),
			fmtMS(lagQuantile(ls, 1)), len(ls), notSeen)
	}
	var posts []float64
	for class := range 2 {
		for _, o := range r.objs[class] {
			if !o.posted.IsZero() && !o.sent.Before(r.load.start) && o.sent.Before(r.load.end) {
				posts = append(posts, float64(o.posted.Sub(o.sent))/float64(time.Millisecond))
			}
		}
	}
	slices.Sort(posts)
	fmt.Fprintf(w, "  event accepted (event time to the gateway's 202) ms: p50 %s  p99 %s  max %s\n",
		fmtMS(lagQuantile(posts, 0.5)), fmtMS(lagQuantile(posts, 0.99)), fmtMS(lagQuantile(posts, 1)))
	fmt.Fprintf(w, "  the whole step (warm-up too): %d objects seen, %d small and %d multipart never seen (waited %.1fs after the load for the small ones)\n",
		len(r.all), r.missing[classSmall], r.missing[classMultipart], r.drainFor.Seconds())
	fmt.Fprintf(w, "  oss2s3's %s over the step: %.0f copies, p50 ~%s ms, p99 ~%s ms (interpolated in buckets %s s); the harness over the %d objects it saw: p50 %s ms, p99 %s ms\n",
		lagMetric, r.hist.count, fmtMS(1000*r.hist.quantile(0.5)), fmtMS(1000*r.hist.quantile(0.99)), r.hist.bounds(),
		len(r.all), fmtMS(lagQuantile(r.all, 0.5)), fmtMS(lagQuantile(r.all, 0.99)))
	if r.results != nil {
		fmt.Fprintf(w, "  oss2s3_objects_total by result: %v; oss2s3's requests to the source: %s\n", r.results, perObject(r.requests, len(r.all)))
	}
	wall := r.cpu1.at.Sub(r.cpu0.at).Seconds()
	share := func(d time.Duration) float64 { return 100 * d.Seconds() / wall }
	o2, vg, hs := r.cpu1.oss2s3-r.cpu0.oss2s3, r.cpu1.versity-r.cpu0.versity, r.cpu1.self-r.cpu0.self
	busy, all := r.cpu1.machineBusy-r.cpu0.machineBusy, r.cpu1.machineAll-r.cpu0.machineAll
	perEvent := func(d time.Duration) float64 { return float64(d.Microseconds()) / max(float64(r.events), 1) }
	fmt.Fprintf(w, "  cpu in the measured window (%% of one core): oss2s3 %.0f%% (%.0f µs/event), versitygw %.0f%% (%.0f µs/event), harness %.0f%% (%.0f µs/event: emulator, load, lister); machine %.0f%% busy of %d00%%, other processes %.0f%%\n",
		share(o2), perEvent(o2), share(vg), perEvent(vg), share(hs), perEvent(hs),
		100*float64(runtime.NumCPU())*ratio(busy.Seconds(), all.Seconds()), runtime.NumCPU(),
		100*float64(runtime.NumCPU())*ratio(busy.Seconds(), all.Seconds())-share(o2)-share(vg)-share(hs))
	fmt.Fprintf(w, "  pressure (PSI, share of the time some task waited): cpu %.0f%%, io %.0f%%\n",
		share(r.cpu1.stallCPU-r.cpu0.stallCPU), share(r.cpu1.stallIO-r.cpu0.stallIO))
	r.printSlices(w)
	fmt.Fprintf(w, "  lister: %d LISTs (%.0f/s)", r.lists, float64(r.lists)/(r.load.loadEnd.Sub(r.load.start).Seconds()+o.warmup.Seconds()+r.drainFor.Seconds()))
	if r.listErrs > 0 {
		// A failed LIST only delays the look: its objects' lags can be
		// late by one more interval.
		fmt.Fprintf(w, ", %d failed (tried again at the next look; the last: %s)", r.listErrs, r.lastListErr)
	}
	fmt.Fprintln(w)
}

// lagLine is the last line: the main (small) step's lags and rate, and the
// small objects' p99 of the mixed step.
func lagLine(results map[string]*stepResult) string {
	nan := math.NaN()
	rate, p50, p99, p999, pmax, mixed := nan, nan, nan, nan, nan, nan
	if r := results[stepSmall]; r != nil {
		rate, p50, p99, p999, pmax = r.rate(), r.smallQ(0.5), r.smallQ(0.99), r.smallQ(0.999), r.smallQ(1)
	}
	if r := results[stepMixed]; r != nil {
		mixed = r.smallQ(0.99)
	}
	rateS := "NaN"
	if !math.IsNaN(rate) {
		rateS = fmt.Sprintf("%.0f", rate)
	}
	return fmt.Sprintf("lag events_per_s=%s p50_ms=%s p99_ms=%s p999_ms=%s max_ms=%s mixed_small_p99_ms=%s",
		rateS, fmtMS(p50), fmtMS(p99), fmtMS(p999), fmtMS(pmax), fmtMS(mixed))
}

// scrapeLag reads oss2s3's lag histogram for the bench task; an absent
// series (no copy settled yet) is an empty histogram.
func scrapeLag(ctx context.Context, addr string) (histogram, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return histogram{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return histogram{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return histogram{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return histogram{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	h, _, err := parseHistogram(bytes.NewReader(body), lagMetric, map[string]string{"task": benchTask})
	return h, err
}

// loadAvg is /proc/loadavg's three figures.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// perObject writes request counts and their number per object seen.
func perObject(reqs map[string]int, objects int) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(reqs)) {
		parts = append(parts, fmt.Sprintf("%s %d (%.2f/object)", op, reqs[op], ratio(float64(reqs[op]), float64(objects))))
	}
	return strings.Join(parts, ", ")
}

// lagSlice is how the report cuts the measured time.
const lagSlice = 10 * time.Second

// printSlices prints, for each 10 s of the measured time, the small
// objects sent in it, their lag, and the CPU each process took meanwhile.
func (r *stepResult) printSlices(w io.Writer) {
	objs := r.objs[classSmall]
	for from := r.load.start; from.Before(r.load.end); from = from.Add(lagSlice) {
		to := from.Add(lagSlice)
		if to.After(r.load.end) {
			to = r.load.end
		}
		var ls []float64
		for _, o := range objs {
			if !o.sent.Before(from) && o.sent.Before(to) && o.state != objRejected {
				ls = append(ls, lagOf(o))
			}
		}
		slices.Sort(ls)
		a, z := snapAt(r.samples, from), snapAt(r.samples, to)
		wall := z.at.Sub(a.at).Seconds()
		if len(ls) == 0 || wall <= 0 {
			continue
		}
		share := func(d time.Duration) float64 { return 100 * d.Seconds() / wall }
		machine := 100 * float64(runtime.NumCPU()) * ratio((z.machineBusy-a.machineBusy).Seconds(), (z.machineAll-a.machineAll).Seconds())
		o2, vg, hs := share(z.oss2s3-a.oss2s3), share(z.versity-a.versity), share(z.self-a.self)
		fmt.Fprintf(w, "    %3.0f-%3.0fs: %5d small, lag ms p50 %6s p99 %6s max %6s | cpu %% oss2s3 %3.0f versitygw %3.0f harness %3.0f others %3.0f | stalled %% cpu %3.0f io %3.0f\n",
			from.Sub(r.load.start).Seconds(), to.Sub(r.load.start).Seconds(), len(ls),
			fmtMS(lagQuantile(ls, 0.5)), fmtMS(lagQuantile(ls, 0.99)), fmtMS(lagQuantile(ls, 1)), o2, vg, hs, machine-o2-vg-hs,
			share(z.stallCPU-a.stallCPU), share(z.stallIO-a.stallIO))
	}
}

// snapAt is the first snapshot taken at or after t (the last one if none).
func snapAt(ss []cpuSnap, t time.Time) cpuSnap {
	for _, s := range ss {
		if !s.at.Before(t) {
			return s
		}
	}
	if len(ss) == 0 {
		return cpuSnap{}
	}
	return ss[len(ss)-1]
}

// lagOf is an object's lag in ms, +Inf if it was never seen.
func lagOf(o lagObj) float64 {
	if o.state != objArrived {
		return math.Inf(1)
	}
	return float64(o.arrived.Sub(o.sent)) / float64(time.Millisecond)
}
