package reconcile

// Tallies: how many of a run's copy jobs the workers finished, counted per
// replica and summed from KV, and when a run's copies are all done.

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// jobTally counts the copy jobs of one run that this replica's workers
// finished; it is saved as done.<run>.<owner>, and Get sums the replicas'.
// A giant object whose parts fail is counted by name (FailedGiants), so
// that it fails once however many of its parts, on however many replicas,
// are dead-lettered.
type jobTally struct {
	Copied       int64    `json:"copied"`
	Failed       int64    `json:"failed"`
	Skipped      int64    `json:"skipped"`
	FailedGiants []string `json:"failed_giants,omitempty"` // key and version
	// Bytes is the size of the jobs counted (their objects' sizes as
	// listed; a giant object's once): the run's progress in bytes.
	Bytes int64 `json:"bytes,omitempty"`
	dirty bool
}

// tallies owns this replica's job tallies: the workers count into them,
// and they are saved to the runs bucket (done.<run>.<owner>) and summed
// from it.
type tallies struct {
	kv    jetstream.KeyValue
	owner string // this replica, as a KV key token
	log   *slog.Logger

	flushMu sync.Mutex // one flush at a time: two could store a run's counts out of order, the older last
	mu      sync.Mutex
	runs    map[string]*jobTally // run id -> copies this replica finished
}

func newTallies(kv jetstream.KeyValue, owner string, log *slog.Logger) *tallies {
	return &tallies{kv: kv, owner: kvToken(owner), log: log, runs: map[string]*jobTally{}}
}

var _ transfer.JobObserver = (*Service)(nil)

// JobDone implements transfer.JobObserver: it counts the copies of the
// runs' jobs (those whose lineage names a run: the run's own jobs, and the
// part jobs and restarts a giant object or an archive wait queued for
// them). A job ends once (retries end with one result); results that end
// nothing yet (deferred, retried: another job carries on) are not counted.
func (s *Service) JobDone(job transfer.Job, result string) {
	id, ok := strings.CutPrefix(job.Lineage(), "reconcile-")
	if !ok || job.Kind == transfer.KindReconcile {
		return
	}
	s.tallies.count(id, job, result)
}

func (ts *tallies) count(id string, job transfer.Job, result string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.runs[id]
	if t == nil {
		t = &jobTally{}
		ts.runs[id] = t
	}
	switch result {
	case metrics.CopyCopied:
		t.Copied++
	case metrics.CopyFailed:
		if job.Kind != transfer.KindPart {
			t.Failed++
			break
		}
		giant := job.Key + "\x00" + job.ETag
		if slices.Contains(t.FailedGiants, giant) {
			return
		}
		t.FailedGiants = append(t.FailedGiants, giant)
	case metrics.CopySkipped, metrics.CopySourceGone:
		t.Skipped++
	default:
		return
	}
	t.Bytes += job.Size
	t.dirty = true
}

// SaveTallies writes this replica's job tallies every Poll until ctx is
// done.
func (s *Service) SaveTallies(ctx context.Context) {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.tallies.flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			s.tallies.flush(ctx)
		}
	}
}

func (ts *tallies) flush(ctx context.Context) {
	ts.flushMu.Lock()
	defer ts.flushMu.Unlock()
	ts.mu.Lock()
	save := map[string][]byte{}
	for id, t := range ts.runs {
		if t.dirty {
			save[id], _ = json.Marshal(t)
			t.dirty = false
		}
	}
	ts.mu.Unlock()
	for id, raw := range save {
		if _, err := ts.kv.Put(ctx, "done."+id+"."+ts.owner, raw); err != nil {
			ts.log.Warn("save reconcile job tally", "run", id, "err", err)
		}
	}
}

// sum sums the replicas' tallies of run id; FailedGiants counted in
// Failed, each once.
func (ts *tallies) sum(ctx context.Context, id string) (sum jobTally) {
	keys, err := transfer.ListKeys(ctx, ts.kv, "done."+id+".*")
	if err != nil {
		return sum
	}
	giants := map[string]bool{}
	for _, k := range keys {
		e, err := ts.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var t jobTally
		if json.Unmarshal(e.Value(), &t) == nil {
			sum.Copied += t.Copied
			sum.Failed += t.Failed
			sum.Skipped += t.Skipped
			sum.Bytes += t.Bytes
			for _, g := range t.FailedGiants {
				giants[g] = true
			}
		}
	}
	sum.Failed += int64(len(giants))
	return sum
}

// countCopies fills in how the copy jobs of run st ended, and whether
// they all have (see RunState.CopiesDone).
func (s *Service) countCopies(ctx context.Context, st *RunState) {
	t := s.tallies.sum(ctx, st.ID)
	st.Copied, st.Failed, st.Skipped, st.BytesDone = t.Copied, t.Failed, t.Skipped, t.Bytes
	st.Jobs = st.Queued
	if st.Done && st.Copied+st.Failed+st.Skipped < st.Jobs && s.idle.idle(ctx) {
		// Before falling back on the idle queue, this replica's own
		// counts are saved now rather than at its next tick (which a
		// loaded machine can delay past the idle wait), and summed again.
		s.tallies.flush(ctx)
		t = s.tallies.sum(ctx, st.ID)
		st.Copied, st.Failed, st.Skipped, st.BytesDone = t.Copied, t.Failed, t.Skipped, t.Bytes
		st.CopiesDone, st.CopiesDoneBy = true, "idle_queue"
	}
	if st.Done && st.Copied+st.Failed+st.Skipped >= st.Jobs {
		st.CopiesDone, st.CopiesDoneBy = true, "tally"
	}
}

// kvToken keeps a replica name to the characters a KV key allows.
func kvToken(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// Depther tells how many jobs the work queue holds, waiting or in flight
// (transfer.Queue).
type Depther interface {
	Depth(ctx context.Context) (uint64, error)
}

// idleQueue tells whether this replica has seen the work queue empty (no
// job waiting, in flight or waiting for a retry) on every look for at
// least two polls, long enough for every replica to save the tallies of
// the jobs that ended before. It ends the wait for a run's copies whose
// results were not all counted (see CopiesDoneBy): once the queue is
// empty, none of them can still be running.
type idleQueue struct {
	queue Depther // nil: never idle
	poll  time.Duration
	since atomic.Pointer[time.Time] // the queue seen empty on every look since; nil: not at the last look
}

func (q *idleQueue) idle(ctx context.Context) bool {
	if q.queue == nil {
		return false
	}
	n, err := q.queue.Depth(ctx)
	if err != nil || n > 0 {
		q.since.Store(nil)
		return false
	}
	now := time.Now()
	q.since.CompareAndSwap(nil, &now)
	since := q.since.Load()
	return since != nil && time.Since(*since) >= 2*q.poll
}
