package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/internal/ossemu"
)

// The reconcile benchmark: `oss2s3 reconcile --local --mode report` against
// `rclone check` on generated listings (ossemu.Generated: no bodies, pages
// computed on the fly) of 100k, 1M and 10M objects, the destination with 1%
// missing, 1% different (same size, another MD5) and 1% extra objects. Both
// read the source and the destination through the same emulator (oss2s3
// the source through the OSS API and the destination through the S3 API,
// rclone both through the S3 API) in the same run.

type reconcileOptions struct {
	counts    []int64
	rcloneMax int64
	dir       string
	keep      bool
}

func parseReconcileFlags(args []string, stderr io.Writer) (reconcileOptions, error) {
	var o reconcileOptions
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	counts := fs.String("objects", "100000,1000000,10000000", "bucket sizes to diff, comma-separated")
	fs.Int64Var(&o.rcloneMax, "rclone-max", 1_000_000, "run rclone check only on buckets up to this size (it holds the listing in memory)")
	fs.StringVar(&o.dir, "dir", "", "work directory (default $TMPDIR)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*counts, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n < 100 {
			return o, fmt.Errorf("-objects %q: want counts of at least 100", s)
		}
		o.counts = append(o.counts, n)
	}
	return o, nil
}

// rcloneVariants are the rclone checks run on each bucket: its defaults
// (a directory of --list-cutoff = 1,000,000 entries or more is sorted on
// disk, and each object is then re-created with a HEAD), and everything in
// memory. The ratios take the faster time and the smaller peak RSS of the
// two, whichever variant each comes from.
var rcloneVariants = [][]string{nil, {"--list-cutoff", "1000000000"}}

type reconcileFigure struct {
	n                  int64
	ours, theirs       time.Duration
	oursRSS, theirsRSS int64
	oursLine           string
}

func runReconcileBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	opts, err := parseReconcileFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	goenv, err := moduleEnv(ctx, "reconcile")
	if err != nil {
		return err
	}
	rcloneBin, err := findTool("rclone", goenv)
	if err != nil {
		return fmt.Errorf("%v; install it with: %s", err, rcloneInstall)
	}
	tmp := opts.dir
	if tmp == "" {
		tmp = os.TempDir()
	}
	dir, err := os.MkdirTemp(tmp, "oss2s3-bench-reconcile-")
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
	emu := ossemu.New(ossemu.Options{Credentials: map[string]string{ossAccessKey: ossSecretKey}, Region: ossRegion})
	defer emu.Close()
	url, err := emu.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	rc, err := newRclone(rcloneBin, dir, url, url, "")
	if err != nil {
		return err
	}
	rc.useOSSKeys()
	fmt.Fprintf(stdout, "reconcile benchmark: %s, %d CPUs, %s\n", cpuModel(), runtime.NumCPU(), rc.version)
	fmt.Fprintf(stdout, "oss2s3 at %s; each bucket: 1%% missing, 1%% different (same size), 1%% extra at the destination\n", treeRevision(ctx, root))

	var figs []reconcileFigure
	for _, n := range opts.counts {
		src, dst := fmt.Sprintf("src-%d", n), fmt.Sprintf("dst-%d", n)
		emu.SetGenerated(src, ossemu.Generated{Count: n})
		emu.SetGenerated(dst, ossemu.Generated{Count: n, Missing: 1, Different: 1, Extra: 1})
		f := reconcileFigure{n: n}
		logf("%d objects: oss2s3 reconcile --local --mode report", n)
		if f.ours, f.oursRSS, f.oursLine, err = runOurReconcile(ctx, bin, dir, url, src, dst, n); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "objects=%d oss2s3 reconcile --mode report: %.2fs peak_rss=%dMiB  (%s)\n", n, f.ours.Seconds(), mib(f.oursRSS), f.oursLine)
		if n <= opts.rcloneMax {
			if f.theirs, f.theirsRSS, err = rc.bestCheck(ctx, stdout, logf, dir, src, dst, n); err != nil {
				return err
			}
		}
		figs = append(figs, f)
	}
	fmt.Fprintln(stdout, reconcileLine(figs))
	return nil
}

// useOSSKeys makes both remotes read the emulator's S3 API with the OSS
// keys.
func (r *rclone) useOSSKeys() {
	for i, kv := range r.env {
		for _, side := range []string{"SRC", "DST"} {
			p := "RCLONE_CONFIG_" + side + "_"
			switch {
			case strings.HasPrefix(kv, p+"ACCESS_KEY_ID="):
				r.env[i] = p + "ACCESS_KEY_ID=" + ossAccessKey
			case strings.HasPrefix(kv, p+"SECRET_ACCESS_KEY="):
				r.env[i] = p + "SECRET_ACCESS_KEY=" + ossSecretKey
			}
		}
	}
}

// bestCheck runs rclone check of src against dst (n objects) once with
// each of rcloneVariants, printing each result; it returns the shortest
// time and the smallest peak RSS of them.
func (r *rclone) bestCheck(ctx context.Context, stdout io.Writer, logf func(string, ...any), dir, src, dst string, n int64) (best time.Duration, bestRSS int64, err error) {
	for vi, flags := range rcloneVariants {
		name := strings.TrimSpace("rclone check " + strings.Join(flags, " "))
		logf("%d objects: %s", n, name)
		took, rss, line, err := r.check(ctx, src, dst, filepath.Join(dir, fmt.Sprintf("rclone-check-%d-%d.log", n, vi)), n, flags)
		if err != nil {
			return 0, 0, err
		}
		fmt.Fprintf(stdout, "objects=%d %s: %.2fs peak_rss=%dMiB  (%s)\n", n, name, took.Seconds(), mib(rss), line)
		if best == 0 || took < best {
			best = took
		}
		if bestRSS == 0 || rss < bestRSS {
			bestRSS = rss
		}
	}
	return best, bestRSS, nil
}

// reconcileLine is the last line: the ratios at 1M objects (or the largest
// bucket rclone checked) and our RSS at the largest bucket over the smallest.
func reconcileLine(figs []reconcileFigure) string {
	var at *reconcileFigure
	for i := range figs {
		if figs[i].theirs > 0 && (at == nil || figs[i].n == 1_000_000 || at.n != 1_000_000 && figs[i].n > at.n) {
			at = &figs[i]
		}
	}
	speed, rss := 0.0, 0.0
	n := int64(0)
	if at != nil {
		n = at.n
		speed = ratio(at.theirs.Seconds(), at.ours.Seconds())
		rss = ratio(float64(at.oursRSS), float64(at.theirsRSS))
	}
	growth := 0.0
	if len(figs) > 0 {
		lo, hi := figs[0], figs[0]
		for _, f := range figs {
			if f.n < lo.n {
				lo = f
			}
			if f.n > hi.n {
				hi = f
			}
		}
		growth = ratio(float64(hi.oursRSS), float64(lo.oursRSS))
	}
	return fmt.Sprintf("reconcile objects=%d speed_ratio=%.2f rss_ratio=%.3f rss_growth=%.2f", n, speed, rss, growth)
}

var ourSummary = regexp.MustCompile(`listed=(\d+) dst_listed=\d+ missing=(\d+) different=(\d+) extraneous=(\d+)`)

func runOurReconcile(ctx context.Context, bin, dir, url, src, dst string, n int64) (time.Duration, int64, string, error) {
	cfgPath := filepath.Join(dir, "reconcile-"+src+".yaml")
	cfg := fmt.Sprintf(`data_dir: %s
log: {level: warn, format: text}
webhook:
  secrets: ["bench-webhook-secret-0123456789abcdef"]
tasks:
  - name: %s
    source: {endpoint: %s, region: %s, bucket: %s, access_key_id: %s, access_key_secret: %s}
    destination: {endpoint: %s, region: %s, bucket: %s, access_key_id: %s, secret_access_key: %s}
`, filepath.Join(dir, "data"), benchTask, url, ossRegion, src, ossAccessKey, ossSecretKey, url, s3Region, dst, ossAccessKey, ossSecretKey)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return 0, 0, "", err
	}
	logPath := filepath.Join(dir, "oss2s3-reconcile-"+src+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return 0, 0, "", err
	}
	defer lf.Close()
	var out strings.Builder
	cmd := exec.CommandContext(ctx, bin, "reconcile", "--local", "--quiet", "--config", cfgPath, "--task", benchTask, "--mode", "report")
	cmd.Stdout, cmd.Stderr = &out, lf
	cmd.SysProcAttr = procAttr()
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		return 0, 0, "", fmt.Errorf("oss2s3 reconcile: %w; log:\n%s", err, tailFile(logPath, 40))
	}
	line := strings.TrimSpace(out.String())
	m := ourSummary.FindStringSubmatch(line)
	want := []int64{n, (n + 99) / 100, (n + 98) / 100, (n + 97) / 100}
	if m == nil {
		return 0, 0, "", fmt.Errorf("oss2s3 reconcile printed no summary: %q", line)
	}
	for i, w := range want {
		if got, _ := strconv.ParseInt(m[i+1], 10, 64); got != w {
			return 0, 0, "", fmt.Errorf("oss2s3 reconcile of %d objects: %s, want listed=%d missing=%d different=%d extraneous=%d", n, line, want[0], want[1], want[2], want[3])
		}
	}
	return elapsed, maxRSSOf(cmd.ProcessState), m[0], nil
}

var rcloneDiffs = regexp.MustCompile(`(\d+) differences found`)

// check runs `rclone check src:srcBucket dst:dstBucket flags...` and returns its wall
// time, its peak RSS and the differences it found (it must find all 3%).
func (r *rclone) check(ctx context.Context, srcBucket, dstBucket, logPath string, n int64, flags []string) (time.Duration, int64, string, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return 0, 0, "", err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, r.bin, append([]string{"check", "src:" + srcBucket, "dst:" + dstBucket, "--config", r.config}, flags...)...)
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, 0, "", fmt.Errorf("rclone check: %w", err)
	}
	data, _ := os.ReadFile(logPath)
	m := rcloneDiffs.FindSubmatch(data)
	want := (n+99)/100 + (n+98)/100 + (n+97)/100
	if m == nil || string(m[1]) != strconv.FormatInt(want, 10) {
		return 0, 0, "", fmt.Errorf("rclone check found not the %d differences expected; log:\n%s", want, tailFile(logPath, 20))
	}
	return elapsed, maxRSSOf(cmd.ProcessState), string(m[0]), nil
}
