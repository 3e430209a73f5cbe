package ingest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// halfFull stores the first job of a batch and refuses the rest, as a
// stream at its limit does.
type halfFull struct{ got []transfer.Job }

func (h *halfFull) Publish(_ context.Context, jobs []transfer.Job) (transfer.PublishResult, error) {
	h.got = append(h.got, jobs...)
	res := transfer.PublishResult{Queued: 1}
	for i := 1; i < len(jobs); i++ {
		res.NotQueued = append(res.NotQueued, i)
	}
	return res, transfer.ErrQueueUnavailable
}

func TestIntake(t *testing.T) {
	t.Parallel()
	router := transfer.NewRouter([]*transfer.Task{
		{Name: "a", Source: transfer.SourceConfig{Bucket: "b", Prefixes: []string{"a/"}}},
		{Name: "all", Source: transfer.SourceConfig{Bucket: "b"}},
	})
	now := time.Now()
	records := []ossevent.Record{
		ossevent.NewRecord("ObjectCreated:PutObject", "r", "b", "a/1", "E1", 1, "", now),
		ossevent.NewRecord("ObjectRemoved:DeleteObject", "r", "b", "x/2", "", 0, "", now),
		ossevent.NewRecord("ObjectCreated:UploadPart", "r", "b", "a/3", "", 0, "", now),
		ossevent.NewRecord("ObjectCreated:PutObject", "r", "other", "a/4", "E4", 1, "", now),
	}

	t.Run("MakesOneJobPerRoutedTaskAndCountsTheRest", func(t *testing.T) {
		t.Parallel()
		in := ingest.NewIntake(&halfFull{}, router, metrics.New(prometheus.NewRegistry(), nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
		jobs, res := in.Jobs(metrics.SourceSQS, records)
		if len(jobs) != 3 || res.Ignored != 1 || res.Unrouted != 1 {
			t.Fatalf("jobs %+v, result %+v", jobs, res)
		}
		if jobs[0].Task != "a" || jobs[1].Task != "all" || jobs[2].Kind != string(ossevent.KindRemove) || jobs[2].Origin != metrics.SourceSQS {
			t.Fatalf("jobs %+v", jobs)
		}
	})

	t.Run("CountsWhatGotInBeforeAFailure", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		m := metrics.New(reg, []string{"a", "all"})
		in := ingest.NewIntake(&halfFull{}, router, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
		res, err := in.Accept(context.Background(), metrics.SourceSQS, records)
		if !errors.Is(err, transfer.ErrQueueUnavailable) || res.Queued != 1 {
			t.Fatalf("result %+v, err %v", res, err)
		}
		queued := testutil.ToFloat64(m.EventsReceived.WithLabelValues(metrics.SourceSQS, metrics.EventQueued))
		failed := testutil.ToFloat64(m.EventsReceived.WithLabelValues(metrics.SourceSQS, metrics.EventFailed))
		if queued != 1 || failed != 2 {
			t.Fatalf("queued %v failed %v, want 1 and 2", queued, failed)
		}
		// Only the first job (task a) was stored.
		if a, all := testutil.ToFloat64(m.JobsQueued.WithLabelValues("a")), testutil.ToFloat64(m.JobsQueued.WithLabelValues("all")); a != 1 || all != 0 {
			t.Fatalf("jobs queued: a %v, all %v, want 1 and 0", a, all)
		}
	})
}
