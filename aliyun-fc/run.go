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
	"net/url"
	"time"
)

// defaultTimeout is the time budget of one invocation when OSS2S3_TIMEOUT is unset.
const defaultTimeout = 10 * time.Second

// config is everything run reads from its flags and environment.
type config struct {
	addr      string        // listen address
	eventsURL string        // the gateway's OSS events endpoint
	secret    string        // webhook signing secret
	timeout   time.Duration // budget of one invocation, retries included
}

// run serves FC's custom-runtime protocol until ctx is cancelled. Logs are
// JSON lines on stderr, which FC collects; stdout is not used.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	fwd := newForwarder(cfg.eventsURL, cfg.secret, cfg.timeout)
	srv := &http.Server{
		Handler:           newHandler(logger, fwd),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("listening", "addr", ln.Addr().String(), "gateway", cfg.eventsURL, "timeout", cfg.timeout.String())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Let invocations in flight finish: each is bounded by the budget.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.timeout+time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// loadConfig reads flags and environment and reports every problem at once.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	port := getenv("FC_CUSTOM_LISTEN_PORT")
	if port == "" {
		port = "9000"
	}
	fs := flag.NewFlagSet(progName(args), flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", net.JoinHostPort("0.0.0.0", port), "listen address (default from FC_CUSTOM_LISTEN_PORT)")
	var rest []string
	if len(args) > 1 {
		rest = args[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	cfg := config{addr: *addr, secret: getenv("OSS2S3_WEBHOOK_SECRET"), timeout: defaultTimeout}
	var errs []error
	if raw := getenv("OSS2S3_GATEWAY_URL"); raw == "" {
		errs = append(errs, errors.New("OSS2S3_GATEWAY_URL is not set"))
	} else if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("OSS2S3_GATEWAY_URL %q is not an http(s) URL", raw))
	} else {
		cfg.eventsURL = u.JoinPath("v1", "events", "oss").String()
	}
	if cfg.secret == "" {
		errs = append(errs, errors.New("OSS2S3_WEBHOOK_SECRET is not set"))
	}
	if raw := getenv("OSS2S3_TIMEOUT"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("OSS2S3_TIMEOUT %q is not a positive Go duration such as 10s", raw))
		}
		cfg.timeout = d
	}
	if err := errors.Join(errs...); err != nil {
		return config{}, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

func progName(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return "aliyun-fc"
}
