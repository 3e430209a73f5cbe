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
	"strings"
	"time"
)

// defaultTimeout is the time budget of one invocation when OSS2S3_TIMEOUT is unset.
const defaultTimeout = 10 * time.Second

// Modes: where the function delivers events.
const (
	modeWebhook = "webhook"
	modeSQS     = "sqs"
)

// envVars is every environment variable the function reads, each with what
// it means; s.yaml and the README may set only these (a test checks).
var envVars = map[string]string{ //nolint:gosec // G101: names of variables and what they mean, no values
	"FC_CUSTOM_LISTEN_PORT": "port to listen on; set by FC (default 9000)",
	"OSS2S3_MODE":           "webhook (default) or sqs",
	"OSS2S3_TIMEOUT":        "time budget of one invocation, retries included (Go duration, default 10s; below the function's timeout)",
	"OSS2S3_GATEWAY_URL":    "webhook: the gateway's base URL; events go to <url>/v1/events/oss",
	"OSS2S3_WEBHOOK_SECRET": "webhook: the signing secret, one of the gateway's webhook.secrets",
	"OSS2S3_SQS_QUEUE_URL":  "sqs: the queue URL (the seed's QUEUE_URL is read if unset)",
	"OSS2S3_SQS_REGION":     "sqs: the queue's AWS region (the seed's REGION_NAME, else read from the queue URL)",
	"OSS2S3_SQS_FORMAT":     `sqs: message format, dth ({"key": ..., "size": ...}, as the seed wrote) or event ({"events":[record]})`,
	"OSS2S3_SQS_ENDPOINT":   "sqs: endpoint override (VPC endpoint, SQS-compatible server); empty = AWS",
	"AWS_ACCESS_KEY_ID":     "sqs: access key of an IAM user allowed sqs:SendMessage on the queue (the seed's ACCESS_KEY is read if unset)",
	"AWS_SECRET_ACCESS_KEY": "sqs: its secret (the seed's SECRET_KEY is read if unset)",
	"AWS_SESSION_TOKEN":     "sqs: session token, for temporary credentials (optional)",
	"QUEUE_URL":             "seed name of OSS2S3_SQS_QUEUE_URL",
	"REGION_NAME":           "seed name of OSS2S3_SQS_REGION",
	"ACCESS_KEY":            "seed name of AWS_ACCESS_KEY_ID",
	"SECRET_KEY":            "seed name of AWS_SECRET_ACCESS_KEY",
}

// config is everything run reads from its flags and environment.
type config struct {
	addr      string        // listen address
	mode      string        // modeWebhook or modeSQS
	eventsURL string        // webhook: the gateway's OSS events endpoint
	secret    string        // webhook: signing secret
	sqs       sqsConfig     // sqs mode
	timeout   time.Duration // budget of one invocation, retries included
}

// run serves FC's custom-runtime protocol until ctx is cancelled. Logs are
// JSON lines on stderr, which FC collects; stdout carries only the lines
// that frame each invocation for FC's console.
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
	var dst deliverer
	to, whereKey, where := "the gateway", "gateway", cfg.eventsURL
	if cfg.mode == modeSQS {
		dst = newSQSSender(cfg.sqs, cfg.timeout)
		to, whereKey, where = "SQS", "queue_url", cfg.sqs.queueURL
	} else {
		dst = newForwarder(cfg.eventsURL, cfg.secret, cfg.timeout)
	}
	srv := &http.Server{
		Handler:           newHandler(logger, &lineWriter{w: stdout}, dst, to),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	attrs := []any{"addr", ln.Addr().String(), "mode", cfg.mode, whereKey, where, "timeout", cfg.timeout.String()}
	if cfg.mode == modeSQS {
		attrs = append(attrs, "format", cfg.sqs.format, "region", cfg.sqs.region)
	}
	logger.Info("listening", attrs...)

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

	cfg := config{addr: *addr, mode: getenv("OSS2S3_MODE"), timeout: defaultTimeout}
	var errs []error
	switch cfg.mode {
	case "":
		cfg.mode = modeWebhook
		errs = append(errs, webhookConfig(&cfg, getenv)...)
	case modeWebhook:
		errs = append(errs, webhookConfig(&cfg, getenv)...)
	case modeSQS:
		errs = append(errs, sqsConfigFrom(&cfg, getenv)...)
	default:
		errs = append(errs, fmt.Errorf("OSS2S3_MODE %q is neither %s nor %s", cfg.mode, modeWebhook, modeSQS))
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

func webhookConfig(cfg *config, getenv func(string) string) []error {
	var errs []error
	cfg.secret = getenv("OSS2S3_WEBHOOK_SECRET")
	if raw := getenv("OSS2S3_GATEWAY_URL"); raw == "" {
		errs = append(errs, errors.New("OSS2S3_GATEWAY_URL is not set (or set OSS2S3_MODE=sqs)"))
	} else if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("OSS2S3_GATEWAY_URL %q is not an http(s) URL", raw))
	} else {
		cfg.eventsURL = u.JoinPath("v1", "events", "oss").String()
	}
	if cfg.secret == "" {
		errs = append(errs, errors.New("OSS2S3_WEBHOOK_SECRET is not set"))
	}
	return errs
}

// sqsConfigFrom reads SQS mode's variables, falling back to the names the
// seed's Python function used, so that its environment can be kept.
func sqsConfigFrom(cfg *config, getenv func(string) string) []error {
	either := func(name, seed string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return getenv(seed)
	}
	c := sqsConfig{
		queueURL:     either("OSS2S3_SQS_QUEUE_URL", "QUEUE_URL"),
		region:       either("OSS2S3_SQS_REGION", "REGION_NAME"),
		endpoint:     getenv("OSS2S3_SQS_ENDPOINT"),
		accessKeyID:  either("AWS_ACCESS_KEY_ID", "ACCESS_KEY"),
		secretKey:    either("AWS_SECRET_ACCESS_KEY", "SECRET_KEY"),
		sessionToken: getenv("AWS_SESSION_TOKEN"),
		format:       getenv("OSS2S3_SQS_FORMAT"),
	}
	var errs []error
	if c.queueURL == "" {
		errs = append(errs, errors.New("OSS2S3_SQS_QUEUE_URL is not set"))
	} else if u, err := url.Parse(c.queueURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		errs = append(errs, fmt.Errorf("OSS2S3_SQS_QUEUE_URL %q is not a queue URL such as https://sqs.us-west-2.amazonaws.com/123456789012/queue", c.queueURL))
	}
	if c.region == "" {
		c.region = regionOfQueueURL(c.queueURL)
	}
	if c.region == "" && c.queueURL != "" {
		errs = append(errs, errors.New("OSS2S3_SQS_REGION is not set and the queue URL names no region"))
	}
	if c.endpoint != "" {
		if u, err := url.Parse(c.endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("OSS2S3_SQS_ENDPOINT %q is not an http(s) URL", c.endpoint))
		}
	}
	if c.accessKeyID == "" || c.secretKey == "" {
		errs = append(errs, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set (FC has no AWS credentials of its own)"))
	}
	switch c.format {
	case formatDTH, formatEvent:
	case "":
		errs = append(errs, fmt.Errorf("OSS2S3_SQS_FORMAT is not set: %s for queues Data Transfer Hub's workers read, %s for the oss2s3 gateway (deletes included)", formatDTH, formatEvent))
	default:
		errs = append(errs, fmt.Errorf("OSS2S3_SQS_FORMAT %q is neither %s nor %s", c.format, formatDTH, formatEvent))
	}
	cfg.sqs = c
	return errs
}

func progName(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return "aliyun-fc"
}
