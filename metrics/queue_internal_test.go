package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type countingQueue struct{ calls int }

func (q *countingQueue) QueueStats(context.Context) (QueueStats, error) {
	q.calls++
	return QueueStats{Unacked: uint64(q.calls)}, nil
}

// TestQueueStatsServeScrapesForAMoment: scrapes closer together than
// QueueStatsMaxAge share one reading of JetStream's state.
func TestQueueStatsServeScrapesForAMoment(t *testing.T) {
	t.Parallel()
	c := newQueueCollector()
	c.setTasks([]string{"t"})
	clock := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return clock }
	q := &countingQueue{}
	var src QueueInspector = q
	c.source.Store(&src)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	unacked := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "oss2s3_queue_unacked_jobs" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no oss2s3_queue_unacked_jobs")
		return 0
	}
	for range 5 {
		if v := unacked(); v != 1 {
			t.Fatalf("unacked %v, want 1 (the first reading)", v)
		}
	}
	if q.calls != 1 {
		t.Fatalf("%d readings for 5 scrapes within %v, want 1", q.calls, QueueStatsMaxAge)
	}
	clock = clock.Add(QueueStatsMaxAge)
	if v := unacked(); v != 2 || q.calls != 2 {
		t.Fatalf("after %v: unacked %v and %d readings, want a fresh reading", QueueStatsMaxAge, v, q.calls)
	}
	if n := testutil.CollectAndCount(c, "oss2s3_queue_up"); n != 1 {
		t.Fatalf("queue_up series: %d", n)
	}
}
