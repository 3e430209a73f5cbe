// Package handlers owns every HTTP endpoint of the gateway: the webhooks
// that receive OSS events, their authentication, health and metrics. It
// turns requests into jobs and hands them to a Publisher; it never reaches
// into the workers.
package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/handlers/cloudevents"
	"github.com/oss2s3/oss2s3/handlers/intake"
	"github.com/oss2s3/oss2s3/handlers/mns"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// DeadLetterQueue is where failed jobs are parked, for the admin API.
type DeadLetterQueue interface {
	DeadLetters(ctx context.Context, f transfer.DeadLetterFilter, limit int) ([]transfer.DeadLetter, error)
	Redrive(ctx context.Context, f transfer.DeadLetterFilter) (int, error)
}

// Checker reports whether the gateway can take work.
type Checker interface {
	Ready(ctx context.Context) error
}

// WebhookSource is a sender with its own secrets, allowed to report events
// of Buckets only (all buckets when empty): a leaked secret of one Function
// Compute function cannot inject events for another bucket.
type WebhookSource struct {
	Name    string
	Secrets []string
	Buckets []string
}

// Config is the gateway's HTTP behaviour.
type Config struct {
	WebhookSecrets []string // HMAC secrets accepted on /v1/events/oss from any sender; several at once for rotation
	WebhookSources []WebhookSource
	MaxBodyBytes   int64         // larger bodies get 413
	Tolerance      time.Duration // how old (or new) a signature's timestamp may be
	RetryAfter     time.Duration // what a 503 asks the sender to wait
	PublishTimeout time.Duration // how long to wait for JetStream to store a document's jobs
	AdminTokens    []string      // bearer tokens for /v1/dlq...; none: the admin API is off
	EventBridge    cloudevents.Auth
	MNS            *mns.Verifier // nil: the MNS endpoint is off
	MNSPathTokens  []string      // if set, MNS must post to /v1/events/mns/<one of them>
	Reconciler     Reconciler    // nil: the reconcile routes answer 503

	deadlines *publishDeadlines // of PublishTimeout, made by withDefaults
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.Tolerance <= 0 {
		c.Tolerance = 5 * time.Minute
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 5 * time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 10 * time.Second
	}
	c.deadlines = newPublishDeadlines(c.PublishTimeout)
	return c
}

// New returns the gateway's handler with every route of routes.go. in is
// the intake every event path shares (the SQS ingesters too).
func New(log *slog.Logger, m *metrics.Metrics, gatherer prometheus.Gatherer, in *intake.Intake, ready Checker, dlq DeadLetterQueue, cfg Config) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(log)
	e.Use(observe(m))
	addRoutes(e, log, m, gatherer, in, ready, dlq, cfg.withDefaults())
	return e
}

// apiError is every error body the gateway sends.
type apiError struct {
	Error string `json:"error"`
}

func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code, msg := http.StatusInternalServerError, "internal error"
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
			if s, ok := he.Message.(string); ok {
				msg = s
			} else {
				msg = http.StatusText(code)
			}
		} else {
			log.Error("request failed", "path", c.Path(), "err", err)
		}
		_ = c.JSON(code, apiError{Error: msg})
	}
}

// observe records every request in the HTTP metrics, by route pattern.
func observe(m *metrics.Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			code := c.Response().Status
			var he *echo.HTTPError
			if errors.As(err, &he) {
				code = he.Code
			} else if err != nil {
				code = http.StatusInternalServerError
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			m.ObserveHTTP(route, c.Request().Method, code, time.Since(start))
			return err
		}
	}
}
