package transfer

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/metrics"
)

var _ metrics.QueueInspector = (*Queue)(nil)

// QueueStats reads the work queue's and the dead-letter stream's state
// for the metrics: a few small requests to JetStream, whatever the number
// of jobs (per-subject counts come from the stream's index, not a scan).
func (q *Queue) QueueStats(ctx context.Context) (metrics.QueueStats, error) {
	var st metrics.QueueStats
	jobs, err := q.js.Stream(ctx, JobStream)
	if err != nil {
		return st, fmt.Errorf("stream %s: %w", JobStream, err)
	}
	if st.Jobs, err = countsByTask(ctx, jobs, JobSubjectPrefix); err != nil {
		return st, fmt.Errorf("stream %s: %w", JobStream, err)
	}
	if s := jobs.CachedInfo().State; s.Msgs > 0 {
		st.OldestJob = s.FirstTime
	}
	ci, err := q.consumer.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("consumer %s: %w", WorkerConsumer, err)
	}
	st.Unacked, st.Redelivered = uint64(ci.NumAckPending), uint64(ci.NumRedelivered) //nolint:gosec // G115: counts from the server, >= 0
	dead, err := q.js.Stream(ctx, DeadStream)
	if err != nil {
		return st, fmt.Errorf("stream %s: %w", DeadStream, err)
	}
	if st.DeadLetters, err = countsByTask(ctx, dead, DeadSubjectPref); err != nil {
		return st, fmt.Errorf("stream %s: %w", DeadStream, err)
	}
	return st, nil
}

// countsByTask returns how many messages the stream holds per task, from
// the per-subject counts (subjects are prefix + task).
func countsByTask(ctx context.Context, s jetstream.Stream, prefix string) (map[string]uint64, error) {
	out := map[string]uint64{}
	if s.CachedInfo().State.Msgs == 0 {
		return out, nil
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, err
	}
	for subj, n := range info.State.Subjects {
		out[strings.TrimPrefix(subj, prefix)] += n
	}
	return out, nil
}
