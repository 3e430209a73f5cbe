package handlers

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/oss2s3/oss2s3/handlers/cloudevents"
	"github.com/oss2s3/oss2s3/handlers/intake"
	"github.com/oss2s3/oss2s3/handlers/ossevent"
	"github.com/oss2s3/oss2s3/metrics"
)

// handleEventBridge receives an EventBridge HTTP target's CloudEvents (one
// event, or a batch), authenticated as the EventBridge connection is: an
// API key in a header, or basic auth. 202 only once every job is stored.
func handleEventBridge(log *slog.Logger, m *metrics.Metrics, in *intake.Intake, cfg Config) echo.HandlerFunc {
	reject := rejecter(log, m, metrics.SourceEventBridge)
	return func(c echo.Context) error {
		if err := cfg.EventBridge.Check(c.Request().Header); err != nil {
			if errors.Is(err, cloudevents.ErrNoAuthConfigured) {
				return reject(c, http.StatusForbidden, 0, "EventBridge endpoint disabled: configure eventbridge.api_keys or eventbridge.basic_users")
			}
			return reject(c, http.StatusUnauthorized, 0, err.Error())
		}
		body, herr := readBody(c, cfg, echo.MIMEApplicationJSON, "application/cloudevents+json", "application/cloudevents-batch+json")
		if herr != nil {
			return reject(c, herr.Code, 0, herr.Message.(string))
		}
		events, err := cloudevents.ParseBatch(body)
		if err != nil {
			return reject(c, http.StatusBadRequest, 0, err.Error())
		}
		records := make([]ossevent.Record, len(events))
		for i, ev := range events {
			records[i] = ev.Record
		}
		return accept(c, in, metrics.SourceEventBridge, records, cfg)
	}
}
