package ossemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

// Webhook delivery mimics an OSS trigger: after each successful write the
// emulator POSTs an {"events":[record]} document, signed with
// signature.Sign, to the configured URL. Deliveries are asynchronous but
// ordered: one goroutine sends them in the order the writes happened.
const (
	webhookRetries        = 3 // after the first attempt
	webhookBackoff        = 50 * time.Millisecond
	webhookMaxBackoff     = 2 * time.Second
	webhookAttemptTimeout = 10 * time.Second
)

// ErrWebhookAbandoned is recorded for deliveries still queued when the
// server closed.
var ErrWebhookAbandoned = errors.New("ossemu: webhook delivery abandoned: server closed")

// SetWebhook makes every later successful write post an OSS trigger
// document to url, signed with secret. An empty url disables webhooks;
// deliveries already queued still go to the URL they were queued for.
func (s *Server) SetWebhook(url, secret string) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.url, s.hooks.secret = url, secret
}

// WaitWebhooks blocks until every queued delivery is done (delivered, or
// given up and recorded in WebhookErrors), or ctx ends.
func (s *Server) WaitWebhooks(ctx context.Context) error {
	h := s.hooks
	h.mu.Lock()
	if h.pending == 0 {
		h.mu.Unlock()
		return nil
	}
	idle := h.idle
	h.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WebhookErrors returns the deliveries that finally failed, oldest first.
func (s *Server) WebhookErrors() []error {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	return append([]error(nil), s.hooks.errs...)
}

// emitPut queues the event for a write that stored o, replacing old.
func (s *Server) emitPut(name, bucket, requestID string, o, old *object) {
	rec := ossevent.NewRecord(name, s.region, bucket, o.info.Key, o.info.ETag, o.info.Size, o.info.ContentType, s.now())
	rec.OSS.Object.DeltaSize = o.info.Size
	if old != nil {
		rec.OSS.Object.DeltaSize -= old.info.Size
	}
	if rec.OSS.Object.ObjectMeta != nil && len(o.info.Meta) > 0 {
		rec.OSS.Object.ObjectMeta.UserMeta = maps.Clone(o.info.Meta)
	}
	if requestID != "" {
		rec.ResponseElements["requestId"] = requestID
	}
	s.hooks.enqueue(rec)
}

// emitRemove queues the event for a delete of key; old is the object
// removed, nil if there was none.
func (s *Server) emitRemove(name, bucket, requestID, key string, old *object) {
	etag, delta := "", int64(0)
	if old != nil {
		etag, delta = old.info.ETag, -old.info.Size
	}
	rec := ossevent.NewRecord(name, s.region, bucket, key, etag, 0, "", s.now())
	rec.OSS.Object.DeltaSize = delta
	rec.OSS.Object.ObjectMeta = nil
	if requestID != "" {
		rec.ResponseElements["requestId"] = requestID
	}
	s.hooks.enqueue(rec)
}

type delivery struct {
	url, secret string
	body        []byte
	what        string // event name and bucket/key, for errors
}

type webhooks struct {
	log    *slog.Logger
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	url     string
	secret  string
	queue   []delivery
	pending int           // queued + in flight
	idle    chan struct{} // closed when pending drops to 0
	wake    chan struct{}
	retries int
	errs    []error
	closed  bool
}

func newWebhooks(log *slog.Logger, retries int) *webhooks {
	if retries <= 0 {
		retries = webhookRetries
	}
	ctx, cancel := context.WithCancel(context.Background())
	// A transport of its own, so that Close can drop its idle connections.
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment}
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		transport = dt.Clone()
	}
	h := &webhooks{
		log:     log,
		client:  &http.Client{Transport: transport},
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		retries: retries,
	}
	go h.run()
	return h
}

func (h *webhooks) enqueue(rec ossevent.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.url == "" || h.closed {
		return
	}
	body, err := json.Marshal(ossevent.Document{Events: []ossevent.Record{rec}})
	if err != nil {
		h.errs = append(h.errs, fmt.Errorf("webhook %s: encode: %w", rec.EventName, err))
		return
	}
	if h.pending == 0 {
		h.idle = make(chan struct{})
	}
	h.pending++
	h.queue = append(h.queue, delivery{url: h.url, secret: h.secret, body: body,
		what: rec.EventName + " " + rec.OSS.Bucket.Name + "/" + rec.OSS.Object.Key})
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *webhooks) run() {
	defer close(h.done)
	for {
		h.mu.Lock()
		if len(h.queue) == 0 {
			h.mu.Unlock()
			select {
			case <-h.wake:
				continue
			case <-h.ctx.Done():
				return
			}
		}
		d := h.queue[0]
		h.queue[0] = delivery{}
		h.queue = h.queue[1:]
		h.mu.Unlock()

		err := h.deliver(d)

		h.mu.Lock()
		if err != nil {
			err = fmt.Errorf("webhook %s to %s: %w", d.what, d.url, err)
			h.errs = append(h.errs, err)
			h.log.Warn("oss webhook delivery failed", "error", err)
		}
		h.done1()
		h.mu.Unlock()
	}
}

// done1 marks one delivery finished; callers hold h.mu.
func (h *webhooks) done1() {
	h.pending--
	if h.pending == 0 {
		close(h.idle)
	}
}

// deliver sends d, retrying on transport errors and non-2xx answers.
func (h *webhooks) deliver(d delivery) error {
	var err error
	backoff := webhookBackoff
	for attempt := 0; attempt <= h.retries; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(backoff):
			case <-h.ctx.Done():
				return fmt.Errorf("%w (last error: %v)", ErrWebhookAbandoned, err)
			}
			backoff = min(2*backoff, webhookMaxBackoff)
		}
		if err = h.post(d); err == nil {
			return nil
		}
		if h.ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %v)", ErrWebhookAbandoned, err)
		}
	}
	return fmt.Errorf("gave up after %d attempts: %w", h.retries+1, err)
}

func (h *webhooks) post(d delivery) error {
	ctx, cancel := context.WithTimeout(h.ctx, webhookAttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(signature.Header, signature.Sign(d.secret, time.Now(), d.body))
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// close stops delivery: the delivery in flight is cancelled and the queued
// ones are recorded as abandoned.
func (h *webhooks) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	<-h.done
	h.mu.Lock()
	for _, d := range h.queue {
		h.errs = append(h.errs, fmt.Errorf("webhook %s to %s: %w", d.what, d.url, ErrWebhookAbandoned))
		h.done1()
	}
	h.queue = nil
	h.mu.Unlock()
	h.client.CloseIdleConnections()
}
