// Package ingestsink is ingest's Receiver as the EventSink that handlers
// declares: the webhooks' requests go to it, and its refusals come back as
// the handlers.Refusal that chooses the HTTP answer. It lives apart from
// handlers so that the HTTP package links none of ingest's dependencies
// (JetStream, the SDKs); server wires it in, and the handlers' tests run
// whole endpoints through it.
package ingestsink

import (
	"context"
	"errors"
	"net/http"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/transfer/ingest"
)

// Sink is an ingest.Receiver as a handlers.EventSink.
type Sink struct{ r *ingest.Receiver }

var _ handlers.EventSink = Sink{}

// New returns r as a handlers.EventSink.
func New(r *ingest.Receiver) Sink { return Sink{r: r} }

// Admit checks a request's headers before its body is read.
func (s Sink) Admit(source string, h http.Header) error {
	return Refusal(s.r.Admit(source, h))
}

// Deliver hands a request's body to the Receiver.
func (s Sink) Deliver(ctx context.Context, source string, d handlers.Delivery) (handlers.EventsAccepted, error) {
	res, err := s.r.Deliver(ctx, source, ingest.Request(d))
	return handlers.EventsAccepted(res), Refusal(err)
}

// Whys says how the gateway answers each refusal of the Receiver.
var Whys = map[ingest.Why]handlers.Why{
	ingest.Malformed:       handlers.Malformed,
	ingest.TooManyRecords:  handlers.TooManyRecords,
	ingest.Unauthenticated: handlers.Unauthenticated,
	ingest.Forbidden:       handlers.Forbidden,
	ingest.NotVerifiable:   handlers.NotVerifiable,
	ingest.Unavailable:     handlers.Unavailable,
}

// Refusal is err as handlers reads it: an ingest.Refusal becomes the
// handlers.Refusal that chooses the answer; anything else is a 500.
func Refusal(err error) error {
	if err == nil {
		return nil // before errors.As, whose target would cost an allocation
	}
	var r *ingest.Refusal
	if !errors.As(err, &r) {
		return err
	}
	why, ok := Whys[r.Why]
	if !ok {
		return err
	}
	return &handlers.Refusal{Why: why, Reason: r.Reason}
}
