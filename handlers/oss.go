package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/oss2s3/oss2s3/handlers/intake"
	"github.com/oss2s3/oss2s3/handlers/ossevent"
	"github.com/oss2s3/oss2s3/handlers/signature"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// EventsAccepted is the body of a 202: what happened to the records.
type EventsAccepted = intake.Result

// authenticate checks the signature against the shared secrets, then each
// source's; it returns the source whose secret signed the request (nil for
// a shared secret).
func authenticate(header string, body []byte, cfg Config) (*WebhookSource, error) {
	now := time.Now()
	err := signature.ErrNoSecrets
	if len(cfg.WebhookSecrets) > 0 {
		if err = signature.Verify(header, body, cfg.WebhookSecrets, now, cfg.Tolerance); err == nil {
			return nil, nil
		}
	}
	for i := range cfg.WebhookSources {
		serr := signature.Verify(header, body, cfg.WebhookSources[i].Secrets, now, cfg.Tolerance)
		if serr == nil {
			return &cfg.WebhookSources[i], nil
		}
		if errors.Is(err, signature.ErrNoSecrets) {
			err = serr
		}
	}
	return nil, err
}

// unavailable answers 503 with Retry-After: JetStream could not store the
// jobs, so nothing is accepted and the sender should try again later.
func unavailable(c echo.Context, cfg Config, err error) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(cfg.RetryAfter.Seconds())))
	msg := "work queue unavailable, retry later"
	if !errors.Is(err, transfer.ErrQueueUnavailable) {
		msg = "could not queue events, retry later"
	}
	return echo.NewHTTPError(http.StatusServiceUnavailable, msg)
}

// handleOSSEvents receives the OSS trigger document ({"events":[...]}),
// signed with X-Oss2s3-Signature. It answers 202 only once JetStream has
// stored every job the document makes; any other answer means nothing new
// was accepted and the sender should fix the request (4xx) or send it
// again later (503).
func handleOSSEvents(log *slog.Logger, m *metrics.Metrics, in *intake.Intake, cfg Config) echo.HandlerFunc {
	reject := func(c echo.Context, code int, n int, reason string) error {
		m.EventsReceived.WithLabelValues(metrics.SourceOSSWebhook, metrics.EventRejected).Add(float64(max(n, 1)))
		log.Info("oss event document rejected", "status", code, "reason", reason, "remote", c.RealIP())
		return echo.NewHTTPError(code, reason)
	}
	return func(c echo.Context) error {
		req := c.Request()
		if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != echo.MIMEApplicationJSON {
				return reject(c, http.StatusUnsupportedMediaType, 0, fmt.Sprintf("content type %q: want application/json", ct))
			}
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, cfg.MaxBodyBytes+1))
		if err != nil {
			return reject(c, http.StatusBadRequest, 0, "reading body: "+err.Error())
		}
		if int64(len(body)) > cfg.MaxBodyBytes {
			return reject(c, http.StatusRequestEntityTooLarge, 0, fmt.Sprintf("body is larger than %d bytes", cfg.MaxBodyBytes))
		}
		sender, err := authenticate(req.Header.Get(signature.Header), body, cfg)
		if err != nil {
			return reject(c, http.StatusUnauthorized, 0, err.Error())
		}
		doc, err := ossevent.Parse(body)
		if err != nil {
			return reject(c, http.StatusBadRequest, 0, err.Error())
		}
		if sender != nil && len(sender.Buckets) > 0 {
			for i, r := range doc.Events {
				if !slices.Contains(sender.Buckets, r.OSS.Bucket.Name) {
					return reject(c, http.StatusForbidden, 0, fmt.Sprintf("events[%d]: source %q may not report bucket %q", i, sender.Name, r.OSS.Bucket.Name))
				}
			}
		}

		ctx, cancel := context.WithTimeout(req.Context(), cfg.PublishTimeout)
		defer cancel()
		res, err := in.Accept(ctx, metrics.SourceOSSWebhook, doc.Events)
		if err != nil {
			return unavailable(c, cfg, err)
		}
		log.Debug("oss events accepted", "queued", res.Queued, "duplicate", res.Duplicate, "ignored", res.Ignored, "unrouted", res.Unrouted)
		return c.JSON(http.StatusAccepted, res)
	}
}
