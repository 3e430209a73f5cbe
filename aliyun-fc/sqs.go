package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// Message formats of SQS mode.
const (
	// formatDTH is what the seed's Python function wrote, byte for byte:
	// json.dumps({'key': key, 'size': size}); Data Transfer Hub's workers
	// and the gateway's SQS ingester (with a task) read it.
	formatDTH = "dth"
	// formatEvent is one OSS record as a one-record OSS event document
	// ({"events":[record]}), which the gateway's SQS ingester routes like
	// any event (deletes included).
	formatEvent = "event"
)

const (
	// maxBatchEntries is SendMessageBatch's limit.
	maxBatchEntries = 10
	// maxBatchBytes is SQS's limit on the sum of a batch's bodies (and on
	// one message) with the default MaximumMessageSize.
	maxBatchBytes = 256 << 10
)

// sqsSender writes the records of an event document to an SQS queue.
type sqsSender struct {
	client   *sqs.Client
	queueURL string
	format   string
	budget   time.Duration
}

// sqsConfig is what newSQSSender needs.
type sqsConfig struct {
	queueURL, region, endpoint string
	accessKeyID, secretKey     string
	sessionToken               string
	format                     string
}

func newSQSSender(c sqsConfig, budget time.Duration) *sqsSender {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 5 * time.Second
	creds := aws.Credentials{AccessKeyID: c.accessKeyID, SecretAccessKey: c.secretKey, SessionToken: c.sessionToken, Source: "environment"}
	opts := sqs.Options{
		Region: c.region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		HTTPClient: &http.Client{Transport: tr},
		// The sender retries failed entries itself, within the
		// invocation's budget; the SDK's retryer would retry whole
		// batches on its own clock and quota.
		Retryer: aws.NopRetryer{},
	}
	if c.endpoint != "" {
		opts.BaseEndpoint = aws.String(c.endpoint)
	}
	return &sqsSender{client: sqs.New(opts), queueURL: c.queueURL, format: c.format, budget: budget}
}

// entry is one message to send: the record at index rec of the document.
type entry struct {
	rec  int
	key  string
	body string
}

// deliver sends one message per record (in format), in batches of up to
// ten, retrying the entries SQS failed until all are sent, one fails for
// good, or the budget leaves no room for another attempt.
func (s *sqsSender) deliver(ctx context.Context, body []byte, doc *ossevent.Document, requestID string, log *slog.Logger) outcome {
	ctx, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()
	deadline, _ := ctx.Deadline()

	pending, skipped, err := s.messages(body, doc, log)
	out := outcome{skipped: skipped}
	if err != nil {
		out.status, out.reason = http.StatusBadRequest, err.Error()
		return out
	}
	var permanent []string
	var last string
	for len(pending) > 0 {
		out.attempts++
		var retry []entry
		for _, batch := range batches(pending) {
			sent, again, failed, why := s.sendBatch(ctx, batch, log)
			out.sent += sent
			retry = append(retry, again...)
			permanent = append(permanent, failed...)
			if why != "" {
				last = why
			}
		}
		pending = retry
		if len(pending) == 0 {
			break
		}
		if ctx.Err() != nil {
			return s.gaveUp(ctx, out, pending, permanent, last, "")
		}
		wait := backoff(out.attempts)
		if left := time.Until(deadline); wait >= left {
			return s.gaveUp(ctx, out, pending, permanent, last,
				fmt.Sprintf("the next attempt in %v would not fit the %v left of the budget", wait.Round(time.Millisecond), left.Round(time.Millisecond)))
		}
		log.Warn("sqs entries failed, retrying", "attempt", out.attempts, "entries", len(pending), "error", last, "retry_in_ms", wait.Milliseconds())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return s.gaveUp(ctx, out, pending, permanent, last, "")
		}
	}
	out.failed = len(permanent)
	if len(permanent) > 0 {
		out.status = http.StatusBadGateway
		out.reason = fmt.Sprintf("%d of %d message(s) refused by SQS: %s", len(permanent), out.sent+len(permanent), strings.Join(permanent, "; "))
		return out
	}
	out.status = http.StatusOK
	return out
}

// gaveUp is the outcome when entries are still pending: the budget ran out
// (504) or FC went away.
func (s *sqsSender) gaveUp(ctx context.Context, out outcome, pending []entry, permanent []string, last, why string) outcome {
	out.failed = len(pending) + len(permanent)
	out.status = http.StatusGatewayTimeout
	switch {
	case why != "":
		out.reason = fmt.Sprintf("gave up after %d attempt(s) with %d message(s) unsent: %s; last: %s", out.attempts, len(pending), why, last)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		out.reason = fmt.Sprintf("invocation budget of %v exhausted after %d attempt(s) with %d message(s) unsent; last: %s", s.budget, out.attempts, len(pending), last)
	default:
		out.reason = fmt.Sprintf("invocation cancelled after %d attempt(s) with %d message(s) unsent; last: %s", out.attempts, len(pending), last)
	}
	if len(permanent) > 0 {
		out.status = http.StatusBadGateway
		out.reason += "; refused for good: " + strings.Join(permanent, "; ")
	}
	return out
}

// sendBatch makes one SendMessageBatch call. It returns how many entries
// were sent, the entries worth sending again, descriptions of the entries
// that failed for good, and the last error seen ("" if none).
func (s *sqsSender) sendBatch(ctx context.Context, batch []entry, log *slog.Logger) (int, []entry, []string, string) {
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queueURL)}
	byID := make(map[string]entry, len(batch))
	for _, e := range batch {
		id := strconv.Itoa(e.rec)
		byID[id] = e
		in.Entries = append(in.Entries, types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(e.body)})
	}
	res, err := s.client.SendMessageBatch(ctx, in)
	if err != nil {
		why := "SendMessageBatch: " + err.Error()
		if retryableSQS(err) {
			return 0, batch, nil, why
		}
		var failed []string
		for _, e := range batch {
			log.Error("sqs message not sent", "record", e.rec, "key", e.key, "error", err.Error())
			failed = append(failed, fmt.Sprintf("record %d (%s): %v", e.rec, e.key, err))
		}
		return 0, nil, failed, why
	}
	var again []entry
	var failed []string
	why := ""
	for _, f := range res.Failed {
		e, ok := byID[aws.ToString(f.Id)]
		if !ok {
			continue // not an ID we sent; the entry is counted below
		}
		delete(byID, aws.ToString(f.Id))
		why = fmt.Sprintf("entry %s: %s: %s", aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message))
		if f.SenderFault {
			log.Error("sqs message refused", "record", e.rec, "key", e.key, "code", aws.ToString(f.Code), "message", aws.ToString(f.Message))
			failed = append(failed, fmt.Sprintf("record %d (%s): %s: %s", e.rec, e.key, aws.ToString(f.Code), aws.ToString(f.Message)))
			continue
		}
		again = append(again, e)
	}
	sent := 0
	for _, ok := range res.Successful {
		if _, mine := byID[aws.ToString(ok.Id)]; mine {
			delete(byID, aws.ToString(ok.Id))
			sent++
		}
	}
	// An entry SQS reported neither way was not confirmed: send it again
	// (a duplicate at worst, which every consumer of the queue tolerates).
	for _, e := range byID {
		again = append(again, e)
		why = fmt.Sprintf("entry %d: SQS did not report it", e.rec)
	}
	return sent, again, failed, why
}

// retryableSQS says whether a failed request may succeed if sent again:
// no answer (network, timeout, the budget's deadline), 5xx and throttling
// do; other 4xx (bad credentials, no such queue, invalid request) do not.
func retryableSQS(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if _, throttle := retry.DefaultThrottleErrorCodes[ae.ErrorCode()]; throttle {
			return true
		}
		switch ae.ErrorCode() {
		case "RequestThrottled", "ThrottlingException", "ServiceUnavailable", "InternalError", "InternalFailure":
			return true
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		return re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == http.StatusTooManyRequests
	}
	return true // no answer from SQS
}

// messages turns the document into one message per record, in order. In
// dth format only records that create or change an object are sent: the
// format cannot say "deleted", and DTH's workers would try to copy it.
func (s *sqsSender) messages(body []byte, doc *ossevent.Document, log *slog.Logger) ([]entry, int, error) {
	var raw struct {
		Events []json.RawMessage `json:"events"`
	}
	if s.format == formatEvent {
		if err := json.Unmarshal(body, &raw); err != nil || len(raw.Events) != len(doc.Events) {
			return nil, 0, fmt.Errorf("re-read event document: %v", err)
		}
	}
	var out []entry
	skipped := 0
	for i, r := range doc.Events {
		key := r.OSS.Object.Key
		switch s.format {
		case formatDTH:
			if ossevent.KindOf(r.EventName) != ossevent.KindConverge {
				skipped++
				log.Info("record not sent: the dth format carries only created or changed objects", "record", i, "event", r.EventName, "key", key)
				continue
			}
			out = append(out, entry{rec: i, key: key, body: dthMessage(key, r.OSS.Object.Size)})
		default:
			var b bytes.Buffer
			b.WriteString(`{"events":[`)
			if err := json.Compact(&b, raw.Events[i]); err != nil {
				return nil, 0, fmt.Errorf("events[%d]: %w", i, err)
			}
			b.WriteString(`]}`)
			out = append(out, entry{rec: i, key: key, body: sqsSafe(b.String())})
		}
	}
	return out, skipped, nil
}

// sqsSafe escapes U+FFFE and U+FFFF, the only characters valid in a JSON
// text (raw, inside strings) that SQS refuses in a message body; the JSON
// means the same. (Other characters SQS refuses are control characters,
// which JSON escapes already, and surrogates, which UTF-8 cannot hold.)
func sqsSafe(s string) string {
	if !strings.ContainsAny(s, "\ufffe\uffff") {
		return s
	}
	return strings.NewReplacer("\ufffe", `\ufffe`, "\uffff", `\uffff`).Replace(s)
}

// batches splits entries into SendMessageBatch calls: at most ten entries
// and maxBatchBytes of bodies each. A single entry over the limit goes alone
// and SQS refuses it, which is reported.
func batches(entries []entry) [][]entry {
	var out [][]entry
	var cur []entry
	size := 0
	for _, e := range entries {
		if len(cur) > 0 && (len(cur) == maxBatchEntries || size+len(e.body) > maxBatchBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, e)
		size += len(e.body)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// dthMessage is json.dumps({'key': key, 'size': size}) as Python 3 writes
// it (", " and ": " separators, ensure_ascii): the seed's exact bytes.
func dthMessage(key string, size int64) string {
	var b strings.Builder
	b.WriteString(`{"key": "`)
	for _, r := range key {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r < 0x10000): // Python escapes all but " " to "~"
			fmt.Fprintf(&b, `\u%04x`, r)
		case r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(`", "size": `)
	b.WriteString(strconv.FormatInt(size, 10))
	b.WriteString(`}`)
	return b.String()
}

// regionOfQueueURL reads REGION from https://sqs.REGION.amazonaws.com/...
// (and the legacy REGION.queue.amazonaws.com); "" if the URL has neither.
func regionOfQueueURL(u string) string {
	rest, ok := strings.CutPrefix(u, "https://")
	if !ok {
		return ""
	}
	host, _, _ := strings.Cut(rest, "/")
	parts := strings.Split(host, ".")
	switch {
	case len(parts) >= 4 && parts[0] == "sqs" && parts[2] == "amazonaws":
		return parts[1]
	case len(parts) >= 4 && parts[1] == "queue" && parts[2] == "amazonaws":
		return parts[0]
	}
	return ""
}
