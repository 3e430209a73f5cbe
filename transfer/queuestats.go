package transfer

import (
	"context"
	"encoding/json"
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
	st.Jobs = map[string]uint64{}
	for _, l := range Lanes {
		n, err := countsByTask(ctx, jobs, l.Subject)
		if err != nil {
			return st, fmt.Errorf("stream %s: %w", JobStream, err)
		}
		for task, c := range n {
			st.Jobs[task] += c
		}
	}
	if s := jobs.CachedInfo().State; s.Msgs > 0 {
		st.OldestJob = s.FirstTime
	}
	for _, l := range Lanes {
		ci, err := q.consumerOf(l).Info(ctx)
		if err != nil {
			return st, fmt.Errorf("consumer %s: %w", l.Consumer, err)
		}
		st.Unacked += uint64(ci.NumAckPending)      //nolint:gosec // G115: counts from the server, >= 0
		st.Redelivered += uint64(ci.NumRedelivered) //nolint:gosec // G115: counts from the server, >= 0
	}
	dead, err := q.js.Stream(ctx, DeadStream)
	if err != nil {
		return st, fmt.Errorf("stream %s: %w", DeadStream, err)
	}
	if st.DeadLetters, err = countsByTask(ctx, dead, DeadSubjectPref); err != nil {
		return st, fmt.Errorf("stream %s: %w", DeadStream, err)
	}
	st.NewestDead = newestByTask(ctx, dead, st.DeadLetters)
	return st, nil
}

// maxNewestLookups bounds the requests one reading spends on the newest
// dead letter of each task.
const maxNewestLookups = 64

// newestByTask reads the newest dead letter of each task that has some
// (one direct get of the last message on the task's subject each). A task
// whose read fails is left out: the series is a courtesy to the alert,
// the counts are what matter.
func newestByTask(ctx context.Context, dead jetstream.Stream, counts map[string]uint64) map[string]metrics.DeadLetterRef {
	out := map[string]metrics.DeadLetterRef{}
	for task, n := range counts {
		if n == 0 || len(out) == maxNewestLookups {
			continue
		}
		m, err := dead.GetLastMsgForSubject(ctx, DeadSubjectPref+task)
		if err != nil {
			continue
		}
		var j struct {
			Key string `json:"key"`
		}
		if json.Unmarshal(m.Data, &j) != nil {
			continue
		}
		out[task] = metrics.DeadLetterRef{Key: j.Key, At: m.Time}
	}
	return out
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
