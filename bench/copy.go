package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/internal/ossemu"
)

// The cases `bench copy` knows, in the order it runs them.
const (
	caseLarge = "large"
	caseSmall = "small"
	caseRSS   = "rss"
)

var allCases = []string{caseLarge, caseSmall, caseRSS}

// rclone's settings for each case: variants separated by ";", each tried in
// the same run; the best one is compared. Both tools copy into a bucket
// that exists and is empty, hence --s3-no-check-bucket and --no-check-dest.
const (
	defaultRcloneLarge = "--transfers 4 --multi-thread-streams 8 --s3-chunk-size 16M --s3-upload-concurrency 8 --s3-no-check-bucket --no-check-dest" +
		";--transfers 4 --multi-thread-streams 4 --s3-chunk-size 64M --s3-upload-concurrency 4 --s3-no-check-bucket --no-check-dest"
	defaultRcloneSmall = "--transfers 16 --checkers 16 --fast-list --s3-no-check-bucket --no-check-dest --s3-no-head --s3-no-head-object" +
		";--transfers 32 --checkers 32 --fast-list --s3-no-check-bucket --no-check-dest --s3-no-head --s3-no-head-object"
)

// copyOptions are the flags of `bench copy`.
type copyOptions struct {
	cases          []string
	largeSize      byteSize
	largeCount     int
	smallSize      byteSize
	smallCount     int
	rssSize        byteSize
	runs           int
	ceilingPart    byteSize
	ceilingStreams []int
	rcloneLarge    [][]string
	rcloneSmall    [][]string
	oss2s3Workers  string
	oss2s3Options  string
	verifySmall    int
	timeout        time.Duration
	dir            string
	keep           bool
}

func parseCopyFlags(args []string, stderr io.Writer) (copyOptions, error) {
	o := copyOptions{largeSize: 1 << 30, smallSize: 10 << 10, rssSize: 2 << 30, ceilingPart: 16 << 20}
	fs := flag.NewFlagSet("bench copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./bench copy [flags]\n\n"+
			"Copies the same objects with oss2s3 and with rclone, from the OSS emulator to versitygw over TLS,\n"+
			"and prints, as its last line:\n"+
			"  copy large_ratio=R1 small_ratio=R2 ceiling_ratio=R3 peak_rss_mib=M cpu_per_gib_ratio=C1 cpu_per_object_ratio=C2\n"+
			"(medians of -runs runs; a ratio or figure of a case not run is 0).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	cases := fs.String("cases", strings.Join(allCases, ","), "comma-separated cases to run: large, small, rss")
	fs.Var(&o.largeSize, "large-size", "size of each large object")
	fs.IntVar(&o.largeCount, "large-count", 4, "number of large objects")
	fs.Var(&o.smallSize, "small-size", "size of each small object")
	fs.IntVar(&o.smallCount, "small-count", 10_000, "number of small objects")
	fs.Var(&o.rssSize, "rss-size", "size of the one object whose copy the peak RSS is measured on")
	fs.IntVar(&o.runs, "runs", 3, "timed runs of each tool and setting per case (and of the ceiling); every figure is the median of its runs")
	fs.Var(&o.ceilingPart, "ceiling-part", "ranged GET and UploadPart size of the ceiling measurement")
	streams := fs.String("ceiling-streams", "8,16", "comma-separated stream counts the ceiling is measured at; the best counts")
	rl := fs.String("rclone-large", defaultRcloneLarge, "rclone flags for the large case; variants separated by ';'")
	rs := fs.String("rclone-small", defaultRcloneSmall, "rclone flags for the small case; variants separated by ';'")
	fs.StringVar(&o.oss2s3Options, "oss2s3-task-options", "", "YAML flow mapping for the task's options in the large and small cases, e.g. '{compare: false}' (rclone's --no-check-dest); empty keeps the defaults (the rss case always does)")
	fs.StringVar(&o.oss2s3Workers, "oss2s3-workers", "", "YAML flow mapping for oss2s3's workers section in the large and small cases, e.g. '{concurrency: 16}'; empty keeps the defaults (the rss case always does)")
	fs.IntVar(&o.verifySmall, "verify-small", 100, "small objects whose bytes are checked after each copy (all are checked by listing)")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "longest one copy run may take")
	fs.StringVar(&o.dir, "dir", "", "where to make the run's directory (the destination's files, logs, configurations); default $TMPDIR; must be a real disk")
	fs.BoolVar(&o.keep, "keep", false, "keep the directory (logs, configurations) at the end")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, c := range strings.Split(*cases, ",") {
		c = strings.TrimSpace(c)
		if !slices.Contains(allCases, c) {
			return o, fmt.Errorf("-cases: unknown case %q (want %s)", c, strings.Join(allCases, ", "))
		}
		if !slices.Contains(o.cases, c) {
			o.cases = append(o.cases, c)
		}
	}
	for _, s := range strings.Split(*streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-ceiling-streams: %q is not a positive number", s)
		}
		o.ceilingStreams = append(o.ceilingStreams, n)
	}
	o.rcloneLarge, o.rcloneSmall = variants(*rl), variants(*rs)
	switch {
	case o.runs < 1:
		return o, errors.New("-runs must be at least 1")
	case o.largeCount < 1 || o.smallCount < 1:
		return o, errors.New("-large-count and -small-count must be at least 1")
	case o.largeSize < 1 || o.rssSize < 1:
		return o, errors.New("-large-size and -rss-size must be at least 1 byte")
	case o.ceilingPart < 5<<20:
		return o, errors.New("-ceiling-part must be at least 5MiB (S3's smallest part)")
	case o.has(caseLarge) && len(o.rcloneLarge) == 0, o.has(caseSmall) && len(o.rcloneSmall) == 0:
		return o, errors.New("-rclone-large and -rclone-small need at least one variant")
	}
	return o, nil
}

func (o copyOptions) has(c string) bool { return slices.Contains(o.cases, c) }

// variants splits "flags;flags" into flag lists.
func variants(s string) [][]string {
	var out [][]string
	for _, v := range strings.Split(s, ";") {
		if f := strings.Fields(v); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// bed is everything a run needs: the emulator, versitygw, the binaries.
type bed struct {
	opts     copyOptions
	progress io.Writer
	started  time.Time
	dir      string
	logs     *logDir
	emu      *ossemu.Server
	ossURL   string
	s3       *versity
	oss2s3   string
	revision string // of the tree oss2s3 is built from
	rclone   *rclone
}

func (b *bed) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench %6.1fs: %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

func runCopy(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	opts, err := parseCopyFlags(args, stderr)
	if err != nil {
		return err
	}
	b := &bed{opts: opts, progress: stderr, started: time.Now()}

	goenv, err := moduleEnv(ctx, "copy")
	if err != nil {
		return err
	}
	versityBin, err := findTool("versitygw", goenv)
	if err != nil {
		return fmt.Errorf("%v; install it with: %s", err, versityInstall)
	}
	rcloneBin := ""
	if opts.has(caseLarge) || opts.has(caseSmall) {
		if rcloneBin, err = findTool("rclone", goenv); err != nil {
			return fmt.Errorf("%v; install it with: %s", err, rcloneInstall)
		}
	}

	if b.dir, b.logs, err = makeWorkDir(opts.dir, getenv("TMPDIR"), "oss2s3-bench-", "the destination"); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, removeWorkDir(b.dir, opts.keep, b.logf)) }()

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
	b.logf("starting versitygw (%s)", versityBin)
	if b.s3, err = startVersity(ctx, versityBin, filepath.Join(b.dir, "versitygw"), b.logs); err != nil {
		return err
	}
	defer b.s3.stop()
	if rcloneBin != "" {
		if b.rclone, err = newRclone(rcloneBin, b.dir, b.ossURL, b.s3.Endpoint, b.s3.CAFile); err != nil {
			return err
		}
	}

	b.header(stdout, versityBin)
	var res results
	if opts.has(caseLarge) {
		if res.large, err = b.largeCase(ctx, stdout); err != nil {
			return fmt.Errorf("large case: %w", err)
		}
	}
	if opts.has(caseSmall) {
		if res.small, err = b.smallCase(ctx, stdout); err != nil {
			return fmt.Errorf("small case: %w", err)
		}
	}
	if opts.has(caseRSS) {
		if res.rssBytes, err = b.rssCase(ctx, stdout); err != nil {
			return fmt.Errorf("rss case: %w", err)
		}
	}
	b.logf("done")
	fmt.Fprintln(stdout, res.line())
	return nil
}

func (b *bed) header(w io.Writer, versityBin string) {
	o := b.opts
	fmt.Fprintf(w, "oss2s3 copy benchmark, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %s, %d CPUs, %.1f GiB RAM, %s/%s, %s\n", cpuModel(), runtime.NumCPU(), float64(memTotal())/(1<<30), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(w, "source: OSS emulator (internal/ossemu, in the benchmark process) %s; oss2s3 reads it with the OSS API, rclone with its S3 API (SigV4); large and rss objects are synthetic (bytes generated on demand by the emulator, PutSynthetic), small ones are stored in memory\n", b.ossURL)
	fmt.Fprintf(w, "destination: versitygw (%s) over TLS at %s, files on %s\n", versityBin, b.s3.Endpoint, b.s3.Root)
	if b.rclone != nil {
		fmt.Fprintf(w, "rclone: %s (%s), remotes from env: RCLONE_CONFIG_{SRC,DST}_TYPE=s3 _PROVIDER=Other _ENDPOINT _REGION _ACCESS_KEY_ID _SECRET_ACCESS_KEY _FORCE_PATH_STYLE=true; --config <empty file> --ca-cert <versitygw CA>\n", b.rclone.version, b.rclone.bin)
	}
	workers := "defaults (no workers section)"
	if o.oss2s3Workers != "" {
		workers = "workers: " + o.oss2s3Workers
	}
	if o.oss2s3Options != "" {
		workers += ", task options: " + o.oss2s3Options
	}
	fmt.Fprintf(w, "oss2s3: `oss2s3 serve` built from this tree (%s), fresh data_dir per run, %s; timed from the first signed event POST (%d records per document) until oss2s3_objects_total{result=\"copied\"|\"skipped\"} reaches the object count\n", b.revision, workers, eventsPerDocument)
	fmt.Fprintf(w, "each figure is the median of %d run(s), every run listed; CPU is user + system of all threads (oss2s3: /proc/<pid>/stat over the timed window; rclone: the rusage of its exit), per GiB copied or per object; every copy is checked (listing: keys and sizes; bytes: CRC-64 of a full GET of a sample)\n", o.runs)
}

// results are the figures of the final line.
type results struct {
	large    *caseResult
	small    *caseResult
	rssBytes int64
}

// caseResult is one case's medians: rates in the case's unit (bytes/s,
// objects/s), CPU in seconds per GiB or per object.
type caseResult struct {
	oss2s3, rclone       float64 // oss2s3's rate; the fastest rclone setting's
	ceiling              float64 // the large case's, bytes/s
	oss2s3CPU, rcloneCPU float64 // oss2s3's; the most frugal rclone setting's
}

func (r results) line() string {
	var large, small, ceiling, cpuGiB, cpuObject float64
	if r.large != nil {
		large, ceiling = ratio(r.large.oss2s3, r.large.rclone), ratio(r.large.oss2s3, r.large.ceiling)
		cpuGiB = ratio(r.large.oss2s3CPU, r.large.rcloneCPU)
	}
	if r.small != nil {
		small, cpuObject = ratio(r.small.oss2s3, r.small.rclone), ratio(r.small.oss2s3CPU, r.small.rcloneCPU)
	}
	return fmt.Sprintf("copy large_ratio=%.2f small_ratio=%.2f ceiling_ratio=%.2f peak_rss_mib=%d cpu_per_gib_ratio=%.2f cpu_per_object_ratio=%.2f",
		large, small, ceiling, mib(r.rssBytes), cpuGiB, cpuObject)
}

// mib is n bytes in MiB, rounded up: a peak is never reported lower than it was.
func mib(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// contender is one way of copying a bucket: oss2s3 with a configuration, or
// rclone with a set of flags. copy starts and stops w's clock around what
// it times, sets w.tool, and returns the tool's peak RSS.
type contender struct {
	name string // as printed
	id   string // in bucket names
	copy func(ctx context.Context, run string, src string, objs []srcObject, dst string, w *window) (int64, error)
}

// tally is one contender's timed runs.
type tally struct {
	c      contender
	rates  []float64 // the case's unit
	cpu    []float64 // the tool's CPU seconds per unit of work
	rss    []int64
	shares []cpuShares
	notes  []string // what a run's tool reported beside its copy (retries)
}

func (t *tally) rate() float64   { return median(t.rates) }
func (t *tally) cpuPer() float64 { return median(t.cpu) }
func (t *tally) runs() int       { return len(t.rates) }
func (t *tally) add(rate, cpu float64, rss int64, sh cpuShares) {
	t.rates, t.cpu, t.rss, t.shares = append(t.rates, rate), append(t.cpu, cpu), append(t.rss, rss), append(t.shares, sh)
}

func (b *bed) oss2s3Contender(workers, options string) contender {
	name := "oss2s3 (default settings)"
	if workers != "" || options != "" {
		name = "oss2s3 (workers: " + workers + ", task options: " + options + ")"
	}
	return contender{name: name, id: "oss2s3", copy: func(ctx context.Context, run, src string, objs []srcObject, dst string, w *window) (int64, error) {
		return b.copyWithOSS2S3(ctx, run, src, objs, dst, workers, options, w)
	}}
}

func (b *bed) rcloneContenders(vs [][]string) []contender {
	var cs []contender
	for i, flags := range vs {
		cs = append(cs, contender{
			name: "rclone copy " + strings.Join(flags, " "),
			id:   fmt.Sprintf("rclone%d", i+1),
			copy: func(ctx context.Context, run, src string, _ []srcObject, dst string, w *window) (int64, error) {
				return b.rclone.copy(ctx, src, dst, flags, b.logs.path(run+".log"), w)
			},
		})
	}
	return cs
}

// copyWithOSS2S3 starts a fresh oss2s3, posts one event per object and
// waits until every object is copied; w times the first event to the last
// copy, with oss2s3's CPU over that time (its start and stop are not the
// copy's work), and it returns the process's peak RSS.
func (b *bed) copyWithOSS2S3(ctx context.Context, run, src string, objs []srcObject, dst, workers, options string, w *window) (int64, error) {
	cfg := oss2s3Config{
		DataDir: filepath.Join(b.dir, run), OSSURL: b.ossURL, SrcBucket: src,
		S3URL: b.s3.Endpoint, CAFile: b.s3.CAFile, DstBucket: dst, Workers: workers, TaskOptions: options,
	}
	defer os.RemoveAll(cfg.DataDir)
	srv, err := startOSS2S3(ctx, b.oss2s3, cfg, b.logs.path(run+".log"))
	if err != nil {
		return 0, err
	}
	// On the error paths below; the success path stops it and checks.
	defer func() { _ = srv.stop() }()
	cpu0, err := procCPU(srv.proc.pid())
	if err != nil {
		return 0, err
	}
	w.begin()
	if err := srv.postEvents(ctx, src, objs); err != nil {
		return 0, err
	}
	counts, err := srv.waitDone(ctx, len(objs), b.opts.timeout)
	if err != nil {
		return 0, err
	}
	w.finish()
	if counts.retried > 0 {
		// A retry waits its backoff (5 s and more) or a lost job its
		// ack wait (20 s): one of them stretches a run of seconds.
		w.note = fmt.Sprintf("%d attempt(s) failed and were retried (see the log for why)", counts.retried)
	}
	cpu1, err := procCPU(srv.proc.pid())
	if err != nil {
		return 0, err
	}
	w.tool = cpu1 - cpu0
	rss, err := peakRSS(srv.proc.pid())
	if err != nil {
		return 0, err
	}
	if err := srv.stop(); err != nil {
		return 0, fmt.Errorf("oss2s3 stop: %w; log:\n%s", err, srv.proc.tail())
	}
	return rss, nil
}

// work is what one copy of a case does, in the units its rate and its CPU
// are given in: amount MB or objects (the rate is amount per second), and
// cpuUnits GiB or objects (the CPU is seconds per cpuUnit).
type work struct {
	unit     string // of the rate: "MB/s", "objects/s"
	amount   float64
	cpuUnits float64
	cpuUnit  string  // "GiB", "object"
	cpuScale float64 // printed CPU per unit = seconds x cpuScale
	cpuName  string  // "s", "µs"
}

func (k work) rate(d time.Duration) float64 { return k.amount / d.Seconds() }

func (k work) cpu(perUnit float64) string {
	return fmt.Sprintf("%.3g %s/%s", perUnit*k.cpuScale, k.cpuName, k.cpuUnit)
}

// race runs every contender opts.runs times, interleaved so that the
// machine's slow moments spread over all of them, each into a fresh bucket
// that is checked and then dropped. round (nil: none) runs first in each
// round: what is measured beside the contenders (the ceiling).
func (b *bed) race(ctx context.Context, name, src string, objs []srcObject, cs []contender, sample int, k work,
	round func(r int) error) ([]*tally, error) {
	tallies := make([]*tally, len(cs))
	for i, c := range cs {
		tallies[i] = &tally{c: c}
	}
	for r := 1; r <= b.opts.runs; r++ {
		if round != nil {
			if err := round(r); err != nil {
				return nil, err
			}
		}
		for _, t := range tallies {
			run := fmt.Sprintf("%s-%s-%d", name, t.c.id, r)
			if err := b.s3.createBucket(ctx, run); err != nil {
				return nil, err
			}
			b.logf("%s: run %d/%d: %s", name, r, b.opts.runs, t.c.name)
			w := &window{versityPID: b.s3.proc.pid()}
			rss, err := t.c.copy(ctx, run, src, objs, run, w)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.c.name, err)
			}
			if w.err != nil {
				return nil, fmt.Errorf("%s: reading CPU times: %w", t.c.name, w.err)
			}
			elapsed := w.elapsed()
			cpu := perUnit(w.tool, k.cpuUnits)
			t.add(k.rate(elapsed), cpu, rss, w.shares())
			if w.note != "" {
				t.notes = append(t.notes, fmt.Sprintf("run %d: %s", r, w.note))
				b.logf("%s: run %d/%d: %s: %s", name, r, b.opts.runs, t.c.id, w.note)
			}
			b.logf("%s: run %d/%d: %s: %.2fs, %.1f %s, CPU %.2fs (%s), peak RSS %d MiB; %s; checking the copy", name, r, b.opts.runs, t.c.id,
				elapsed.Seconds(), k.rate(elapsed), k.unit, w.tool.Seconds(), k.cpu(cpu), mib(rss), w.shares())
			if err := verifyCopy(ctx, b.s3.Client, run, objs, sample, r-1); err != nil {
				return nil, fmt.Errorf("%s copied wrongly: %w", t.c.name, err)
			}
			if err := b.s3.dropBucket(run); err != nil {
				return nil, err
			}
		}
	}
	return tallies, nil
}

// printTallies prints each contender's medians and every run, then where
// the machine's CPU went in each run.
func printTallies(w io.Writer, ts []*tally, k work) {
	for _, t := range ts {
		rates := make([]string, len(t.rates))
		cpus := make([]string, len(t.cpu))
		for i := range t.rates {
			rates[i] = fmt.Sprintf("%.1f", t.rates[i])
			cpus[i] = k.cpu(t.cpu[i])
		}
		fmt.Fprintf(w, "  %-10s %8.1f %s, CPU %s (medians; runs: %s; CPU %s; peak RSS %s MiB)  %s\n", t.c.id, t.rate(), k.unit,
			k.cpu(t.cpuPer()), strings.Join(rates, ", "), strings.Join(cpus, ", "), joinMiB(t.rss), t.c.name)
		for _, n := range t.notes {
			fmt.Fprintf(w, "             %s\n", n)
		}
	}
	fmt.Fprintf(w, "  where the %d cores went, per run (cores = CPU seconds per second of the run):\n", runtime.NumCPU())
	for r := range ts[0].runs() {
		for _, t := range ts {
			fmt.Fprintf(w, "    run %d %-10s %s\n", r+1, t.c.id, t.shares[r])
		}
	}
}

func joinMiB(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatInt(mib(x), 10)
	}
	return strings.Join(s, ", ")
}

// fastest returns the tally with the highest median rate.
func fastest(ts []*tally) *tally {
	best := ts[0]
	for _, t := range ts[1:] {
		if t.rate() > best.rate() {
			best = t
		}
	}
	return best
}

// frugalest returns the tally with the lowest median CPU per unit.
func frugalest(ts []*tally) *tally {
	best := ts[0]
	for _, t := range ts[1:] {
		if t.cpuPer() < best.cpuPer() {
			best = t
		}
	}
	return best
}

// medianCeiling is the ceiling's best stream count by the median of its
// runs: byStreams holds each stream count's runs (bytes/s).
func medianCeiling(byStreams map[int][]float64) (rate float64, streams int) {
	for _, n := range slices.Sorted(maps.Keys(byStreams)) {
		if m := median(byStreams[n]); m > rate {
			rate, streams = m, n
		}
	}
	return rate, streams
}

func (b *bed) largeCase(ctx context.Context, w io.Writer) (*caseResult, error) {
	o := b.opts
	const src = "src-large"
	b.logf("large: storing %d x %s in the emulator", o.largeCount, formatSize(int64(o.largeSize)))
	objs, err := putSynthetic(b.emu, src, o.largeCount, int64(o.largeSize), 1000, func(i int) string { return fmt.Sprintf("large/object-%03d", i) })
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, obj := range objs {
			b.emu.DeleteObject(src, obj.Key)
		}
	}()
	total := totalBytes(objs)
	k := work{unit: "MB/s", amount: float64(total) / 1e6, cpuUnits: float64(total) / (1 << 30), cpuUnit: "GiB", cpuScale: 1, cpuName: "s"}

	// The ceiling is measured in each round just before the copies, so
	// that it and they share the machine's moment.
	gets, puts := map[int][]float64{}, map[int][]float64{}
	ceiling := func(r int) error {
		for _, streams := range o.ceilingStreams {
			b.logf("large: ceiling run %d/%d: ranged GETs from the emulator, %d streams", r, o.runs, streams)
			g, err := ceilingGET(ctx, b.ossURL, src, objs, int64(o.ceilingPart), streams)
			if err != nil {
				return err
			}
			bucket := fmt.Sprintf("large-ceiling-%d-%d", streams, r)
			if err := b.s3.createBucket(ctx, bucket); err != nil {
				return err
			}
			b.logf("large: ceiling run %d/%d: GET %.1f MB/s; multipart PUTs to versitygw, %d streams", r, o.runs, g/1e6, streams)
			p, err := ceilingPUT(ctx, b.s3.Client, bucket, objs, int64(o.ceilingPart), streams)
			if err != nil {
				return err
			}
			b.logf("large: ceiling run %d/%d: PUT %.1f MB/s", r, o.runs, p/1e6)
			if err := b.s3.dropBucket(bucket); err != nil {
				return err
			}
			gets[streams], puts[streams] = append(gets[streams], g), append(puts[streams], p)
		}
		return nil
	}

	cs := append([]contender{b.oss2s3Contender(o.oss2s3Workers, o.oss2s3Options)}, b.rcloneContenders(o.rcloneLarge)...)
	ts, err := b.race(ctx, "large", src, objs, cs, 1, k, ceiling)
	if err != nil {
		return nil, err
	}
	getRate, getAt := medianCeiling(gets)
	putRate, putAt := medianCeiling(puts)
	fast, frugal := fastest(ts[1:]), frugalest(ts[1:])
	res := &caseResult{oss2s3: ts[0].rate() * 1e6, rclone: fast.rate() * 1e6, ceiling: min(getRate, putRate),
		oss2s3CPU: ts[0].cpuPer(), rcloneCPU: frugal.cpuPer()}
	fmt.Fprintf(w, "\nlarge: %d x %s (%s), MB/s = 10^6 bytes/s, medians of %d runs\n", o.largeCount, formatSize(int64(o.largeSize)), formatSize(total), o.runs)
	fmt.Fprintf(w, "  ceiling GET %8.1f MB/s  (%d streams of %s ranged GETs from the emulator, bytes discarded; runs: %s)\n", getRate/1e6, getAt, formatSize(int64(o.ceilingPart)), joinMB(gets[getAt]))
	fmt.Fprintf(w, "  ceiling PUT %8.1f MB/s  (%d streams of %s UploadPart with CRC32C to versitygw, from memory, completed; runs: %s)\n", putRate/1e6, putAt, formatSize(int64(o.ceilingPart)), joinMB(puts[putAt]))
	fmt.Fprintf(w, "  ceiling     %8.1f MB/s  (the lower of the two)\n", res.ceiling/1e6)
	printTallies(w, ts, k)
	fmt.Fprintf(w, "  oss2s3 / fastest rclone (%s) = %.2f; oss2s3 / ceiling = %.2f; CPU per GiB oss2s3 / most frugal rclone (%s) = %.2f (/ %s: %.2f)\n",
		fast.c.id, ratio(res.oss2s3, res.rclone), ratio(res.oss2s3, res.ceiling),
		frugal.c.id, ratio(res.oss2s3CPU, res.rcloneCPU), fast.c.id, ratio(res.oss2s3CPU, fast.cpuPer()))
	return res, nil
}

func joinMB(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.1f", x/1e6)
	}
	return strings.Join(s, ", ")
}

func (b *bed) smallCase(ctx context.Context, w io.Writer) (*caseResult, error) {
	o := b.opts
	const src = "src-small"
	b.logf("small: storing %d x %s in the emulator", o.smallCount, formatSize(int64(o.smallSize)))
	objs, err := putObjects(b.emu, src, o.smallCount, int64(o.smallSize), 1<<32, func(i int) string { return fmt.Sprintf("small/%02d/object-%06d", i%100, i) })
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, obj := range objs {
			b.emu.DeleteObject(src, obj.Key)
		}
	}()
	k := work{unit: "objects/s", amount: float64(len(objs)), cpuUnits: float64(len(objs)), cpuUnit: "object", cpuScale: 1e6, cpuName: "µs"}
	cs := append([]contender{b.oss2s3Contender(o.oss2s3Workers, o.oss2s3Options)}, b.rcloneContenders(o.rcloneSmall)...)
	ts, err := b.race(ctx, "small", src, objs, cs, o.verifySmall, k, nil)
	if err != nil {
		return nil, err
	}
	fast, frugal := fastest(ts[1:]), frugalest(ts[1:])
	res := &caseResult{oss2s3: ts[0].rate(), rclone: fast.rate(), oss2s3CPU: ts[0].cpuPer(), rcloneCPU: frugal.cpuPer()}
	fmt.Fprintf(w, "\nsmall: %d x %s, medians of %d runs\n", o.smallCount, formatSize(int64(o.smallSize)), o.runs)
	printTallies(w, ts, k)
	fmt.Fprintf(w, "  oss2s3 / fastest rclone (%s) = %.2f; CPU per object oss2s3 / most frugal rclone (%s) = %.2f (/ %s: %.2f)\n",
		fast.c.id, ratio(res.oss2s3, res.rclone), frugal.c.id, ratio(res.oss2s3CPU, res.rcloneCPU), fast.c.id, ratio(res.oss2s3CPU, fast.cpuPer()))
	return res, nil
}

// rssCase copies one object with oss2s3's default settings and returns the
// process's peak RSS (VmHWM) over its whole life.
func (b *bed) rssCase(ctx context.Context, w io.Writer) (int64, error) {
	o := b.opts
	const src, dst = "src-rss", "rss-oss2s3"
	b.logf("rss: storing 1 x %s in the emulator", formatSize(int64(o.rssSize)))
	objs, err := putSynthetic(b.emu, src, 1, int64(o.rssSize), 7<<32, func(int) string { return "rss/object" })
	if err != nil {
		return 0, err
	}
	defer b.emu.DeleteObject(src, objs[0].Key)
	if err := b.s3.createBucket(ctx, dst); err != nil {
		return 0, err
	}
	b.logf("rss: oss2s3 (default settings) copying it")
	win := &window{versityPID: b.s3.proc.pid()}
	rss, err := b.copyWithOSS2S3(ctx, dst, src, objs, dst, "", "", win)
	if err != nil {
		return 0, err
	}
	elapsed := win.elapsed()
	b.logf("rss: %.2fs, peak RSS %d MiB; checking the copy", elapsed.Seconds(), mib(rss))
	if err := verifyCopy(ctx, b.s3.Client, dst, objs, 1, 0); err != nil {
		return 0, fmt.Errorf("oss2s3 copied wrongly: %w", err)
	}
	if err := b.s3.dropBucket(dst); err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "\nrss: oss2s3 (default settings, no workers section) copying 1 x %s\n", formatSize(int64(o.rssSize)))
	fmt.Fprintf(w, "  peak RSS (VmHWM of the oss2s3 process) %d MiB (goal <= 128 MiB); copy took %.2fs (%.1f MB/s)\n",
		mib(rss), elapsed.Seconds(), float64(o.rssSize)/elapsed.Seconds()/1e6)
	return rss, nil
}
