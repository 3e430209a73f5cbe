// Package handlers owns every HTTP endpoint of the gateway: the webhooks
// that receive OSS events, the admin API, health and metrics. It speaks
// HTTP only (routes, bodies and their limits, status codes, the client's
// address in the logs) and reaches everything else through the small
// interfaces it declares: an EventSink authenticates and queues the events
// a webhook request carries, a DeadLetterQueue and a Reconciler answer the
// admin API. server wires the implementations in; it never reaches into
// the workers.
package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/metrics"
)

// Checker reports whether the gateway can take work.
type Checker interface {
	Ready(ctx context.Context) error
}

// Config is the gateway's HTTP behaviour.
type Config struct {
	MaxBodyBytes  int64         // larger bodies get 413
	RetryAfter    time.Duration // what a 503 asks the sender to wait
	AdminTokens   []string      // bearer tokens for /v1/dlq...; none: the admin API is off
	MNSPathTokens []string      // if set, MNS must post to /v1/events/mns/<one of them>
	Reconciler    Reconciler    // nil: the reconcile routes answer 503
	Tasks         TaskLister    // nil: GET /v1/tasks answers 503
	// ConfigStatus is GET /v1/tasks' "config" (nil: none).
	ConfigStatus ConfigStatuser
	// TrustedProxies are the address ranges of the proxies in front of the
	// gateway, whose X-Forwarded-For is believed; none: logs name the peer.
	TrustedProxies []*net.IPNet
	// GrafanaURL, if set, is where the status page links the dashboards
	// (deploy/grafana, by their uids).
	GrafanaURL string
}

// DefaultMaxBodyBytes is MaxBodyBytes when it is not set.
const DefaultMaxBodyBytes = 1 << 20

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 5 * time.Second
	}
	return c
}

// New returns the gateway's handler with every route of routes.go. events
// takes what every event endpoint receives (server wires in
// transfer/ingest's Receiver).
func New(log *slog.Logger, m *metrics.Metrics, gatherer prometheus.Gatherer, events EventSink, ready Checker, dlq DeadLetterQueue, cfg Config) http.Handler {
	e, routed := newEcho(log, m, cfg)
	addRoutes(e, log, m, gatherer, events, ready, dlq, cfg.withDefaults())
	routed()
	return e
}

// newEcho is where both of the gateway's handlers start: errors answered
// with their reason, client addresses as cfg trusts them, and every request
// measured, labelled by its route from the route table. Call routed once
// the routes are added, before the handler serves: the table is filled
// then and only read after.
func newEcho(log *slog.Logger, m *metrics.Metrics, cfg Config) (e *echo.Echo, routed func()) {
	e = echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(log)
	e.IPExtractor = clientIP(cfg.TrustedProxies)
	routes := map[string]bool{}
	e.Use(observe(m, routes))
	return e, func() {
		for _, r := range e.Routes() {
			routes[r.Path] = true
		}
	}
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

// RouteUnmatched is the "route" label of a request that matched no route.
const RouteUnmatched = "unmatched"

// observe records every request in the HTTP metrics, by route pattern:
// one of routes (the route table), else RouteUnmatched. Nothing a client
// sends becomes a label value; the metrics take the method from a closed
// set too.
func observe(m *metrics.Metrics, routes map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			code := c.Response().Status
			if err != nil { // first: errors.As's target would be an allocation per request
				code = http.StatusInternalServerError
				var he *echo.HTTPError
				if errors.As(err, &he) {
					code = he.Code
				}
			}
			route := c.Path()
			if !routes[route] {
				route = RouteUnmatched
			}
			m.ObserveHTTP(route, c.Request().Method, code, time.Since(start))
			return err
		}
	}
}
