package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/oss2s3/oss2s3/metrics"
)

// EventSink takes the OSS events the webhook endpoints receive: it
// authenticates each request, parses its records and stores their jobs.
// source names the endpoint, as the metrics do: metrics.SourceOSSWebhook,
// SourceEventBridge or SourceMNS.
type EventSink interface {
	// Admit makes the checks that need only the headers (credentials
	// sent in a header, an endpoint that is off); a request it refuses
	// is refused before its body is read.
	Admit(source string, h http.Header) error
	// Deliver returns only once every job of the request is stored,
	// with the counts; else nothing new was accepted.
	Deliver(ctx context.Context, source string, d Delivery) (EventsAccepted, error)
}

// Delivery is what an EventSink needs of a webhook request.
type Delivery struct {
	Method     string
	RequestURI string // as sent: MNS signs it
	Header     http.Header
	Body       []byte
	Remote     string // the client, as the logs name it
}

// EventsAccepted is the body of a 202: what happened to the records.
type EventsAccepted struct {
	Queued    int `json:"queued"`    // new jobs stored in JetStream
	Duplicate int `json:"duplicate"` // jobs JetStream already held (the same event sent again, or by another path)
	Ignored   int `json:"ignored"`   // records that are not a change of an object (e.g. UploadPart)
	Unrouted  int `json:"unrouted"`  // records no task wants
}

// Refusal is an EventSink's error for a request it took nothing from: Why
// chooses the answer, Reason is what the sender reads. Any other error is
// answered 500.
type Refusal struct {
	Why    Why
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// Why says why a request was refused, and so how it is answered.
type Why int

const (
	Malformed       Why = iota + 1 // 400: the body is not an event document of the endpoint
	TooManyRecords                 // 413: more records than one request may carry
	Unauthenticated                // 401: credentials missing or wrong
	Forbidden                      // 403: the endpoint is off, the sender may not report that, or an MNS signature fails
	NotVerifiable                  // 500: the credentials could not be checked, our fault; send again later
	Unavailable                    // 503 with Retry-After: the jobs could not be stored; send again later
)

var refusalStatus = map[Why]int{
	Malformed:       http.StatusBadRequest,
	TooManyRecords:  http.StatusRequestEntityTooLarge,
	Unauthenticated: http.StatusUnauthorized,
	Forbidden:       http.StatusForbidden,
	NotVerifiable:   http.StatusInternalServerError,
	Unavailable:     http.StatusServiceUnavailable,
}

// handleOSSEvents receives the OSS trigger document ({"events":[...]}),
// signed with X-Oss2s3-Signature. It answers 202 only once JetStream has
// stored every job the document makes; any other answer means nothing new
// was accepted and the sender should fix the request (4xx) or send it
// again later (503).
func handleOSSEvents(log *slog.Logger, m *metrics.Metrics, sink EventSink, cfg Config) echo.HandlerFunc {
	ev := newEventEndpoint(log, m, sink, cfg, metrics.SourceOSSWebhook)
	return func(c echo.Context) error {
		if err := ev.admit(c); err != nil {
			return err
		}
		res, err := ev.deliver(c, echo.MIMEApplicationJSON)
		if err != nil {
			return err
		}
		return accepted(c, res)
	}
}

// handleEventBridge receives an EventBridge HTTP target's CloudEvents (one
// event, or a batch), authenticated as the EventBridge connection is: an
// API key in a header, or basic auth. 202 only once every job is stored.
func handleEventBridge(log *slog.Logger, m *metrics.Metrics, sink EventSink, cfg Config) echo.HandlerFunc {
	ev := newEventEndpoint(log, m, sink, cfg, metrics.SourceEventBridge)
	return func(c echo.Context) error {
		if err := ev.admit(c); err != nil {
			return err
		}
		res, err := ev.deliver(c, echo.MIMEApplicationJSON, "application/cloudevents+json", "application/cloudevents-batch+json")
		if err != nil {
			return err
		}
		return accepted(c, res)
	}
}

// handleMNS receives an MNS HTTP push subscription's notification, in the
// XML, JSON or SIMPLIFIED format, signed by MNS. 204 only once every job
// is stored; 403 for a bad signature. MNS's signing keys are weak (512-bit
// RSA), so an unguessable path token (mns.path_tokens) should be required
// as well.
func handleMNS(log *slog.Logger, m *metrics.Metrics, sink EventSink, cfg Config) echo.HandlerFunc {
	ev := newEventEndpoint(log, m, sink, cfg, metrics.SourceMNS)
	tokens := newTokenSet(cfg.MNSPathTokens)
	return func(c echo.Context) error {
		if err := ev.admit(c); err != nil {
			return err
		}
		// Before the body, so that without the token no request reaches
		// the body, the signature or a certificate download.
		if len(tokens) > 0 && !tokens.match(c.Param("token")) {
			return ev.reject(c, http.StatusForbidden, "unknown MNS endpoint path token")
		}
		if _, err := ev.deliver(c, echo.MIMEApplicationXML, echo.MIMETextXML, echo.MIMEApplicationJSON, echo.MIMETextPlain); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// eventEndpoint is what the event endpoints share: a request goes to the
// sink, and a refusal is answered, logged and counted for source.
type eventEndpoint struct {
	log        *slog.Logger
	m          *metrics.Metrics
	sink       EventSink
	cfg        Config
	source     string
	retryAfter string
}

func newEventEndpoint(log *slog.Logger, m *metrics.Metrics, sink EventSink, cfg Config, source string) *eventEndpoint {
	return &eventEndpoint{log: log, m: m, sink: sink, cfg: cfg, source: source, retryAfter: strconv.Itoa(int(cfg.RetryAfter.Seconds()))}
}

// admit asks the sink about the request's headers. An error is the
// answer to return.
func (ev *eventEndpoint) admit(c echo.Context) error {
	if err := ev.sink.Admit(ev.source, c.Request().Header); err != nil {
		return ev.refused(c, err)
	}
	return nil
}

// deliver reads a body of one of the media types and hands the request to
// the sink. An error is the answer to return.
func (ev *eventEndpoint) deliver(c echo.Context, mediaTypes ...string) (EventsAccepted, error) {
	body, herr := readBody(c, ev.cfg, mediaTypes...)
	if herr != nil {
		return EventsAccepted{}, ev.reject(c, herr.Code, herr.Message.(string))
	}
	req := c.Request()
	res, err := ev.sink.Deliver(req.Context(), ev.source, Delivery{
		Method: req.Method, RequestURI: req.RequestURI, Header: req.Header, Body: body, Remote: c.RealIP(),
	})
	if err != nil {
		return res, ev.refused(c, err)
	}
	return res, nil
}

// refused answers an error of the sink: a Refusal as its Why says, 503s
// with Retry-After (the intake counted and logged those), anything else
// as an internal error.
func (ev *eventEndpoint) refused(c echo.Context, err error) error {
	var r *Refusal
	if !errors.As(err, &r) {
		return err
	}
	if r.Why == Unavailable {
		c.Response().Header().Set("Retry-After", ev.retryAfter)
		return echo.NewHTTPError(http.StatusServiceUnavailable, r.Reason)
	}
	code, ok := refusalStatus[r.Why]
	if !ok {
		return err
	}
	return ev.reject(c, code, r.Reason)
}

// reject answers a refused request with its status and reason, logs it
// and counts it.
func (ev *eventEndpoint) reject(c echo.Context, code int, reason string) error {
	ev.m.Events(ev.source, metrics.EventRejected).Inc()
	ev.log.Info("event request rejected", "source", ev.source, "status", code, "reason", reason, "remote", c.RealIP())
	return echo.NewHTTPError(code, reason)
}

// accepted answers 202 with the counts.
func accepted(c echo.Context, res EventsAccepted) error {
	// As c.Blob does, less a header lookup and allocation: net/http
	// copies the header map when the status is written, so the shared
	// value is never changed.
	w := c.Response()
	w.Header()[echo.HeaderContentType] = jsonContentType
	w.WriteHeader(http.StatusAccepted)
	body := queuedOne
	if res != (EventsAccepted{Queued: 1}) {
		body = appendAccepted(make([]byte, 0, 96), res)
	}
	_, err := w.Write(body)
	return err
}

// queuedOne is the body of the most common 202 (one new event), made once.
var queuedOne = appendAccepted(nil, EventsAccepted{Queued: 1})

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
