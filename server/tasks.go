package main

import (
	"context"
	"time"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// taskStatus is one task as GET /v1/tasks shows it.
type taskStatus struct {
	Name        string `json:"name"`
	Source      string `json:"source"`      // the source bucket
	Destination string `json:"destination"` // bucket/prefix
	// The queue: jobs of the task waiting or being worked on, and its
	// dead letters. OldestJobAge is the queue's oldest job, whichever its
	// task (the queue keeps one age).
	Jobs            uint64   `json:"jobs"`
	DeadLetters     uint64   `json:"dead_letters"`
	OldestJobAgeSec *float64 `json:"oldest_job_age_seconds,omitempty"`
	// Reconcile: the schedule, the next start it gives, the latest run.
	Schedule      string              `json:"schedule,omitempty"`
	NextReconcile *time.Time          `json:"next_reconcile,omitempty"`
	LastReconcile *reconcile.RunState `json:"last_reconcile,omitempty"`
}

// taskLister answers GET /v1/tasks from the queue and the reconciler.
type taskLister struct {
	tasks []*transfer.Task
	queue metrics.QueueInspector
	recon *reconcile.Service // nil: no reconcile fields
	now   func() time.Time
}

var _ handlers.TaskLister = taskLister{}

func (l taskLister) Tasks(ctx context.Context) ([]any, error) {
	st, err := l.queue.QueueStats(ctx)
	if err != nil {
		return nil, err
	}
	now := l.now()
	out := make([]any, 0, len(l.tasks))
	for _, t := range l.tasks {
		ts := taskStatus{Name: t.Name, Source: t.Source.Bucket, Destination: t.Destination.Bucket + "/" + t.Destination.Prefix,
			Jobs: st.Jobs[t.Name], DeadLetters: st.DeadLetters[t.Name], Schedule: t.Reconcile.Schedule}
		if !st.OldestJob.IsZero() {
			age := now.Sub(st.OldestJob).Seconds()
			ts.OldestJobAgeSec = &age
		}
		if t.Reconcile.Schedule != "" {
			if sched, err := reconcile.ParseSchedule(t.Reconcile.Schedule); err == nil {
				if next := sched.Next(now); !next.IsZero() {
					ts.NextReconcile = &next
				}
			}
		}
		if l.recon != nil {
			runs, err := l.recon.List(ctx, t.Name, 1)
			if err != nil {
				return nil, err
			}
			if len(runs) == 1 {
				ts.LastReconcile = &runs[0]
			}
		}
		out = append(out, ts)
	}
	return out, nil
}
