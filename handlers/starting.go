package handlers

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/metrics"
)

// NewStarting returns the gateway's handler for while JetStream is not
// ready yet (an external NATS that is down or still starting): the process
// is up (/healthz, /metrics), not ready (/readyz says why, from ready), and
// every webhook and admin request gets 503 with Retry-After, so senders
// keep their events and send them again. The process swaps it for New's
// handler once JetStream is ready.
func NewStarting(log *slog.Logger, m *metrics.Metrics, gatherer prometheus.Gatherer, ready Checker, cfg Config) http.Handler {
	e, routed := newEcho(log, m, cfg)
	addStartingRoutes(e, gatherer, ready, cfg.withDefaults())
	routed()
	return e
}

// handleNotStarted refuses a request that needs JetStream, as a 503 for a
// full queue does: nothing was done, send it again later.
func handleNotStarted(ready Checker, cfg Config) echo.HandlerFunc {
	retryAfter := strconv.Itoa(int(cfg.RetryAfter.Seconds()))
	return func(c echo.Context) error {
		c.Response().Header().Set("Retry-After", retryAfter)
		reason := "not ready"
		if err := ready.Ready(c.Request().Context()); err != nil {
			reason = err.Error()
		}
		return echo.NewHTTPError(http.StatusServiceUnavailable, reason+", retry later")
	}
}
