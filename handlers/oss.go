package handlers

import (
	"errors"
	"fmt"
	"log/slog"
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

// rejecter answers a refused request with its status and reason, logs it
// and counts it for source.
func rejecter(log *slog.Logger, m *metrics.Metrics, source string) func(c echo.Context, code int, n int, reason string) error {
	return func(c echo.Context, code int, n int, reason string) error {
		m.Events(source, metrics.EventRejected).Add(float64(max(n, 1)))
		log.Info("event request rejected", "source", source, "status", code, "reason", reason, "remote", c.RealIP())
		return echo.NewHTTPError(code, reason)
	}
}

// accept queues records and answers 202 with the counts, or 503.
func accept(c echo.Context, in *intake.Intake, source string, records []ossevent.Record, cfg Config) error {
	res, err := in.Accept(cfg.deadlines.context(), source, records)
	if err != nil {
		return unavailable(c, cfg, err)
	}
	// As c.Blob does, less a header lookup and allocation: net/http
	// copies the header map when the status is written, so the shared
	// value is never changed.
	w := c.Response()
	w.Header()[echo.HeaderContentType] = jsonContentType
	w.WriteHeader(http.StatusAccepted)
	_, err = w.Write(appendAccepted(make([]byte, 0, 96), res))
	return err
}

var jsonContentType = []string{echo.MIMEApplicationJSON}

// appendAccepted appends the JSON of a 202's body, as encoding/json writes
// it (TestAcceptedBodyIsTheJSONEncoding): echo's c.JSON, reflection and an
// encoder per answer, was 4% of the gateway's CPU at full rate.
func appendAccepted(b []byte, r EventsAccepted) []byte {
	b = append(b, `{"queued":`...)
	b = strconv.AppendInt(b, int64(r.Queued), 10)
	b = append(b, `,"duplicate":`...)
	b = strconv.AppendInt(b, int64(r.Duplicate), 10)
	b = append(b, `,"ignored":`...)
	b = strconv.AppendInt(b, int64(r.Ignored), 10)
	b = append(b, `,"unrouted":`...)
	b = strconv.AppendInt(b, int64(r.Unrouted), 10)
	return append(b, "}\n"...)
}

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
	reject := rejecter(log, m, metrics.SourceOSSWebhook)
	return func(c echo.Context) error {
		req := c.Request()
		body, herr := readBody(c, cfg, echo.MIMEApplicationJSON)
		if herr != nil {
			return reject(c, herr.Code, 0, herr.Message.(string))
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
		return accept(c, in, metrics.SourceOSSWebhook, doc.Events, cfg)
	}
}
