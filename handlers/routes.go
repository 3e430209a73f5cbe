package handlers

import (
	"log/slog"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oss2s3/oss2s3/metrics"
)

// addRoutes lists every endpoint of the gateway.
func addRoutes(e *echo.Echo, log *slog.Logger, m *metrics.Metrics, gatherer prometheus.Gatherer,
	pub Publisher, router Router, ready Checker, dlq DeadLetterQueue, cfg Config) {
	e.GET("/healthz", handleHealthz())
	e.GET("/readyz", handleReadyz(ready))
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})))
	e.POST("/v1/events/oss", handleOSSEvents(log, m, pub, router, cfg))

	admin := e.Group("/v1", requireAdmin(cfg.AdminTokens))
	admin.GET("/dlq", handleDLQList(dlq))
	admin.POST("/dlq/redrive", handleDLQRedrive(dlq))
}
