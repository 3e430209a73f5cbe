package reconcile

// Runs: starting one (its lock, its plan, its shards queued) and reading
// its state, from any replica.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/transfer"
)

// maxShownPrefixes is how many of a run's own prefixes its state keeps.
const maxShownPrefixes = 100

// ErrNoTask means a run was asked for a task that is not configured.
var ErrNoTask = errors.New("no such task")

// ErrNoRun means no run has the id asked for.
var ErrNoRun = errors.New("no such reconcile run")

// RunningError means the task already has a run in progress (on any
// replica); ID names it.
type RunningError struct{ ID string }

func (e *RunningError) Error() string { return "a reconcile run of this task is in progress: " + e.ID }

// RunState is a run's progress and outcome, as GET /v1/reconciles/{id}
// shows it.
type RunState struct {
	ID         string `json:"id"`
	Task       string `json:"task"`
	Mode       string `json:"mode"`
	Verify     string `json:"verify"`
	MaxDeletes int    `json:"max_deletes"`
	// Prefixes are the run's own prefixes as given, the first
	// maxShownPrefixes of them: the state is one KV value, and a KV value
	// is at most a NATS message (1 MiB by default).
	Prefixes []string `json:"prefixes,omitempty"`
	// PrefixList is the task's prefix list the run read, if it did.
	PrefixList string `json:"prefix_list,omitempty"`
	// PrefixCount is how many prefixes the run lists, once duplicates and
	// prefixes inside others are dropped (0: the whole bucket).
	PrefixCount int       `json:"prefix_count,omitempty"`
	Trigger     string    `json:"trigger,omitempty"` // api, schedule, start, cli
	Owner       string    `json:"owner"`             // the replica coordinating it
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished,omitzero"`
	Shards      int       `json:"shards"`
	ShardsDone  int       `json:"shards_done"`
	Counts
	// Copied, Failed and Skipped count the copy jobs of this run the
	// workers finished (Skipped: nothing to copy, the destination already
	// held the version or the source was gone). A giant object counts
	// once, whatever its parts: copied when its upload completes, failed
	// when one of its parts is dead-lettered.
	Copied  int64 `json:"copied"`
	Failed  int64 `json:"failed"`
	Skipped int64 `json:"skipped"`
	// Jobs is how many distinct copy jobs the run queued (Queued: a job
	// a resumed shard queues again counts once).
	Jobs int64 `json:"jobs"`
	// CopiesDone says every copy job of a finished diff has ended:
	// copied+failed+skipped reached jobs ("tally"), or, if results went
	// uncounted, the work queue stayed empty for two polls ("idle_queue").
	CopiesDone   bool   `json:"copies_done"`
	CopiesDoneBy string `json:"copies_done_by,omitempty"`
	// BytesDone is the size of the copy jobs that ended (the listing's
	// sizes of Copied, Failed and Skipped).
	BytesDone int64 `json:"bytes_done"`
	// SourceObjects and SourceBytes are the source bucket's object count
	// and size when the run started (OSS's GetBucketStat, which OSS
	// refreshes about hourly: an estimate), for a run over the whole
	// bucket; 0 when not known (a run of prefixes, or no stat allowed).
	SourceObjects int64 `json:"source_objects,omitempty"`
	SourceBytes   int64 `json:"source_bytes,omitempty"`
	// Progress is computed when the run is read: percentages, rates and
	// the time left (see progress.go).
	Progress *RunProgress `json:"progress,omitempty"`
	Elapsed  float64      `json:"elapsed_seconds"`
	Done     bool         `json:"done"`
	Error    string       `json:"error,omitempty"`
}

// Start begins a run of task: it takes the task's lock (or returns a
// *RunningError), plans the shards, queues them, and coordinates the run
// in the background until it ends or the service stops (ctx is only for
// starting).
func (s *Service) Start(ctx context.Context, task string, o Options, trigger string) (RunState, error) {
	ts := s.task(task)
	if ts == nil {
		return RunState{}, fmt.Errorf("%w: %q", ErrNoTask, task)
	}
	t := ts.Runtime.Task
	o = o.forTask(t)
	if !ValidMode(o.Mode) || !ValidVerify(o.Verify) {
		return RunState{}, fmt.Errorf("mode %q / verify %q: want report|copy|sync|copy_all and size|etag|content", o.Mode, o.Verify)
	}
	id := newID()
	if err := s.lock(ctx, task, id); err != nil {
		return RunState{}, err
	}
	st := RunState{ID: id, Task: task, Mode: o.Mode, Verify: o.Verify, MaxDeletes: o.MaxDeletes,
		Prefixes: o.Prefixes[:min(len(o.Prefixes), maxShownPrefixes)], Trigger: trigger, Owner: s.cfg.Owner, Started: time.Now().UTC()}
	if len(o.Prefixes) == 0 && ts.List != nil {
		st.PrefixList = ts.List.String()
	}
	plan, err := s.plan(ctx, ts, o)
	if err == nil {
		st.Shards, st.PrefixCount = plan.n, plan.prefixes
		if plan.prefixes == 0 {
			st.SourceObjects, st.SourceBytes = s.sourceTotals(ctx, ts, task)
		}
		err = s.putRun(ctx, st)
	}
	if err == nil {
		err = s.queueShards(ctx, t, st, plan, o)
	}
	if err != nil {
		_ = s.locks.Delete(context.WithoutCancel(ctx), lockKey(task))
		return RunState{}, err
	}
	if s.m != nil {
		s.m.ReconcileRunning.WithLabelValues(task).Set(1)
	}
	s.log.Info("reconcile run started", "task", task, "run", id, "mode", o.Mode, "shards", plan.n, "trigger", trigger)
	s.goCoordinate(ts, st, o)
	return st, nil
}

func lockKey(task string) string { return "task." + task }

// lock takes task's lock for run id, or returns a *RunningError naming
// the run that holds it.
func (s *Service) lock(ctx context.Context, task, id string) error {
	_, err := s.locks.Create(ctx, lockKey(task), []byte(id))
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("take the reconcile lock: %w", err)
	}
	if e, gerr := s.locks.Get(ctx, lockKey(task)); gerr == nil {
		return &RunningError{ID: string(e.Value())}
	}
	return &RunningError{}
}

// release gives task's lock up, if run id still holds it.
func (s *Service) release(ctx context.Context, task, id string) error {
	e, err := s.locks.Get(ctx, lockKey(task))
	if err != nil {
		return err
	}
	if string(e.Value()) != id {
		return nil // expired and taken by another run meanwhile
	}
	return s.locks.Delete(ctx, lockKey(task), jetstream.LastRevision(e.Revision()))
}

// shardPlan is how a run is cut: n shards, the ranges of the i-th
// made only when its job is queued, so that a run of millions of prefixes
// holds them once (as strings), not also as ranges and job payloads.
type shardPlan struct {
	n        int
	ranges   func(i int) []Range
	prefixes int // how many the run lists
}

// plan splits a run into shards: its prefixes (see TaskSides.Prefixes),
// RangesPerShard to a shard; or, with fewer prefixes than the shards
// wanted (Options.Shards, else ServiceConfig.Shards; a whole bucket is one
// range), key ranges cut where the source's keys fan out (see Split), one
// to a shard, so that every replica works on a huge bucket, flat or not.
func (s *Service) plan(ctx context.Context, ts *TaskSides, o Options) (shardPlan, error) {
	prefixes, err := ts.Prefixes(ctx, o)
	if err != nil {
		return shardPlan{}, err
	}
	want := s.cfg.Shards
	if o.Shards > 0 {
		want = min(o.Shards, s.cfg.MaxShards)
	}
	if len(prefixes) >= want {
		// At most MaxShards shards: the coordinator reads every shard's
		// state each poll, so a list of millions makes larger shards,
		// not more of them.
		per := max(s.cfg.RangesPerShard, (len(prefixes)+s.cfg.MaxShards-1)/s.cfg.MaxShards)
		return shardPlan{n: (len(prefixes) + per - 1) / per, prefixes: len(prefixes), ranges: func(i int) []Range {
			return rangesOf(prefixes[i*per : min(len(prefixes), (i+1)*per)])
		}}, nil
	}
	ranges := rangesOf(prefixes)
	var pieces []Range
	for _, r := range ranges {
		ps, err := Split(ctx, ts.Src, r, max(2, want/len(ranges)))
		if err != nil {
			return shardPlan{}, fmt.Errorf("plan shards: %w", err)
		}
		pieces = append(pieces, ps...)
	}
	return shardPlan{n: len(pieces), prefixes: len(prefixes), ranges: func(i int) []Range { return pieces[i : i+1] }}, nil
}

// queueShards publishes the plan's shard jobs, a thousand or a few MiB at
// a time. A shard's job carries its ranges and the run's options but not
// the run's prefixes: its ranges are what it lists, and thousands of
// prefixes in every shard's job would make each job as large as the whole
// list.
func (s *Service) queueShards(ctx context.Context, t *transfer.Task, st RunState, plan shardPlan, o Options) error {
	o.Prefixes = nil
	var jobs []transfer.Job
	size := 0
	for n := range plan.n {
		raw, err := json.Marshal(shardSpec{Run: st.ID, N: n, Ranges: plan.ranges(n), Options: o})
		if err != nil {
			return err
		}
		jobs = append(jobs, transfer.Job{
			Task:       t.Name,
			Kind:       transfer.KindReconcile,
			Origin:     "reconcile",
			EventTime:  st.Started,
			Nonce:      st.ID,
			ObjectArgs: transfer.ObjectArgs{Bucket: t.Source.Bucket, Key: fmt.Sprintf("reconcile:%s:%d", st.ID, n)},
			ShardArgs:  transfer.ShardArgs{Shard: string(raw)},
		})
		size += len(raw)
		if len(jobs) == 1000 || size >= 4<<20 || n == plan.n-1 {
			if _, err := s.queue.Publish(ctx, jobs); err != nil {
				return fmt.Errorf("queue reconcile shards: %w", err)
			}
			jobs, size = nil, 0
		}
	}
	return nil
}

func (s *Service) putRun(ctx context.Context, st RunState) error {
	st.Elapsed = time.Since(st.Started).Seconds()
	if st.Done {
		st.Elapsed = st.Finished.Sub(st.Started).Seconds()
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := s.runs.Put(ctx, "run."+st.ID, raw); err != nil {
		return fmt.Errorf("save reconcile run: %w", err)
	}
	return nil
}

// Get returns a run's state.
func (s *Service) Get(ctx context.Context, id string) (RunState, error) {
	var st RunState
	if !validID(id) {
		return st, ErrNoRun
	}
	e, err := s.runs.Get(ctx, "run."+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, ErrNoRun
	}
	if err != nil {
		return st, err
	}
	if err = json.Unmarshal(e.Value(), &st); err != nil {
		return st, err
	}
	if !st.Done {
		st.Elapsed = time.Since(st.Started).Seconds()
	}
	s.countCopies(ctx, &st)
	st.Progress = s.meter.Progress(&st, time.Now())
	return st, nil
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '-') {
			return false
		}
	}
	return true
}

// List returns the runs of task (every task's if task is ""), newest
// first, at most limit of them; the runs bucket keeps them for ReportAge.
// Run ids begin with their start time, so they sort by it.
func (s *Service) List(ctx context.Context, task string, limit int) ([]RunState, error) {
	keys, err := s.runs.ListKeysFiltered(ctx, "run.>")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for k := range keys.Keys() {
		ids = append(ids, strings.TrimPrefix(k, "run."))
	}
	slices.SortFunc(ids, func(a, b string) int { return strings.Compare(b, a) })
	var out []RunState
	for _, id := range ids {
		if len(out) >= limit {
			break
		}
		st, err := s.Get(ctx, id)
		if errors.Is(err, ErrNoRun) {
			continue // deleted since the listing
		}
		if err != nil {
			return out, err
		}
		if task == "" || st.Task == task {
			out = append(out, st)
		}
	}
	return out, nil
}
