package transfer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// value sums the samples of one metric family in reg whose labels include
// match: a gauge's or counter's value, a histogram's sample count.
func value(t *testing.T, reg prometheus.Gatherer, name string, match map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range match {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == k && l.GetValue() == v)
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Histogram != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}

func TestQueueStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("CountsJobsByTaskAndTheOldestJobsAge", func(t *testing.T) {
		t.Parallel()
		q := openQueue(t, transfer.QueueConfig{})
		before := time.Now()
		large := job("a", "2", "E") // counted whatever its lane
		large.Size = 5 * int64(transfer.GiB)
		if q.LaneOf(large) != transfer.LargeLane {
			t.Fatal("a 5 GiB object's job is not in the large lane")
		}
		if _, err := q.Publish(ctx, []transfer.Job{job("a", "1", "E"), large, job("b", "1", "E")}); err != nil {
			t.Fatal(err)
		}
		st, err := q.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Jobs["a"] != 2 || st.Jobs["b"] != 1 || len(st.Jobs) != 2 {
			t.Fatalf("jobs by task %v, want a:2 b:1", st.Jobs)
		}
		if st.OldestJob.Before(before.Add(-time.Second)) || st.OldestJob.After(time.Now()) {
			t.Fatalf("oldest job queued at %v, want between %v and now", st.OldestJob, before)
		}
		if st.Unacked != 0 || len(st.DeadLetters) != 0 {
			t.Fatalf("no worker ran, yet unacked=%d dead=%v", st.Unacked, st.DeadLetters)
		}

		reg := prometheus.NewRegistry()
		m := metrics.New(reg, []string{"a"})
		m.WatchQueue(q)
		if v := value(t, reg, "oss2s3_queue_jobs", map[string]string{"task": "a"}); v != 2 {
			t.Fatalf("oss2s3_queue_jobs{task=a} = %v, want 2", v)
		}
		if v := value(t, reg, "oss2s3_queue_jobs", map[string]string{"task": metrics.OtherTask}); v != 1 {
			t.Fatalf("oss2s3_queue_jobs{task=%q} = %v, want 1 (task b is not configured)", metrics.OtherTask, v)
		}
		if v := value(t, reg, "oss2s3_queue_up", nil); v != 1 {
			t.Fatalf("oss2s3_queue_up = %v, want 1", v)
		}
	})

	t.Run("EmptyQueueHasNoOldestJob", func(t *testing.T) {
		t.Parallel()
		q := openQueue(t, transfer.QueueConfig{})
		st, err := q.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.OldestJob.IsZero() || len(st.Jobs) != 0 {
			t.Fatalf("empty queue: %+v", st)
		}
	})

	t.Run("DeadLettersAreCountedByTask", func(t *testing.T) {
		t.Parallel()
		// The job of a task not configured is dead-lettered once its grace is over.
		b := startWorkers(t, transfer.QueueConfig{MaxAttempts: 2, AckWait: time.Second}, bedOptions{unknownTaskGrace: 500 * time.Millisecond})
		b.src.put("k", []byte("hello"), nil)
		b.dst.putErr = func(string) error { return errors.New("connection reset by peer") }
		if _, err := b.q.Publish(ctx, []transfer.Job{job("t", "k", ""), job("gone", "k", "")}); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, waitLimit, "two dead letters", func() bool { dl, _ := b.q.DeadLetters(ctx, transfer.DeadLetterFilter{}, 10); return len(dl) == 2 })
		st, err := b.q.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.DeadLetters["t"] != 1 || st.DeadLetters["gone"] != 1 {
			t.Fatalf("dead letters by task %v, want t:1 gone:1", st.DeadLetters)
		}
		// The job of t was tried twice: the second delivery is a redelivery.
		if v := value(t, b.reg, "oss2s3_job_redeliveries_total", map[string]string{"task": "t"}); v != 1 {
			t.Fatalf("redeliveries %v, want 1", v)
		}
	})
}

func TestWorkerMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("LagIsMeasuredFromTheEventTime", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{})
		b.src.put("k", []byte("hello"), nil)
		b.src.put("no-event", []byte("hello"), nil)
		j := job("t", "k", "")
		j.EventTime = time.Now().Add(-90 * time.Second)
		if _, err := b.q.Publish(ctx, []transfer.Job{j, job("t", "no-event", "")}); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, waitLimit, "both copies", func() bool { return b.count(metrics.CopyCopied) == 2 })
		mfs, err := b.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "oss2s3_end_to_end_lag_seconds" {
				continue
			}
			h := mf.GetMetric()[0].GetHistogram()
			// Only the job with an event time counts, and it took at
			// least the 90 s since its event.
			if h.GetSampleCount() != 1 || h.GetSampleSum() < 90 {
				t.Fatalf("lag histogram: %d samples, sum %v; want 1 sample of at least 90 s", h.GetSampleCount(), h.GetSampleSum())
			}
			return
		}
		t.Fatal("no oss2s3_end_to_end_lag_seconds series")
	})

	t.Run("PartsInFlightAndTheirBudgetAreReportedAndGivenBack", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		m := metrics.New(reg, []string{"t"})
		c := transfer.NewCopier(64*transfer.MiB, nil, "w").Measure(m)
		if v := value(t, reg, "oss2s3_memory_budget_bytes", nil); v != 64<<20 {
			t.Fatalf("memory_budget_bytes %v, want %d", v, 64<<20)
		}
		src, dst := newMemSource(), newMemDest()
		src.put("big", randomBytes(20<<20, 3), nil)
		release := make(chan struct{})
		var waiting atomic.Int32
		dst.partErr = func(string, int32) error {
			waiting.Add(1)
			<-release
			return nil
		}
		cfg := transfer.CopyConfig{PartSize: 5 * transfer.MiB, MultipartThreshold: 6 * transfer.MiB, PartsInFlight: 3}
		done := make(chan error, 1)
		go func() { _, err := copyKey(c, src, dst, "big", "big", cfg); done <- err }()
		testkit.WaitFor(t, waitLimit, "three parts uploading", func() bool { return waiting.Load() == 3 })
		// The fourth part takes its buffer from the budget, then waits for
		// one of the three transfers to end.
		testkit.WaitFor(t, waitLimit, "four 5 MiB buffers taken", func() bool {
			return value(t, reg, "oss2s3_memory_budget_used_bytes", nil) == 4*5<<20
		})
		if v := value(t, reg, "oss2s3_multipart_parts_in_flight", nil); v != 3 {
			t.Fatalf("parts in flight %v, want 3", v)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if p, u := value(t, reg, "oss2s3_multipart_parts_in_flight", nil), value(t, reg, "oss2s3_memory_budget_used_bytes", nil); p != 0 || u != 0 {
			t.Fatalf("after the copy: parts in flight %v, budget used %v; want both 0", p, u)
		}
	})
}

// BenchmarkQueueStats is the cost of one scrape's look at the queue with
// 100,000 jobs of three tasks waiting: a few requests, no scan.
func BenchmarkQueueStats(b *testing.B) {
	q, err := transfer.OpenQueue(context.Background(), transfer.QueueConfig{DataDir: b.TempDir()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	batch := make([]transfer.Job, 0, 1000)
	for i := range 100_000 {
		batch = append(batch, job([]string{"a", "b", "c"}[i%3], fmt.Sprintf("k%d", i), "E"))
		if len(batch) == cap(batch) {
			if _, err := q.Publish(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for b.Loop() {
		st, err := q.QueueStats(ctx)
		if err != nil || st.Jobs["a"]+st.Jobs["b"]+st.Jobs["c"] != 100_000 {
			b.Fatalf("stats %+v, %v", st.Jobs, err)
		}
	}
}
