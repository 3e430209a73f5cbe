package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest"
	"github.com/oss2s3/oss2s3/transfer/ingest/cloudevents"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

// stored keeps every job it is given.
type stored struct{ jobs []transfer.Job }

func (s *stored) Publish(_ context.Context, jobs []transfer.Job) (transfer.PublishResult, error) {
	s.jobs = append(s.jobs, jobs...)
	return transfer.PublishResult{Queued: len(jobs)}, nil
}

func newReceiver(t *testing.T, cfg ingest.Config) (*ingest.Receiver, *stored) {
	t.Helper()
	q := &stored{}
	router := transfer.NewRouter([]*transfer.Task{{Name: "all", Source: transfer.SourceConfig{Bucket: "b"}}})
	in := ingest.NewIntake(q, router, metrics.New(prometheus.NewRegistry(), []string{"all"}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	return ingest.NewReceiver(in, cfg), q
}

func why(err error) ingest.Why {
	var r *ingest.Refusal
	if errors.As(err, &r) {
		return r.Why
	}
	return 0
}

// TestReceiverDeliverChecksWhatAdmitChecks: Deliver makes the header
// checks of Admit again, so that a request Admit was not asked about is
// refused the same way.
func TestReceiverDeliverChecksWhatAdmitChecks(t *testing.T) {
	t.Parallel()
	rc, q := newReceiver(t, ingest.Config{EventBridge: cloudevents.Auth{Header: "X-Api-Key", APIKeys: []string{"key-0123456789"}}})
	rec := ossevent.NewRecord("ObjectCreated:PutObject", "r", "b", "k", "E1", 1, "", time.Now())
	body, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": "i", "source": "acs.oss", "type": "oss:ObjectCreated:PutObject", "data": rec})
	for _, c := range []struct {
		name   string
		source string
		header http.Header
		want   ingest.Why
	}{
		{"EventBridgeWithoutCredentials", metrics.SourceEventBridge, http.Header{}, ingest.Unauthenticated},
		{"EventBridgeWithAWrongKey", metrics.SourceEventBridge, http.Header{"X-Api-Key": {"wrong"}}, ingest.Unauthenticated},
		{"MNSWhenItIsOff", metrics.SourceMNS, http.Header{}, ingest.Forbidden},
	} {
		admitted := rc.Admit(c.source, c.header)
		_, delivered := rc.Deliver(context.Background(), c.source, ingest.Request{Method: http.MethodPost, Header: c.header, Body: body})
		if why(admitted) != c.want || why(delivered) != c.want || admitted.Error() != delivered.Error() {
			t.Errorf("%s: Admit %v, Deliver %v, want both refused as %d", c.name, admitted, delivered, c.want)
		}
	}
	if len(q.jobs) != 0 {
		t.Fatalf("%d jobs stored for refused requests", len(q.jobs))
	}
	res, err := rc.Deliver(context.Background(), metrics.SourceEventBridge, ingest.Request{Method: http.MethodPost,
		Header: http.Header{"X-Api-Key": {"key-0123456789"}}, Body: body})
	if err != nil || res.Queued != 1 || len(q.jobs) != 1 {
		t.Fatalf("with the key: %+v %v, %d jobs stored", res, err, len(q.jobs))
	}
}

// TestReceiverRemembersASignedRequest: a signed webhook request delivered
// again is counted as duplicates, and nothing is published for it.
func TestReceiverRemembersASignedRequest(t *testing.T) {
	t.Parallel()
	rc, q := newReceiver(t, ingest.Config{WebhookSecrets: []string{"secret-0123456789"}})
	body, _ := json.Marshal(ossevent.Document{Events: []ossevent.Record{ossevent.NewRecord("ObjectCreated:PutObject", "r", "b", "k", "E1", 1, "", time.Now())}})
	req := ingest.Request{Method: http.MethodPost, Body: body,
		Header: http.Header{signature.Header: {signature.Sign("secret-0123456789", time.Now(), body)}}}
	first, err := rc.Deliver(context.Background(), metrics.SourceOSSWebhook, req)
	if err != nil || first != (ingest.Result{Queued: 1}) {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := rc.Deliver(context.Background(), metrics.SourceOSSWebhook, req)
	if err != nil || again != (ingest.Result{Duplicate: 1}) || len(q.jobs) != 1 {
		t.Fatalf("again: %+v %v, %d jobs published", again, err, len(q.jobs))
	}
}

// TestReceiverWithANewConfiguration: the Receiver of a reloaded
// configuration checks its own secrets and routes by its own tasks, and
// still knows the requests the one before accepted.
func TestReceiverWithANewConfiguration(t *testing.T) {
	t.Parallel()
	rc, q := newReceiver(t, ingest.Config{WebhookSecrets: []string{"secret-0123456789"}})
	signed := func(secret, key string) ingest.Request {
		body, _ := json.Marshal(ossevent.Document{Events: []ossevent.Record{ossevent.NewRecord("ObjectCreated:PutObject", "r", "b", key, "E1", 1, "", time.Now())}})
		return ingest.Request{Method: http.MethodPost, Body: body,
			Header: http.Header{signature.Header: {signature.Sign(secret, time.Now(), body)}}}
	}
	old := signed("secret-0123456789", "k")
	if res, err := rc.Deliver(context.Background(), metrics.SourceOSSWebhook, old); err != nil || res != (ingest.Result{Queued: 1}) {
		t.Fatalf("before: %+v %v", res, err)
	}
	router := transfer.NewRouter([]*transfer.Task{{Name: "all", Source: transfer.SourceConfig{Bucket: "b"}}, {Name: "more", Source: transfer.SourceConfig{Bucket: "b"}}})
	in := ingest.NewIntake(q, router, metrics.New(prometheus.NewRegistry(), nil), slog.New(slog.DiscardHandler))
	// A rotation: a new secret, the old one kept a while.
	next := rc.With(in, ingest.Config{WebhookSecrets: []string{"secret-9876543210", "secret-0123456789"}})
	if res, err := next.Deliver(context.Background(), metrics.SourceOSSWebhook, old); err != nil || res != (ingest.Result{Duplicate: 2}) {
		t.Fatalf("the request accepted before, sent again: %+v %v, want duplicates of both tasks' jobs", res, err)
	}
	last := next.With(in, ingest.Config{WebhookSecrets: []string{"secret-9876543210"}})
	if _, err := last.Deliver(context.Background(), metrics.SourceOSSWebhook, signed("secret-0123456789", "k2")); why(err) != ingest.Unauthenticated {
		t.Fatalf("signed with the removed secret: %v", err)
	}
	next = last
	if res, err := next.Deliver(context.Background(), metrics.SourceOSSWebhook, signed("secret-9876543210", "k3")); err != nil || res != (ingest.Result{Queued: 2}) {
		t.Fatalf("signed with the new secret: %+v %v", res, err)
	}
	if len(q.jobs) != 3 {
		t.Fatalf("%d jobs published, want 3", len(q.jobs))
	}
}

func TestReceiverRefusesAnUnknownSource(t *testing.T) {
	t.Parallel()
	rc, _ := newReceiver(t, ingest.Config{})
	if _, err := rc.Deliver(context.Background(), metrics.SourceSQS, ingest.Request{Body: []byte(`{}`)}); err == nil || why(err) != 0 {
		t.Fatalf("SQS through the webhooks' receiver: %v", err)
	}
}
