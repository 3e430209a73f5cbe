package handlers

import (
	"log/slog"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oss2s3/oss2s3/handlers/intake"
	"github.com/oss2s3/oss2s3/metrics"
)

// addRoutes lists every endpoint of the gateway.
func addRoutes(e *echo.Echo, log *slog.Logger, m *metrics.Metrics, gatherer prometheus.Gatherer,
	in *intake.Intake, ready Checker, dlq DeadLetterQueue, cfg Config) {
	e.GET("/healthz", handleHealthz())
	e.GET("/readyz", handleReadyz(ready))
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})))
	e.POST("/v1/events/oss", handleOSSEvents(log, m, in, cfg))
	e.POST("/v1/events/eventbridge", handleEventBridge(log, m, in, cfg))
	e.POST("/v1/events/mns", handleMNS(log, m, in, cfg))
	e.POST("/v1/events/mns/:token", handleMNS(log, m, in, cfg))

	admin := e.Group("/v1", requireAdmin(cfg.AdminTokens))
	admin.GET("/dlq", handleDLQList(dlq))
	admin.POST("/dlq/redrive", handleDLQRedrive(dlq))
	admin.POST("/tasks/:task/reconcile", handleReconcileStart(cfg.Reconciler))
	admin.GET("/reconciles/:id", handleReconcileGet(cfg.Reconciler))
	admin.GET("/reconciles/:id/report", handleReconcileReport(cfg.Reconciler))
}
