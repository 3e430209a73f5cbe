package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

type fixedQueue metrics.QueueStats

func (q fixedQueue) QueueStats(context.Context) (metrics.QueueStats, error) {
	return metrics.QueueStats(q), nil
}

// TestTaskListShowsTheQueueAndTheSchedule: each task with its own backlog
// and dead letters, the queue's oldest job's age, and the next start its
// schedule gives (none without one).
func TestTaskListShowsTheQueueAndTheSchedule(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 10, 17, 0, 0, time.UTC)
	l := taskLister{
		tasks: []*transfer.Task{
			{Name: "photos", Source: transfer.SourceConfig{Bucket: "src"}, Destination: transfer.DestinationConfig{Bucket: "dst", Prefix: "p/"},
				Reconcile: transfer.ReconcileConfig{Schedule: "0/60 * * * ? *"}},
			{Name: "logs", Source: transfer.SourceConfig{Bucket: "logs"}, Destination: transfer.DestinationConfig{Bucket: "dst"}},
		},
		queue: fixedQueue{Jobs: map[string]uint64{"photos": 7}, DeadLetters: map[string]uint64{"logs": 2}, OldestJob: now.Add(-90 * time.Second)},
		now:   func() time.Time { return now },
	}
	got, err := l.Tasks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"name":"photos","source":"src","destination":"dst/p/","jobs":7,"dead_letters":0,"oldest_job_age_seconds":90,"schedule":"0/60 * * * ? *","next_reconcile":"2026-12-05T11:00:00Z"},` +
		`{"name":"logs","source":"logs","destination":"dst/","jobs":0,"dead_letters":2,"oldest_job_age_seconds":90}]`
	if string(b) != want {
		t.Errorf("tasks:\n%s\nwant\n%s", b, want)
	}
}
