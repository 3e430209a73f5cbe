package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest/cloudevents"
	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

// WebhookSource is a sender with its own secrets, allowed to report events
// of Buckets only (all buckets when empty): a leaked secret of one Function
// Compute function cannot inject events for another bucket.
type WebhookSource struct {
	Name    string
	Secrets []string
	Buckets []string
}

// Config is how the Receiver authenticates and bounds what it takes.
type Config struct {
	WebhookSecrets []string // HMAC secrets accepted on the OSS webhook from any sender; several at once for rotation
	WebhookSources []WebhookSource
	MaxRecords     int           // records (EventBridge events) one request may carry, on every endpoint
	Tolerance      time.Duration // how old (or new) a signature's timestamp may be
	PublishTimeout time.Duration // how long to wait for JetStream to store a request's jobs
	EventBridge    cloudevents.Auth
	MNS            *mns.Verifier // nil: the MNS endpoint is off
}

// DefaultMaxRecords is MaxRecords when it is not set: OSS sends one record
// per event, a batch from EventBridge holds a few.
const DefaultMaxRecords = 100

func (c Config) withDefaults() Config {
	if c.Tolerance <= 0 {
		c.Tolerance = signature.DefaultTolerance
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	return c
}

// Request is what the Receiver needs of a webhook request.
type Request struct {
	Method     string
	RequestURI string // as sent: MNS signs it
	Header     http.Header
	Body       []byte
	Remote     string // the client, as the logs name it
}

// Why says why a request was refused.
type Why int

const (
	// Malformed: the body is not a valid event document of its endpoint.
	Malformed Why = iota + 1
	// TooManyRecords: the document has more records than MaxRecords.
	TooManyRecords
	// Unauthenticated: the credentials (signature, API key, password)
	// are missing or do not match.
	Unauthenticated
	// Forbidden: the endpoint is off, the sender may not report what it
	// reported, or an MNS signature does not verify (MNS expects a 403).
	Forbidden
	// NotVerifiable: the credentials could not be checked, our fault (an
	// MNS signing certificate that could not be fetched); the sender
	// should send again later.
	NotVerifiable
	// Unavailable: the jobs could not be stored; send again later. The
	// repeats of jobs that did get in are recognised as duplicates.
	Unavailable
)

// Refusal is the error for a request the Receiver took nothing from.
type Refusal struct {
	Why    Why
	Reason string // for the sender: what was wrong, nothing secret or about our network
	Err    error  // the cause, if it is not all in Reason
}

func (r *Refusal) Error() string { return r.Reason }

func (r *Refusal) Unwrap() error { return r.Err }

func refuse(why Why, reason string) *Refusal { return &Refusal{Why: why, Reason: reason} }

// Receiver takes the requests of the gateway's event endpoints, one per
// source: metrics.SourceOSSWebhook (the OSS trigger document, signed with
// our HMAC), metrics.SourceEventBridge (CloudEvents) and metrics.SourceMNS
// (an MNS push). Their records go to the Intake.
type Receiver struct {
	in        *Intake
	cfg       Config
	deadlines *publishDeadlines // of PublishTimeout
	replays   *replays          // signed webhook requests accepted, for Tolerance
	// mnsReplays: MNS pushes accepted, for MNS.DateWindow(); nil when
	// MNS is off.
	mnsReplays *replays
}

// NewReceiver returns a Receiver that queues through in.
func NewReceiver(in *Intake, cfg Config) *Receiver {
	cfg = cfg.withDefaults()
	rc := &Receiver{in: in, cfg: cfg, deadlines: newPublishDeadlines(cfg.PublishTimeout), replays: newReplays(cfg.Tolerance)}
	if cfg.MNS != nil {
		rc.mnsReplays = newReplays(cfg.MNS.DateWindow())
	}
	return rc
}

// With returns a Receiver for a new configuration (a reload: other
// secrets, other routes in in) that remembers the requests rc accepted,
// so that one sent again after the reload is still a duplicate. What the
// memory depends on is kept only when it did not change: the tolerance,
// the MNS date window, the publish timeout.
func (rc *Receiver) With(in *Intake, cfg Config) *Receiver {
	next := NewReceiver(in, cfg)
	if next.cfg.Tolerance == rc.cfg.Tolerance {
		next.replays = rc.replays
	}
	if next.cfg.PublishTimeout == rc.cfg.PublishTimeout {
		next.deadlines = rc.deadlines
	}
	if next.mnsReplays != nil && rc.mnsReplays != nil && next.cfg.MNS.DateWindow() == rc.cfg.MNS.DateWindow() {
		next.mnsReplays = rc.mnsReplays
	}
	return next
}

// Admit makes the checks of a request to source that need only its
// headers, so that a request they refuse is refused before its body is
// read: the EventBridge credentials, and whether the MNS endpoint is on.
// The error is a *Refusal. Deliver makes them again.
func (rc *Receiver) Admit(source string, h http.Header) error {
	switch source {
	case metrics.SourceEventBridge:
		if err := rc.cfg.EventBridge.Check(h); err != nil {
			if errors.Is(err, cloudevents.ErrNoAuthConfigured) {
				return refuse(Forbidden, "EventBridge endpoint disabled: configure eventbridge.api_keys or eventbridge.basic_users")
			}
			return &Refusal{Why: Unauthenticated, Reason: err.Error(), Err: err}
		}
	case metrics.SourceMNS:
		if rc.cfg.MNS == nil {
			return refuse(Forbidden, "MNS endpoint disabled: set mns.enabled in the configuration")
		}
	}
	return nil
}

// Deliver authenticates a request to source, parses its records and
// queues their jobs. It returns only once JetStream has stored every job
// (the counts), or with a *Refusal: then nothing new was accepted, and the
// sender should fix the request or (Unavailable, NotVerifiable) send it
// again later. A signed request accepted before is counted as duplicates
// without queueing anything.
func (rc *Receiver) Deliver(ctx context.Context, source string, req Request) (Result, error) {
	if err := rc.Admit(source, req.Header); err != nil {
		return Result{}, err
	}
	switch source {
	case metrics.SourceOSSWebhook:
		return rc.webhook(req)
	case metrics.SourceEventBridge:
		return rc.eventBridge(req)
	case metrics.SourceMNS:
		return rc.mns(ctx, req)
	}
	return Result{}, fmt.Errorf("ingest: no endpoint receives events of source %q", source)
}

// webhook takes the OSS trigger document ({"events":[...]}), signed with
// X-Oss2s3-Signature.
func (rc *Receiver) webhook(req Request) (Result, error) {
	sig := req.Header.Get(signature.Header)
	sender, err := rc.authenticate(sig, req.Body)
	if err != nil {
		return Result{}, &Refusal{Why: Unauthenticated, Reason: err.Error(), Err: err}
	}
	doc, err := ossevent.ParseMax(req.Body, rc.cfg.MaxRecords)
	if err != nil {
		return Result{}, parseRefusal(err)
	}
	if sender != nil && len(sender.Buckets) > 0 {
		for i, r := range doc.Events {
			if !slices.Contains(sender.Buckets, r.OSS.Bucket.Name) {
				return Result{}, refuse(Forbidden, fmt.Sprintf("events[%d]: source %q may not report bucket %q", i, sender.Name, r.OSS.Bucket.Name))
			}
		}
	}
	// authenticate accepted the header, so it has a t=.
	at, _ := signature.Timestamp(sig)
	key := rc.replays.key(at, req.Body)
	return rc.accept(metrics.SourceOSSWebhook, doc.Events, rc.replays, &key)
}

// authenticate checks the signature against the shared secrets, then each
// source's; it returns the source whose secret signed the request (nil for
// a shared secret).
func (rc *Receiver) authenticate(header string, body []byte) (*WebhookSource, error) {
	cfg := &rc.cfg
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

// eventBridge takes an EventBridge HTTP target's CloudEvents (one event,
// or a batch), authenticated as the EventBridge connection is (Admit).
func (rc *Receiver) eventBridge(req Request) (Result, error) {
	events, err := cloudevents.ParseBatchMax(req.Body, rc.cfg.MaxRecords)
	if err != nil {
		return Result{}, parseRefusal(err)
	}
	records := make([]ossevent.Record, len(events))
	for i, ev := range events {
		records[i] = ev.Record
	}
	// No replay memory: EventBridge's credentials are the same on every
	// request, nothing in one request expires (see SECURITY.md).
	return rc.accept(metrics.SourceEventBridge, records, nil, nil)
}

// mns takes an MNS HTTP push subscription's notification. The RSA-SHA1
// signature is checked with the certificate MNS names (fetched only from
// the allowed hosts, and cached); the notification may be XML, JSON or
// SIMPLIFIED, the OSS document inside plain or Base64.
func (rc *Receiver) mns(ctx context.Context, req Request) (Result, error) {
	// MNS wants an answer within 5 s.
	vctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	if err := rc.cfg.MNS.Verify(vctx, req.Method, req.RequestURI, req.Header, req.Body); err != nil {
		if errors.Is(err, mns.ErrCertFetch) {
			// Ours to fix (or the network's): MNS pushes again later.
			// The detail (URLs, resolver addresses) is for the log
			// only: it is about our network, not the request.
			rc.in.log.Warn("MNS signing certificate not available", "err", err, "remote", req.Remote)
			return Result{}, &Refusal{Why: NotVerifiable, Reason: "MNS signing certificate not available, push again later", Err: err}
		}
		return Result{}, &Refusal{Why: Forbidden, Reason: err.Error(), Err: err}
	}
	doc, err := mns.ParseNotificationMax(req.Body, req.Header.Get("Content-Type"), rc.cfg.MaxRecords)
	if err != nil {
		return Result{}, parseRefusal(err)
	}
	// Verify checked the Date: the push is known by it and its signature
	// until the Date falls out of the window.
	at, _ := mns.SignedAt(req.Header)
	key := rc.mnsReplays.key(at.Unix(), []byte(req.Header.Get("Authorization")))
	return rc.accept(metrics.SourceMNS, doc.Events, rc.mnsReplays, &key)
}

// parseRefusal is the refusal of a document the parsers refused.
func parseRefusal(err error) *Refusal {
	why := Malformed
	if errors.Is(err, ossevent.ErrTooManyRecords) {
		why = TooManyRecords
	}
	return &Refusal{Why: why, Reason: err.Error(), Err: err}
}

// accept queues records. A signed request (replay not nil) that was
// accepted before is counted as duplicates without publishing; one
// accepted now is remembered.
func (rc *Receiver) accept(source string, records []ossevent.Record, replays *replays, replay *replayKey) (Result, error) {
	if replay != nil && replays.seen(*replay) {
		return rc.in.Duplicates(source, records), nil
	}
	res, err := rc.in.Accept(rc.deadlines.context(), source, records)
	if err != nil {
		return res, unavailable(err)
	}
	if replay != nil {
		replays.add(*replay, time.Now())
	}
	return res, nil
}

// unavailable is the refusal when JetStream could not store the jobs:
// nothing is accepted and the sender should try again later.
func unavailable(err error) *Refusal {
	msg := "work queue unavailable, retry later"
	if !errors.Is(err, transfer.ErrQueueUnavailable) {
		msg = "could not queue events, retry later"
	}
	return &Refusal{Why: Unavailable, Reason: msg, Err: err}
}
