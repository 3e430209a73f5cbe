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
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/handlers/intake"
	"github.com/oss2s3/oss2s3/handlers/mns"
	"github.com/oss2s3/oss2s3/handlers/sqsingest"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
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
	cfg, err := loadConfig(*configPath, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log)
	if getenv("GOMEMLIMIT") == "" {
		// Part buffers are bounded by memory_budget; tell the GC, so the
		// heap does not grow to twice that before it collects.
		debug.SetMemoryLimit(int64(cfg.Workers.MemoryBudget) + memoryHeadroom)
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

func webhookSources(in []WebhookSource) []handlers.WebhookSource {
	out := make([]handlers.WebhookSource, len(in))
	for i, s := range in {
		out[i] = handlers.WebhookSource(s)
	}
	return out
}

// memoryHeadroom is what the process needs besides part buffers (runtime,
// HTTP, TLS, JetStream client), for the soft memory limit.
const memoryHeadroom = 32 << 20

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
	cfg     *Config
	log     *slog.Logger
	queue   *transfer.Queue
	handler http.Handler
	workers *transfer.Workers // nil when workers.concurrency is 0
	sqs     []*sqsingest.Ingester
	tasks   map[string]*transfer.TaskRuntime
	certs   *certReloader // nil: plain HTTP

	// draining is set when shutdown starts: /readyz answers 503 from then
	// on, while webhooks are still accepted until the listener closes.
	draining atomic.Bool

	recon *reconcile.Service
}

// readiness is /readyz's view: JetStream reachable and not shutting down.
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

// newApp builds every part from cfg: clients for each task, JetStream, the
// HTTP handler and the workers.
func newApp(ctx context.Context, cfg *Config, log *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log, tasks: map[string]*transfer.TaskRuntime{}}
	if cfg.TLS.enabled() {
		var err error
		if a.certs, err = newCertReloader(cfg.TLS, log); err != nil {
			return nil, err
		}
	}
	var taskList []*transfer.Task
	var names []string
	for i := range cfg.Tasks {
		t := &cfg.Tasks[i]
		src, err := transfer.NewOSSSource(t.Source, nil)
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", t.Name, err)
		}
		dst, err := transfer.NewS3Destination(ctx, t.Destination)
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", t.Name, err)
		}
		a.tasks[t.Name] = &transfer.TaskRuntime{Task: t, Source: src, Destination: dst}
		taskList = append(taskList, t)
		names = append(names, t.Name)
	}

	reg := metrics.NewRegistry()
	m := metrics.New(reg, names)

	q, err := transfer.OpenQueue(ctx, queueConfig(cfg), log)
	if err != nil {
		return nil, err
	}
	a.queue = q
	m.WatchQueue(q)
	sides := map[string]*reconcile.TaskSides{}
	for name, rt := range a.tasks {
		sides[name] = reconcile.NewTaskSides(rt)
	}
	// Retried as the queue's streams are: replicas starting together on a
	// new cluster race to create the same buckets while leaders are elected.
	if err = q.Setup(ctx, func(ctx context.Context) (err error) {
		a.recon, err = reconcile.NewService(ctx, q.JetStream(), q, sides, reconcile.ServiceConfig{
			Replicas: q.Replicas(), Owner: hostname() + "-" + strconv.Itoa(os.Getpid()),
		}, m, log)
		return err
	}); err != nil {
		q.Close()
		return nil, err
	}
	router := transfer.NewRouter(taskList)
	in := intake.New(q, router, m, log)
	for _, sc := range cfg.SQS {
		var task *transfer.Task
		if rt := a.tasks[sc.Task]; rt != nil {
			task = rt.Task
		}
		g, err := sqsingest.New(ctx, sc, task, in, m, log)
		if err != nil {
			q.Close()
			return nil, err
		}
		a.sqs = append(a.sqs, g)
	}
	var mnsVerifier *mns.Verifier
	if cfg.MNS.Enabled {
		allowed, _ := mns.HostPattern(cfg.MNS.CertHostPattern) // validated with the configuration
		mnsVerifier = &mns.Verifier{AllowedHost: allowed}
	}
	a.handler = handlers.New(log, m, reg, in, readiness{queue: q, draining: &a.draining}, q, handlers.Config{
		WebhookSecrets: cfg.Webhook.Secrets, MaxBodyBytes: int64(cfg.Webhook.MaxBodyBytes), Tolerance: cfg.Webhook.Tolerance,
		AdminTokens: cfg.Admin.Tokens, WebhookSources: webhookSources(cfg.Webhook.Sources),
		EventBridge: cfg.EventBridge.auth(), MNS: mnsVerifier, MNSPathTokens: cfg.MNS.PathTokens,
		Reconciler: a.recon,
	})
	if w := cfg.Workers; *w.Concurrency > 0 {
		owner := fmt.Sprintf("%s-%d-%s", hostname(), os.Getpid(), randomHex(4))
		a.workers = transfer.NewWorkers(q, transfer.NewCopier(w.MemoryBudget, q.Checkpoints(), owner).Measure(m), a.tasks, transfer.WorkerConfig{
			Concurrency: *w.Concurrency,
			Copy: transfer.CopyConfig{PartSize: w.PartSize, MultipartThreshold: w.MultipartThreshold,
				PartsInFlight: w.PartsInFlight, GiantThreshold: w.GiantThreshold},
			RetryBase: cfg.Queue.RetryBase, RetryMax: cfg.Queue.RetryMax,
			JobTimeout: w.JobTimeout, ShutdownGrace: w.ShutdownGrace,
		}, m, log)
		a.workers.SetShardRunner(a.recon)
		a.workers.SetJobObserver(a.recon)
	}
	return a, nil
}

func queueConfig(cfg *Config) transfer.QueueConfig {
	return transfer.QueueConfig{
		URL: cfg.NATS.URL, CredsFile: cfg.NATS.CredsFile, DataDir: cfg.DataDir,
		EmbeddedListen: cfg.NATS.EmbeddedListen, Replicas: cfg.NATS.Replicas,
		DuplicateWindow: cfg.Queue.DuplicateWindow, MaxMsgs: cfg.Queue.MaxJobs, MaxBytes: int64(cfg.Queue.MaxBytes),
		AckWait: cfg.Queue.AckWait, MaxDeliver: cfg.Queue.MaxDeliver, DeadLetterAge: cfg.Queue.DeadLetterAge,
	}
}

// serve answers HTTP(S) on ln and runs the workers until ctx is done. Then
// it shuts down in order: /readyz answers 503 at once and for drain_delay
// the gateway still takes webhooks (load balancers notice and stop sending);
// then the listener closes and requests in flight finish. Meanwhile the SQS
// ingesters and the workers stop taking work, copies in flight get
// workers.shutdown_grace and the rest go back to the queue. JetStream is
// closed last (flushing the embedded store), after every accepted event is
// stored.
func (a *app) serve(ctx context.Context, ln net.Listener) error {
	defer a.queue.Close()
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	if a.certs != nil {
		srv.TLSConfig = a.certs.tlsConfig()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		a.log.Info("gateway listening", "addr", ln.Addr().String(), "tls", a.certs != nil, "tasks", len(a.tasks))
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
		a.log.Info("shutting down: /readyz answers 503", "drain_delay", a.cfg.DrainDelay)
		if ctx.Err() != nil { // a signal, not a failure: give load balancers time
			time.Sleep(a.cfg.DrainDelay)
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		a.log.Info("gateway stopped; requests in flight finished", "err", err)
		return err
	})
	for _, in := range a.sqs {
		g.Go(func() error { return in.Run(gctx) })
	}
	g.Go(func() error { return a.recon.Schedule(gctx) })
	g.Go(func() error { a.recon.SaveTallies(gctx); return nil })
	if a.workers != nil {
		g.Go(func() error { return a.workers.Run(gctx) })
	} else {
		a.log.Info("workers.concurrency is 0: this process only receives events")
	}
	err := g.Wait()
	a.recon.Wait()
	a.log.Info("stopped")
	return err
}
