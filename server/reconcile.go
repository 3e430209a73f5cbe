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
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// reconcileFlags are the flags of `oss2s3 reconcile` and `oss2s3 sync`.
type reconcileFlags struct {
	config, task, mode, verify, prefixes string
	maxDeletes                           int
	local, quiet                         bool
	gateway, token, report               string
}

func parseReconcileFlags(name string, args []string, getenv func(string) string, stderr io.Writer, defMode string) (*reconcileFlags, error) {
	f := &reconcileFlags{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", getenv("OSS2S3_CONFIG"), "configuration file (env OSS2S3_CONFIG), for --local")
	fs.StringVar(&f.task, "task", "", "the task to reconcile (required)")
	fs.StringVar(&f.mode, "mode", defMode, "report, copy, sync or copy_all")
	fs.StringVar(&f.verify, "verify", "", "size, etag (default) or content")
	fs.StringVar(&f.prefixes, "prefixes", "", "comma-separated source prefixes instead of the task's")
	fs.IntVar(&f.maxDeletes, "max-deletes", 0, "sync: delete nothing if more destination-only objects than this (default: the task's, else 1000)")
	fs.BoolVar(&f.local, "local", false, "run in this process instead of on a running gateway")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress bar")
	fs.StringVar(&f.gateway, "gateway", getenv("OSS2S3_GATEWAY"), "gateway URL, e.g. http://127.0.0.1:8080 (env OSS2S3_GATEWAY)")
	fs.StringVar(&f.token, "token", getenv("OSS2S3_ADMIN_TOKEN"), "admin bearer token (env OSS2S3_ADMIN_TOKEN)")
	fs.StringVar(&f.report, "report", "", "write the report (JSON lines) to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if f.task == "" {
		return nil, errors.New("--task is required")
	}
	if !reconcile.ValidMode(f.mode) {
		return nil, fmt.Errorf("--mode %q: want report, copy, sync or copy_all", f.mode)
	}
	if !reconcile.ValidVerify(f.verify) {
		return nil, fmt.Errorf("--verify %q: want size, etag or content", f.verify)
	}
	return f, nil
}

func (f *reconcileFlags) options() reconcile.Options {
	o := reconcile.Options{Mode: f.mode, Verify: f.verify, MaxDeletes: f.maxDeletes}
	for _, p := range strings.Split(f.prefixes, ",") {
		if p != "" {
			o.Prefixes = append(o.Prefixes, p)
		}
	}
	return o
}

// runReconcile is `oss2s3 reconcile`: a diff of one task, on a running
// gateway (which shares it among its replicas) or, with --local, here.
func runReconcile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f, err := parseReconcileFlags("reconcile", args, getenv, stderr, "")
	if err != nil {
		return err
	}
	if f.local {
		return reconcileLocal(ctx, f, getenv, stdout, stderr)
	}
	return reconcileRemote(ctx, f, false, stdout, stderr)
}

// runSync is `oss2s3 sync`: a one-time transfer (the seed's "One Time
// Transfer"): a copy-mode diff and its copies, with a progress bar until
// every copy is done: with --local the workers of this process copy, until
// the queue is empty; on a gateway (whose queue also carries live events)
// until the run's status says its copy jobs have all ended.
func runSync(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f, err := parseReconcileFlags("sync", args, getenv, stderr, reconcile.ModeCopy)
	if err != nil {
		return err
	}
	if !f.local {
		return reconcileRemote(ctx, f, true, stdout, stderr)
	}
	if f.mode == reconcile.ModeReport {
		return errors.New("sync --mode report copies nothing: use reconcile")
	}
	cfg, log, err := loadLocal(f, getenv, stderr)
	if err != nil {
		return err
	}
	if *cfg.Workers.Concurrency == 0 {
		return errors.New("sync copies here: workers.concurrency must be above 0")
	}
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.queue.Close()
	rt := a.live.Tasks()[f.task]
	if rt == nil {
		return fmt.Errorf("no task named %q in the configuration", f.task)
	}
	wctx, stopWorkers := context.WithCancel(ctx)
	workersDone := make(chan error, 1)
	go func() { workersDone <- a.workers.Run(wctx) }()
	defer func() {
		stopWorkers()
		if err := <-workersDone; err != nil {
			log.Warn("copy workers stopped with an error", "err", err)
		}
	}()

	o := f.options()
	sides := a.live.load().sides[f.task]
	d := &reconcile.Diff{Task: rt.Task, Source: rt.Source, Destination: rt.Destination, Queue: a.queue, Log: log,
		RunID: "sync-" + randomHex(6), Options: o, Progress: &reconcile.Progress{}, Src: sides.Src, Dst: sides.Dst}
	start := time.Now()
	var waiting atomic.Uint64
	bar := localProgress(ctx, d, sides, log)
	stop := progressBar(stderr, f.quiet, func() string {
		return bar() + progressLine(d.Progress.Snapshot(), time.Since(start)) + fmt.Sprintf("  waiting %d", waiting.Load())
	})
	ranges, err := sides.Ranges(ctx, o)
	if err == nil {
		err = d.Run(ctx, ranges)
	}
	for err == nil {
		// Copies (and their retries) are done when the work queue is empty.
		var n uint64
		if n, err = a.queue.Depth(ctx); err != nil || n == 0 {
			break
		}
		waiting.Store(n)
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	stop()
	c := d.Progress.Snapshot()
	fmt.Fprintf(stdout, "sync task=%s listed=%d missing=%d different=%d extraneous=%d queued=%d deleted=%d errors=%d elapsed=%s\n",
		rt.Task.Name, c.Listed, c.Missing, c.Different, c.Extraneous, c.Queued, c.Deleted, c.Errors, time.Since(start).Round(time.Millisecond))
	if err == nil {
		if dead, derr := a.queue.DeadLetters(ctx, transfer.DeadLetterFilter{Task: rt.Task.Name}, 1); derr == nil && len(dead) > 0 {
			err = fmt.Errorf("some copies failed for good: see the dead-letter queue (GET /v1/dlq?task=%s)", rt.Task.Name)
		}
	}
	return err
}

// localTask builds one task's clients and listers from the configuration.
func localTask(ctx context.Context, cfg *Config, name string, log *slog.Logger) (*reconcile.TaskSides, error) {
	for i := range cfg.Tasks {
		t := &cfg.Tasks[i]
		if t.Name != name {
			continue
		}
		src, err := transfer.OpenOSSSource(ctx, t.Source, nil, log.With("task", t.Name))
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", t.Name, err)
		}
		src.SetBandwidth(int64(t.Options.Bandwidth), nil)
		dst, err := transfer.NewS3Destination(ctx, t.Destination)
		if err != nil {
			return nil, err
		}
		return reconcile.NewTaskSides(&transfer.TaskRuntime{Task: t, Source: src, Destination: dst}, src, dst)
	}
	return nil, fmt.Errorf("no task named %q in the configuration", name)
}

// loadLocal loads the configuration a --local command names, and its logger.
func loadLocal(f *reconcileFlags, getenv func(string) string, stderr io.Writer) (*Config, *slog.Logger, error) {
	if f.config == "" {
		return nil, nil, errors.New("--local needs --config FILE (or OSS2S3_CONFIG)")
	}
	cfg, err := loadConfig(f.config, getenv)
	if err != nil {
		return nil, nil, err
	}
	return cfg, newLogger(stderr, cfg.Log), nil
}

func reconcileLocal(ctx context.Context, f *reconcileFlags, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, log, err := loadLocal(f, getenv, stderr)
	if err != nil {
		return err
	}
	if getenv("GOGC") == "" {
		// A diff's live heap is a few listing pages, and all the rest is
		// garbage from decoding them: collecting at +25% instead of +100%
		// keeps the peak near the live set for a little more GC CPU.
		debug.SetGCPercent(25)
	}
	sides, err := localTask(ctx, cfg, f.task, log)
	if err != nil {
		return err
	}
	rt := sides.Runtime
	o := f.options()
	if o.Mode == "" {
		o.Mode = rt.Task.Reconcile.Mode
	}
	if o.Verify == "" {
		o.Verify = rt.Task.Reconcile.Verify
	}
	if o.MaxDeletes == 0 {
		o.MaxDeletes = rt.Task.Reconcile.MaxDeletes
	}
	d := &reconcile.Diff{Task: rt.Task, Src: sides.Src, Dst: sides.Dst, Source: rt.Source, Destination: rt.Destination,
		Log: log, RunID: "local-" + randomHex(6), Options: o, Progress: &reconcile.Progress{}}
	if op, ok := rt.Destination.(reconcile.Opener); ok {
		d.DstOpener = op
	}
	if f.report != "" {
		fr, err := newFileReport(f.report)
		if err != nil {
			return err
		}
		defer fr.Close()
		d.Report = fr
	}
	if o.Mode == "" {
		o.Mode = reconcile.ModeCopy
	}
	d.Options = o
	if o.Mode != reconcile.ModeReport {
		q, err := transfer.OpenQueue(ctx, queueConfig(cfg), log)
		if err != nil {
			return err
		}
		defer q.Close()
		d.Queue = q
	}
	if path := getenv("OSS2S3_CPUPROFILE"); path != "" {
		pf, err := os.Create(path)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	bar := localProgress(ctx, d, sides, log)
	stop := progressBar(stderr, f.quiet, func() string { return bar() + progressLine(d.Progress.Snapshot(), time.Since(start)) })
	ranges, err := sides.Ranges(ctx, o)
	if err == nil {
		err = d.Run(ctx, ranges)
	}
	stop()
	c := d.Progress.Snapshot()
	fmt.Fprintf(stdout, "reconcile task=%s mode=%s listed=%d dst_listed=%d missing=%d different=%d extraneous=%d queued=%d deleted=%d heads=%d errors=%d elapsed=%s\n",
		rt.Task.Name, d.Options.Mode, c.Listed, c.DstListed, c.Missing, c.Different, c.Extraneous, c.Queued, c.Deleted, c.Heads, c.Errors,
		time.Since(start).Round(time.Millisecond))
	return err
}

func progressLine(c reconcile.Counts, elapsed time.Duration) string {
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(c.Listed) / s
	}
	return fmt.Sprintf("listed %d (%.0f/s)  missing %d  different %d  extraneous %d  queued %d  deleted %d  errors %d  %s",
		c.Listed, rate, c.Missing, c.Different, c.Extraneous, c.Queued, c.Deleted, c.Errors, elapsed.Round(time.Second))
}

// progressText is the head of a progress line: the run's percentage and
// time left, then its listing (out of the source's count, when known) and
// its copies in bytes, each with its rate; "--" where not known yet.
func progressText(p *reconcile.RunProgress) string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	if p.Percent != nil {
		fmt.Fprintf(&b, "%5.1f%%", *p.Percent)
	} else {
		b.WriteString("  --%")
	}
	if p.ETASeconds != nil {
		fmt.Fprintf(&b, "  ETA %s", (time.Duration(*p.ETASeconds) * time.Second).Round(time.Second))
	} else {
		b.WriteString("  ETA --")
	}
	if l := p.Listing; l.ObjectsTotal > 0 {
		fmt.Fprintf(&b, "  listing %d/%d", l.Objects, l.ObjectsTotal)
	}
	if c := p.Copies; c.ObjectsTotal > 0 {
		fmt.Fprintf(&b, "  copies %d/%d, %s of %s", c.Objects, c.ObjectsTotal, humanBytes(c.Bytes), humanBytes(c.BytesTotal))
		if c.BytesTotal > 0 && c.Rate > 0 {
			fmt.Fprintf(&b, " (%s/s)", humanBytes(int64(c.Rate)))
		}
	}
	b.WriteString("  ")
	return b.String()
}

// humanBytes is n in binary units, e.g. 1.5 GiB.
func humanBytes(n int64) string { return handlers.HumanBytes(n) }

// localProgress returns the progress text of a diff this process runs
// (reconcile and sync --local): its listing out of the source bucket's
// count, when the run covers the whole bucket and the stat is allowed,
// at a moving rate. The copies of a local sync are the queue's
// ("waiting"), not counted per run.
func localProgress(ctx context.Context, d *reconcile.Diff, sides *reconcile.TaskSides, log *slog.Logger) func() string {
	st := reconcile.RunState{ID: d.RunID, Mode: reconcile.ModeReport}
	if ps, err := sides.Prefixes(ctx, d.Options); err == nil && len(ps) == 0 {
		if s, ok := sides.Src.(reconcile.Statter); ok {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			objects, bytes, err := s.Stat(sctx)
			cancel()
			if err != nil {
				log.Info("the source bucket's stat is not available: no percentage", "err", err)
			}
			st.SourceObjects, st.SourceBytes = objects, bytes
		}
	}
	m := reconcile.NewMeter()
	return func() string {
		st.Counts = d.Progress.Snapshot()
		return progressText(m.Progress(&st, time.Now()))
	}
}

// progressBar redraws line() on w every half second until stop is called.
func progressBar(w io.Writer, quiet bool, line func() string) (stop func()) {
	if quiet {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(w, "\r\033[K%s\n", line())
				return
			case <-t.C:
				fmt.Fprintf(w, "\r\033[K%s", line())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// fileReport writes report lines to a file.
type fileReport struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	enc *json.Encoder
}

func newFileReport(path string) (*fileReport, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	return &fileReport{f: f, w: w, enc: json.NewEncoder(w)}, nil
}

func (r *fileReport) Report(_ context.Context, l reconcile.ReportLine) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.enc.Encode(l)
}

func (r *fileReport) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.w.Flush(); err != nil {
		r.f.Close()
		return err
	}
	return r.f.Close()
}

// reconcileRemote starts a run on a gateway (or follows the one in
// progress), polls it with a progress bar and prints its summary: when the
// diff is done, or, with waitCopies (sync), when the copy jobs it queued
// have all ended too; then a copy that failed for good is an error.
func reconcileRemote(ctx context.Context, f *reconcileFlags, waitCopies bool, stdout, stderr io.Writer) error {
	if f.gateway == "" {
		return errors.New("give --gateway URL (and --token) of a running oss2s3, or --local")
	}
	gw := &gatewayClient{base: strings.TrimRight(f.gateway, "/"), token: f.token, client: &http.Client{Timeout: 30 * time.Second}}
	o := f.options()
	var started struct {
		ID string `json:"id"`
	}
	code, err := gw.do(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(f.task)+"/reconcile",
		map[string]any{"mode": o.Mode, "verify": o.Verify, "max_deletes": o.MaxDeletes, "prefixes": o.Prefixes}, &started)
	if err != nil {
		return err
	}
	if code == http.StatusConflict {
		fmt.Fprintf(stderr, "a run of %s is already in progress: following %s\n", f.task, started.ID)
	}
	var shown atomic.Pointer[reconcile.RunState] // what the progress bar draws
	shown.Store(&reconcile.RunState{})
	start := time.Now()
	stop := progressBar(stderr, f.quiet, func() string {
		cur := shown.Load()
		line := progressText(cur.Progress) + progressLine(cur.Counts, time.Since(start)) + fmt.Sprintf("  shards %d/%d", cur.ShardsDone, cur.Shards)
		if waitCopies {
			// What the wait is for: every job the diff queued ended.
			line += fmt.Sprintf("  copies %d/%d (copied %d, skipped %d, failed %d)",
				cur.Copied+cur.Skipped+cur.Failed, cur.Jobs, cur.Copied, cur.Skipped, cur.Failed)
		}
		return line
	})
	st, err := gw.follow(ctx, started.ID, waitCopies, &shown)
	stop()
	if err != nil {
		return err
	}
	if f.report != "" {
		if err := downloadReport(ctx, gw.client, gw.base, f.token, st.ID, f.report); err != nil {
			return err
		}
	}
	if !waitCopies {
		return printReconcileSummary(st, stdout)
	}
	return printSyncSummary(st, time.Since(start), stdout, stderr)
}

// gatewayClient calls a running oss2s3's admin API.
type gatewayClient struct {
	base, token string
	client      *http.Client
}

// do sends body (if not nil) as JSON and decodes the answer into out (if
// not nil). A 409 Conflict is an answer like a 2xx; any other status from
// 300 up is an error.
func (g *gatewayClient) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := g.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return res.StatusCode, err
	}
	if res.StatusCode >= 300 && res.StatusCode != http.StatusConflict {
		return res.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, res.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return res.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return res.StatusCode, nil
}

// follow polls run id every second, storing each state in shown, until its
// diff is done (and, with waitCopies, its copies too).
func (g *gatewayClient) follow(ctx context.Context, id string, waitCopies bool, shown *atomic.Pointer[reconcile.RunState]) (reconcile.RunState, error) {
	var st reconcile.RunState
	for {
		var next reconcile.RunState
		if _, err := g.do(ctx, http.MethodGet, "/v1/reconciles/"+url.PathEscape(id), nil, &next); err != nil {
			return st, err
		}
		st = next
		shown.Store(&next)
		if st.Done && (!waitCopies || st.CopiesDone) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func printReconcileSummary(st reconcile.RunState, stdout io.Writer) error {
	fmt.Fprintf(stdout, "reconcile task=%s run=%s mode=%s listed=%d dst_listed=%d missing=%d different=%d extraneous=%d queued=%d deleted=%d heads=%d errors=%d elapsed=%.1fs\n",
		st.Task, st.ID, st.Mode, st.Listed, st.DstListed, st.Missing, st.Different, st.Extraneous, st.Queued, st.Deleted, st.Heads, st.Errors, st.Elapsed)
	if st.Error != "" {
		return fmt.Errorf("run %s failed: %s", st.ID, st.Error)
	}
	return nil
}

// printSyncSummary prints a run whose copies have ended; a copy that
// failed for good is an error.
func printSyncSummary(st reconcile.RunState, elapsed time.Duration, stdout, stderr io.Writer) error {
	if st.CopiesDoneBy == "idle_queue" {
		fmt.Fprintf(stderr, "the work queue is empty, so every copy job of run %s ended, but only %d of %d ends were counted\n",
			st.ID, st.Copied+st.Skipped+st.Failed, st.Jobs)
	}
	fmt.Fprintf(stdout, "sync task=%s run=%s mode=%s listed=%d missing=%d different=%d extraneous=%d queued=%d copied=%d skipped=%d failed=%d deleted=%d errors=%d elapsed=%s\n",
		st.Task, st.ID, st.Mode, st.Listed, st.Missing, st.Different, st.Extraneous, st.Jobs, st.Copied, st.Skipped, st.Failed,
		st.Deleted, st.Errors, elapsed.Round(time.Millisecond))
	switch {
	case st.Error != "":
		return fmt.Errorf("run %s failed: %s", st.ID, st.Error)
	case st.Failed > 0:
		return fmt.Errorf("%d copies failed for good: see the dead-letter queue (GET /v1/dlq?task=%s)", st.Failed, st.Task)
	}
	return nil
}

func downloadReport(ctx context.Context, client *http.Client, base, token, id, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/reconciles/"+url.PathEscape(id)+"/report", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("report of %s: %s", id, res.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
