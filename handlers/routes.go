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
	events EventSink, ready Checker, dlq DeadLetterQueue, cfg Config) {
	e.GET("/healthz", handleHealthz())
	e.GET("/readyz", handleReadyz(ready))
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})))
	e.POST("/v1/events/oss", handleOSSEvents(log, m, events, cfg))
	e.POST("/v1/events/eventbridge", handleEventBridge(log, m, events, cfg))
	e.POST("/v1/events/mns", handleMNS(log, m, events, cfg))
	e.POST("/v1/events/mns/:token", handleMNS(log, m, events, cfg))

	admin := e.Group("/v1", requireAdmin(cfg.AdminTokens))
	admin.GET("/dlq", handleDLQList(dlq))
	admin.POST("/dlq/redrive", handleDLQRedrive(dlq))
	admin.POST("/tasks/:task/reconcile", handleReconcileStart(cfg.Reconciler))
	admin.GET("/tasks", handleTasks(cfg.Tasks, cfg.ConfigStatus))
	admin.GET("/reconciles", handleReconcileList(cfg.Reconciler))
	admin.GET("/reconciles/:id", handleReconcileGet(cfg.Reconciler))
	admin.GET("/reconciles/:id/report", handleReconcileReport(cfg.Reconciler))
	addStatusPage(e, dlq, cfg)
}

// addStartingRoutes lists the endpoints of the gateway while JetStream is
// not ready yet (NewStarting): health and metrics as always, and 503 for
// every webhook (/v1/events/...) and admin route (the rest of /v1/...).
func addStartingRoutes(e *echo.Echo, gatherer prometheus.Gatherer, ready Checker, cfg Config) {
	e.GET("/healthz", handleHealthz())
	e.GET("/readyz", handleReadyz(ready))
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})))
	e.Any("/v1/*", handleNotStarted(ready, cfg))
	e.Any("/ui/*", handleNotStarted(ready, cfg))
}
