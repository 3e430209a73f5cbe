package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/oss2s3/oss2s3/handlers/ossevent"
	"github.com/oss2s3/oss2s3/handlers/signature"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// EventsAccepted is the body of a 202: what happened to the document's records.
type EventsAccepted struct {
	Queued    int `json:"queued"`    // new jobs stored in JetStream
	Duplicate int `json:"duplicate"` // jobs JetStream already held (a re-sent event)
	Ignored   int `json:"ignored"`   // records that are not a change of an object (e.g. UploadPart)
	Unrouted  int `json:"unrouted"`  // records no task wants
}

// handleOSSEvents receives the OSS trigger document ({"events":[...]}),
// signed with X-Oss2s3-Signature. It answers 202 only once JetStream has
// stored every job the document makes; any other answer means nothing new
// was accepted and the sender should fix the request (4xx) or send it
// again later (503).
func handleOSSEvents(log *slog.Logger, m *metrics.Metrics, pub Publisher, router Router, cfg Config) echo.HandlerFunc {
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
		if err := signature.Verify(req.Header.Get(signature.Header), body, cfg.WebhookSecrets, time.Now(), cfg.Tolerance); err != nil {
			return reject(c, http.StatusUnauthorized, 0, err.Error())
		}
		doc, err := ossevent.Parse(body)
		if err != nil {
			return reject(c, http.StatusBadRequest, 0, err.Error())
		}

		var res EventsAccepted
		var jobs []transfer.Job
		for i := range doc.Events {
			r := &doc.Events[i]
			kind := ossevent.KindOf(r.EventName)
			if kind == ossevent.KindIgnore {
				res.Ignored++
				continue
			}
			tasks := router.Route(r.OSS.Bucket.Name, r.OSS.Object.Key)
			if len(tasks) == 0 {
				res.Unrouted++
				continue
			}
			for _, task := range tasks {
				jobs = append(jobs, transfer.Job{
					Task: task, Bucket: r.OSS.Bucket.Name, Key: r.OSS.Object.Key, ETag: r.ETag(),
					Size: r.OSS.Object.Size, Event: r.EventName, Kind: string(kind),
					Origin: metrics.SourceOSSWebhook, EventTime: r.Time(),
				})
			}
		}
		m.EventsReceived.WithLabelValues(metrics.SourceOSSWebhook, metrics.EventIgnored).Add(float64(res.Ignored))
		m.EventsReceived.WithLabelValues(metrics.SourceOSSWebhook, metrics.EventUnrouted).Add(float64(res.Unrouted))
		if len(jobs) > 0 {
			ctx, cancel := context.WithTimeout(req.Context(), cfg.PublishTimeout)
			defer cancel()
			pr, err := pub.Publish(ctx, jobs)
			if err != nil {
				m.EventsReceived.WithLabelValues(metrics.SourceOSSWebhook, metrics.EventFailed).Add(float64(len(jobs)))
				log.Warn("could not queue oss events", "jobs", len(jobs), "err", err)
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(cfg.RetryAfter.Seconds())))
				msg := "work queue unavailable, retry later"
				if !errors.Is(err, transfer.ErrQueueUnavailable) {
					msg = "could not queue events, retry later"
				}
				return echo.NewHTTPError(http.StatusServiceUnavailable, msg)
			}
			res.Queued, res.Duplicate = pr.Queued, pr.Duplicate
			for task, n := range pr.QueuedByTask {
				m.JobsQueued.WithLabelValues(task).Add(float64(n))
			}
			m.EventsReceived.WithLabelValues(metrics.SourceOSSWebhook, metrics.EventQueued).Add(float64(pr.Queued))
			m.EventsReceived.WithLabelValues(metrics.SourceOSSWebhook, metrics.EventDuplicate).Add(float64(pr.Duplicate))
		}
		log.Debug("oss events accepted", "queued", res.Queued, "duplicate", res.Duplicate, "ignored", res.Ignored, "unrouted", res.Unrouted)
		return c.JSON(http.StatusAccepted, res)
	}
}
