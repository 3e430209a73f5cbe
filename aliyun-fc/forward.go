package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

const (
	// maxGatewayBody bounds how much of the gateway's answer is kept.
	maxGatewayBody = 64 << 10
	// backoffBase and backoffMax shape the wait between attempts.
	backoffBase = 100 * time.Millisecond
	backoffMax  = 2 * time.Second
)

// forwarder posts event documents to the gateway, retrying transient
// failures within a time budget per invocation.
type forwarder struct {
	url    string
	secret string
	budget time.Duration
	client *http.Client
	now    func() time.Time
}

func newForwarder(url, secret string, budget time.Duration) *forwarder {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A gateway that takes seconds to accept a connection is down: fail the
	// attempt and leave budget for the next one.
	tr.DialContext = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 5 * time.Second
	return &forwarder{
		url:    url,
		secret: secret,
		budget: budget,
		client: &http.Client{
			Transport: tr,
			// A redirect would be followed without the signature's
			// guarantees (and a 301/302 turns POST into GET): treat it as
			// the gateway's final answer.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now: time.Now,
	}
}

// outcome is what one invocation's delivery came to.
type outcome struct {
	status        int    // answer to FC: 200, 400, 502 or 504
	reason        string // why it failed; "" on success
	gatewayStatus int    // webhook: the gateway's last status, 0 if it never answered
	gatewayBody   []byte // webhook: the gateway's last answer, at most maxGatewayBody
	attempts      int    // webhook: POSTs; sqs: rounds of SendMessageBatch calls
	sent          int    // sqs: messages SQS accepted
	failed        int    // sqs: messages not sent
	skipped       int    // sqs: records the format does not carry
}

// deliverer takes a checked event document where it must go: the gateway
// (webhook mode) or an SQS queue (sqs mode).
type deliverer interface {
	deliver(ctx context.Context, body []byte, doc *ossevent.Document, requestID string, log *slog.Logger) outcome
}

// deliver posts the document's exact bytes, all records in one request.
func (f *forwarder) deliver(ctx context.Context, body []byte, _ *ossevent.Document, requestID string, log *slog.Logger) outcome {
	return f.forward(ctx, body, requestID, log)
}

// attempt is the result of one POST to the gateway.
type attempt struct {
	status     int
	body       []byte
	retryAfter time.Duration // from a Retry-After header; -1 if none
	err        error         // transport error; nil if the gateway answered
}

// forward posts body to the gateway until it answers 2xx, answers with a
// permanent failure, or the budget leaves no room for another attempt.
func (f *forwarder) forward(ctx context.Context, body []byte, requestID string, log *slog.Logger) outcome {
	ctx, cancel := context.WithTimeout(ctx, f.budget)
	defer cancel()
	deadline, _ := ctx.Deadline()

	var out outcome
	for {
		out.attempts++
		a := f.send(ctx, body, requestID)
		if a.err == nil {
			out.gatewayStatus, out.gatewayBody = a.status, a.body
		}
		switch {
		case a.err == nil && a.status >= 200 && a.status < 300:
			out.status = http.StatusOK
			return out
		case a.err == nil && !retryable(a.status):
			out.status = http.StatusBadGateway
			out.reason = fmt.Sprintf("gateway rejected the event: %s%s", statusText(a.status), snippet(a.body))
			return out
		}

		last := describe(a)
		if ctx.Err() != nil {
			return f.stopped(ctx, out, last)
		}
		wait := backoff(out.attempts)
		if a.retryAfter > wait {
			wait = a.retryAfter
		}
		if left := time.Until(deadline); wait >= left {
			status := http.StatusBadGateway
			if isTimeout(a.err) {
				status = http.StatusGatewayTimeout
			}
			out.status = status
			out.reason = fmt.Sprintf("gave up after %d attempt(s): the next in %v would not fit the %v left of the budget; last: %s",
				out.attempts, wait.Round(time.Millisecond), left.Round(time.Millisecond), last)
			return out
		}
		log.Warn("gateway attempt failed, retrying", "attempt", out.attempts, "error", last, "retry_in_ms", wait.Milliseconds())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return f.stopped(ctx, out, last)
		}
	}
}

// stopped is the outcome when ctx ended: the budget ran out, or FC went away.
func (f *forwarder) stopped(ctx context.Context, out outcome, last string) outcome {
	out.status = http.StatusGatewayTimeout
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		out.reason = fmt.Sprintf("invocation budget of %v exhausted after %d attempt(s); last: %s", f.budget, out.attempts, last)
	} else {
		out.reason = fmt.Sprintf("invocation cancelled after %d attempt(s); last: %s", out.attempts, last)
	}
	return out
}

// send makes one attempt. The signature is computed now, so that every
// retry carries a fresh timestamp.
func (f *forwarder) send(ctx context.Context, body []byte, requestID string) attempt {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return attempt{err: err, retryAfter: -1}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "oss2s3-aliyun-fc")
	req.Header.Set(signature.Header, signature.Sign(f.secret, f.now(), body))
	if requestID != "" {
		req.Header.Set("X-Fc-Request-Id", requestID)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return attempt{err: err, retryAfter: -1}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxGatewayBody))
	if err != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// The gateway said yes; a broken body does not change that.
		err = nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxGatewayBody))
	a := attempt{status: resp.StatusCode, body: b, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), f.now())}
	if err != nil {
		// Half an answer from a failing gateway: try again.
		a.err = fmt.Errorf("read gateway answer (%s): %w", statusText(resp.StatusCode), err)
	}
	return a
}

// retryable says whether a gateway status may succeed if sent again.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// backoff is the wait before attempt n+1: exponential, capped, with equal
// jitter so that instances retrying together spread out.
func backoff(n int) time.Duration {
	d := backoffMax
	if n < 16 {
		d = min(backoffBase<<(n-1), backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads seconds or an HTTP date; -1 if absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func describe(a attempt) string {
	if a.err != nil {
		return a.err.Error()
	}
	return "gateway answered " + statusText(a.status) + snippet(a.body)
}

func statusText(status int) string {
	return strconv.Itoa(status) + " " + http.StatusText(status)
}

// snippet is the start of the gateway's answer, for a reason string.
func snippet(b []byte) string {
	const n = 512
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > n {
		s = s[:n] + "..."
	}
	return ": " + s
}
