package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest"
	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", getenv("OSS2S3_CONFIG"), "configuration file (env OSS2S3_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configPath == "" {
		return errors.New("no configuration: pass --config FILE or set OSS2S3_CONFIG (see deploy/config.example.yaml)")
	}
	if reloadSignals(ctx) == nil {
		// SIGHUP reads the configuration again (watchReloads). Caught from
		// here on: its default would end the process.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		ctx = withReloadSignals(ctx, hup)
	}
	cfg, err := loadConfig(*configPath, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log)
	if limit, ok := memoryLimit(cfg, getenv); ok {
		debug.SetMemoryLimit(limit)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	a.src = source{path: *configPath, getenv: getenv}
	if path := getenv("OSS2S3_CPUPROFILE"); path != "" {
		// For finding where the time goes under a benchmark.
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return a.serve(ctx, ln)
}

func webhookSources(in []WebhookSource) []ingest.WebhookSource {
	out := make([]ingest.WebhookSource, len(in))
	for i, s := range in {
		out[i] = ingest.WebhookSource(s)
	}
	return out
}

// memoryHeadroom is what the process needs besides part buffers (runtime,
// HTTP, TLS, JetStream client), for the soft memory limit.
const memoryHeadroom = 32 << 20

// memoryLimit is the Go soft memory limit serve sets, and whether it sets
// one. A process that copies holds part buffers of up to
// workers.memory_budget: the limit, budget + memoryHeadroom, keeps the heap
// from growing to twice that before the collector runs, and so holds the
// process's peak RSS (bench copy's rss goal, deploy's container limit).
// A gateway-only process (workers.concurrency 0: no copier, no part
// buffers) has nothing the budget bounds: its heap is requests in flight
// and, with the embedded JetStream, the duplicate window's message ids,
// which grow with the event rate (~120 bytes x events/s x window) and
// which no collection frees. A budget-derived limit below that live heap
// only makes the collector run without pause (measured: ~5 µs of CPU per
// event at 27k events/s), so such a process gets none and GOGC alone
// paces the collector. GOMEMLIMIT, when set, is the runtime's and left
// alone.
func memoryLimit(cfg *Config, getenv func(string) string) (int64, bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	if cfg.Workers.Concurrency == nil || *cfg.Workers.Concurrency == 0 {
		return 0, false
	}
	return int64(cfg.Workers.MemoryBudget) + memoryHeadroom, true
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "oss2s3"
	}
	return h
}

func newLogger(w io.Writer, c LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// app is one oss2s3 process: the queue, the gateway and the workers.
type app struct {
	log   *slog.Logger
	certs *certReloader // nil: plain HTTP
	reg   *prometheus.Registry
	m     *metrics.Metrics

	// live is the configuration in use (a generation): what the gateway
	// serves and every part reads the tasks through. src is where a
	// reload reads the file; refused is the last reload refused.
	live    live
	src     source
	refused atomic.Pointer[handlers.ReloadStatus]
	// mu makes the reloads, and the building of the gateway once
	// JetStream is ready, one at a time.
	mu sync.Mutex

	// Set by connect, once JetStream is ready.
	queue   *transfer.Queue
	workers *transfer.Workers // nil when workers.concurrency is 0
	sweeper *transfer.Sweeper // nil when workers.concurrency is 0
	recon   *reconcile.Service

	// startup is /readyz's answer until then.
	startup startup

	// draining is set when shutdown starts: /readyz answers 503 from then
	// on, while webhooks are still accepted until the listener closes.
	draining atomic.Bool
}

// config is the configuration in use. The settings a reload cannot
// change (restartOnlyChanges) are the same in every one.
func (a *app) config() *Config { return a.live.load().cfg }

// readiness is /readyz's view once JetStream is ready: still reachable, and
// not shutting down.
type readiness struct {
	queue    handlers.Checker
	draining *atomic.Bool
}

func (r readiness) Ready(ctx context.Context) error {
	if r.draining.Load() {
		return errors.New("shutting down")
	}
	return r.queue.Ready(ctx)
}

// startup is /readyz's view until JetStream is ready: not ready, and why.
// (Not the NATS URL: /readyz is open to anyone, and a URL may carry a
// password.)
type startup struct {
	lastErr  atomic.Pointer[string] // of the last attempt to open JetStream
	draining *atomic.Bool
}

func (s *startup) Ready(context.Context) error {
	if s.draining.Load() {
		return errors.New("shutting down")
	}
	msg := "jetstream not reachable yet"
	if e := s.lastErr.Load(); e != nil {
		msg += ": " + *e
	}
	return errors.New(msg)
}

// newApp builds the parts that do not need JetStream: clients for each
// task, the certificates, the metrics and the gateway's starting handler.
// connect builds the rest.
func newApp(ctx context.Context, cfg *Config, log *slog.Logger) (*app, error) {
	a := &app{log: log}
	if cfg.TLS.enabled() {
		var err error
		if a.certs, err = newCertReloader(cfg.TLS, log); err != nil {
			return nil, err
		}
	}
	a.reg = metrics.NewRegistry()
	a.m = metrics.New(a.reg, nil)
	a.startup.draining = &a.draining
	g, err := a.newGeneration(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	a.install(g)
	a.m.ConfigLoaded(false, true, g.loadedAt)
	return a, nil
}

// openApp is newApp and connect: for the commands that need JetStream
// before they do anything.
func openApp(ctx context.Context, cfg *Config, log *slog.Logger) (*app, error) {
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if err := a.connect(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// handlersConfig is the gateway's HTTP behaviour (handlers) that cfg
// sets.
func handlersConfig(cfg *Config) handlers.Config {
	proxies, _ := cfg.trustedProxies() // validated with the configuration
	return handlers.Config{
		MaxBodyBytes: int64(cfg.Webhook.MaxBodyBytes), AdminTokens: cfg.Admin.Tokens,
		MNSPathTokens: cfg.MNS.PathTokens, TrustedProxies: proxies, GrafanaURL: cfg.Admin.GrafanaURL,
	}
}

// ingestConfig is how the webhooks' requests are authenticated and
// bounded (ingest's Receiver); mnsVerifier is nil when MNS is off.
func ingestConfig(cfg *Config, mnsVerifier *mns.Verifier) ingest.Config {
	return ingest.Config{
		WebhookSecrets: cfg.Webhook.Secrets, WebhookSources: webhookSources(cfg.Webhook.Sources),
		Tolerance: cfg.Webhook.Tolerance, MaxRecords: cfg.Webhook.MaxRecords,
		EventBridge: cfg.EventBridge.auth(), MNS: mnsVerifier,
	}
}

// connect opens JetStream (one attempt: the queue's own setup retries for a
// while) and builds what needs it: the reconciler, the intake, the SQS
// ingesters, the gateway's handler and the workers.
func (a *app) connect(ctx context.Context) error {
	q, recon, err := a.openJetStream(ctx)
	if err != nil {
		return err
	}
	return a.assemble(ctx, q, recon)
}

// assemble builds the parts that use JetStream, once it is open: the
// workers and the sweeper (which read the tasks through a.live), and the
// gateway's handler, the intake and the SQS ingesters of the generation
// in use, which it installs. On error it closes q.
func (a *app) assemble(ctx context.Context, q *transfer.Queue, recon *reconcile.Service) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, log := a.config(), a.log
	a.m.WatchQueue(q)
	a.queue, a.recon = q, recon
	cur := a.live.load()
	g := *cur
	g.replaced = make(chan struct{})
	if err := a.withJetStream(ctx, &g, nil); err != nil {
		a.queue, a.recon = nil, nil
		q.Close()
		return err
	}
	if w := cfg.Workers; *w.Concurrency > 0 {
		owner := fmt.Sprintf("%s-%d-%s", hostname(), os.Getpid(), randomHex(4))
		copier := transfer.NewCopier(w.MemoryBudget, q.Checkpoints(), owner).Measure(a.m)
		a.sweeper = transfer.NewSweeper(q, copier, &a.live, transfer.SweeperConfig{
			Lease: w.Lease, OrphanAge: w.OrphanUploadAge, OrphanEvery: w.OrphanSweepInterval,
		}, a.m, log)
		a.workers = transfer.NewWorkers(q, copier, &a.live, transfer.WorkerConfig{
			Concurrency: *w.Concurrency, LargeConcurrency: w.LargeConcurrency,
			Copy: transfer.CopyConfig{PartSize: w.PartSize, MultipartThreshold: w.MultipartThreshold,
				PartsInFlight: w.PartsInFlight, GiantThreshold: w.GiantThreshold, Lease: w.Lease},
			RetryBase: cfg.Queue.RetryBase, RetryMax: cfg.Queue.RetryMax,
			JobTimeout: w.JobTimeout, ShutdownGrace: w.ShutdownGrace,
			Kinds:    map[string]transfer.JobWorker{transfer.KindReconcile: transfer.JobWorkerFunc(recon.RunShard)},
			Observer: recon,
		}, a.m, log)
	}
	a.install(&g)
	return nil
}

// failFast refuses a publish at once while the connection to NATS is down
// (an outage, a node restarting): nats.go would buffer the jobs until it
// reconnects, and the request wait out its whole publish timeout for the
// same 503, longer than some senders wait for an answer.
type failFast struct{ *transfer.Queue }

func (p failFast) Publish(ctx context.Context, jobs []transfer.Job) (transfer.PublishResult, error) {
	if !p.Conn().IsConnected() {
		none := make([]int, len(jobs))
		for i := range none {
			none[i] = i
		}
		return transfer.PublishResult{NotQueued: none}, fmt.Errorf("%w: not connected to nats", transfer.ErrQueueUnavailable)
	}
	return p.Queue.Publish(ctx, jobs)
}

// openJetStream opens the queue and the reconciler's state in JetStream.
// The reconciler creates its own assets through a JetStream handle of its
// own on the queue's connection.
func (a *app) openJetStream(ctx context.Context) (*transfer.Queue, *reconcile.Service, error) {
	q, err := transfer.OpenQueue(ctx, queueConfig(a.config()), a.log)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(q.Conn())
	if err != nil {
		q.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	// Retried as the queue's streams are: replicas starting together on a
	// new cluster race to create the same buckets while leaders are elected.
	var recon *reconcile.Service
	if err = q.Setup(ctx, func(ctx context.Context) (err error) {
		recon, err = reconcile.NewService(ctx, js, q, &a.live, reconcile.ServiceConfig{
			Replicas: q.Replicas(), Owner: hostname() + "-" + strconv.Itoa(os.Getpid()),
		}, a.m, a.log)
		return err
	}); err != nil {
		q.Close()
		return nil, nil, err
	}
	return q, recon, nil
}

// connectWhenReachable is connect, whose opening of JetStream is tried
// again for as long as ctx lasts when an external NATS is not reachable:
// NATS may be down, or starting after us; the gateway answers 503 meanwhile
// and takes over the moment JetStream is ready. The embedded server is
// ours: if it does not start, waiting will not mend it, so that error ends
// the process, as a bad configuration does. It returns nil, not connected,
// when ctx ends first.
func (a *app) connectWhenReachable(ctx context.Context) error {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		q, recon, err := a.openJetStream(ctx)
		if err == nil {
			return a.assemble(ctx, q, recon)
		}
		if ctx.Err() != nil {
			return nil
		}
		if a.config().NATS.URL == "" {
			return err
		}
		msg := err.Error()
		a.startup.lastErr.Store(&msg)
		a.log.Warn("jetstream not reachable yet; the gateway answers 503 until it is, trying again",
			"err", err, "attempt", attempt, "retry_in", wait)
		sleepCtx(ctx, wait)
		wait = min(2*wait, 30*time.Second)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func queueConfig(cfg *Config) transfer.QueueConfig {
	return transfer.QueueConfig{
		URL: cfg.NATS.URL, CredsFile: cfg.NATS.CredsFile, DataDir: cfg.DataDir,
		EmbeddedListen: cfg.NATS.EmbeddedListen, Replicas: cfg.NATS.Replicas,
		DuplicateWindow: cfg.Queue.DuplicateWindow, MaxMsgs: cfg.Queue.MaxJobs, MaxBytes: int64(cfg.Queue.MaxBytes),
		AckWait: cfg.Queue.AckWait, MaxAttempts: cfg.Queue.MaxAttempts, DeadLetterAge: cfg.Queue.DeadLetterAge,
		LargeObject: cfg.Workers.MultipartThreshold,
	}
}

// serve answers HTTP(S) on ln at once, connects to JetStream (the gateway
// answers 503 until it is ready), then runs the workers until ctx is done.
// Then it shuts down in order: /readyz answers 503 at once and for
// drain_delay the gateway still takes webhooks (load balancers notice and
// stop sending); then the listener closes and requests in flight finish.
// Meanwhile the SQS ingesters and the workers stop taking work, copies in
// flight get workers.shutdown_grace and the rest go back to the queue.
// JetStream is closed last (flushing the embedded store), after every
// accepted event is stored.
func (a *app) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           &a.live,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	if a.certs != nil {
		srv.TLSConfig = a.certs.tlsConfig()
	}
	var connected atomic.Bool
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { a.watchReloads(gctx, reloadSignals(ctx)); return nil })
	g.Go(func() error {
		a.log.Info("gateway listening", "addr", ln.Addr().String(), "tls", a.certs != nil, "tasks", len(a.live.Tasks()))
		var err error
		if a.certs != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		a.draining.Store(true)
		drain := a.config().DrainDelay
		a.log.Info("shutting down: /readyz answers 503", "drain_delay", drain)
		// A signal, not a failure: give load balancers time, if they ever
		// saw this gateway ready.
		if ctx.Err() != nil && connected.Load() {
			time.Sleep(drain)
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		a.log.Info("gateway stopped; requests in flight finished", "err", err)
		return err
	})
	g.Go(func() error {
		if a.queue == nil { // not yet connected by openApp
			if err := a.connectWhenReachable(gctx); err != nil || a.queue == nil {
				return err
			}
		}
		connected.Store(true)
		a.log.Info("jetstream ready: the gateway takes events")
		g.Go(func() error { a.runSQS(gctx); return nil })
		g.Go(func() error { return a.recon.Schedule(gctx) })
		g.Go(func() error { a.recon.SaveTallies(gctx); return nil })
		g.Go(func() error { a.recon.ExportProgress(gctx); return nil })
		if a.workers != nil {
			g.Go(func() error { return a.workers.Run(gctx) })
			g.Go(func() error { return a.sweeper.Run(gctx) })
		} else {
			a.log.Info("workers.concurrency is 0: this process only receives events")
		}
		return nil
	})
	err := g.Wait()
	if a.queue != nil {
		a.recon.Wait()
		a.queue.Close()
	}
	a.log.Info("stopped")
	return err
}
