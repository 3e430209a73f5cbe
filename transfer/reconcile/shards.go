package reconcile

// Shards: the jobs a run is cut into, their state and checkpoints in KV,
// and running one on whichever replica's worker took it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/transfer"
)

// shardSpec is the payload of a shard job.
type shardSpec struct {
	Run     string  `json:"run"`
	N       int     `json:"n"`
	Ranges  []Range `json:"ranges"`
	Options Options `json:"options"`
}

// shardState is a shard's progress and outcome. While the shard runs,
// Counts and DeleteKeys are those at its Checkpoint: a redelivered shard
// goes on from there.
type shardState struct {
	Counts
	Done       bool        `json:"done"`
	Error      string      `json:"error,omitempty"`
	DeleteKeys []string    `json:"delete_keys,omitempty"` // sync: destination-only keys, at most max_deletes+1
	Checkpoint *checkpoint `json:"checkpoint,omitempty"`
	Resumed    int         `json:"resumed,omitempty"` // times a redelivered attempt went on from the checkpoint
	Updated    time.Time   `json:"updated"`
}

// checkpoint is how far a shard got: every key of its ranges before
// Range, and of Range through After, is fully handled (compared, its copy
// jobs acknowledged by JetStream, its report lines in the report stream
// up to ReportSeq).
type checkpoint struct {
	Range     int    `json:"range"`           // index in the shard's ranges
	After     string `json:"after,omitempty"` // "": none of Range's keys yet
	ReportSeq uint64 `json:"report_seq"`      // the shard's last report message then (stream sequence)
}

func shardKey(id string, n int) string { return fmt.Sprintf("shard.%s.%d", id, n) }

func (s *Service) shard(ctx context.Context, id string, n int) (shardState, bool, error) {
	ss, rev, err := s.shardRev(ctx, id, n)
	return ss, rev != 0, err
}

// shardRev reads a shard's state and its revision (0: none yet).
func (s *Service) shardRev(ctx context.Context, id string, n int) (shardState, uint64, error) {
	var ss shardState
	e, err := s.runs.Get(ctx, shardKey(id, n))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ss, 0, nil
	}
	if err != nil {
		return ss, 0, err
	}
	return ss, e.Revision(), json.Unmarshal(e.Value(), &ss)
}

// errShardTaken means another attempt of the shard wrote its state since
// this one read it: this one stops rather than overwrite it.
var errShardTaken = errors.New("another attempt of this reconcile shard saved its state meanwhile")

// saveShard writes a shard's state if it is still at revision *rev (0:
// absent), and moves *rev on. Only one attempt of a shard runs at a time,
// unless a replica that lost its shard to AckWait (cut off from NATS, not
// dead) is still running it: then of the two, the first to save after the
// other read goes on, and the other stops at its next save (errShardTaken:
// the queue delivers the shard again later, and that delivery finds it
// done or goes on from the winner's checkpoint).
func (s *Service) saveShard(ctx context.Context, id string, n int, ss shardState, rev *uint64) error {
	ss.Updated = time.Now().UTC()
	raw, err := json.Marshal(ss)
	if err != nil {
		return err
	}
	var next uint64
	if *rev == 0 {
		next, err = s.runs.Create(ctx, shardKey(id, n), raw)
	} else {
		next, err = s.runs.Update(ctx, shardKey(id, n), raw, *rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return errShardTaken
	}
	if err != nil {
		return fmt.Errorf("save reconcile shard state: %w", err)
	}
	*rev = next
	return nil
}

var _ transfer.JobWorker = transfer.JobWorkerFunc((*Service)(nil).RunShard)

// RunShard is the worker of reconcile shard jobs (registered as a
// transfer.JobWorkerFunc): it diffs a shard's ranges and
// records the outcome in the shard's state. As it goes it saves
// checkpoints (every ServiceConfig.CheckpointKeys keys or
// CheckpointEvery, and after each range): a shard redelivered after its
// replica died goes on after the last key the checkpoint says is handled,
// with the counts, the sync deletes and the report it had then, so the
// run ends as if it had not been interrupted. The keys handled after the
// checkpoint are handled again: their copy jobs are deduplicated by the
// queue (Nats-Msg-Id), their report lines deleted before the resume.
func (s *Service) RunShard(ctx context.Context, job transfer.Job, log *slog.Logger) error {
	var sp shardSpec
	args := job.ShardArgs // a reconcile job's payload
	if err := json.Unmarshal([]byte(args.Shard), &sp); err != nil {
		return transfer.Permanent(fmt.Errorf("reconcile shard: %w", err))
	}
	ts := s.task(job.Task)
	if ts == nil {
		// A reload removed the task since the workers looked: the shard
		// comes back, and the workers' rule for jobs of tasks not
		// configured decides then (transfer.WorkerConfig.UnknownTaskGrace).
		return transfer.Snooze(time.Second, fmt.Sprintf("reconcile shard: %v: %q", ErrNoTask, job.Task), nil)
	}
	log = log.With("run", sp.Run, "shard", sp.N)
	a, done, err := s.startShard(ctx, sp, log)
	if err != nil || done {
		return err // done: done already (a duplicate delivery)
	}
	err = a.march(ctx, s.shardDiff(ts, a))
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: another replica goes on from the checkpoint
	}
	if ce := (*checkpointError)(nil); errors.As(err, &ce) {
		return err // the queue delivers the shard again; it goes on from the last checkpoint saved
	}
	return a.finish(ctx, err)
}

// shardAttempt is one delivery of a shard to this replica: it goes on from
// the shard's checkpoint, if any, and saves checkpoints as it goes.
type shardAttempt struct {
	s          *Service
	sp         shardSpec
	log        *slog.Logger
	rev        uint64 // of the shard's state, as this attempt last read or wrote it
	rep        *streamReport
	prog       *Progress
	from       checkpoint // where this attempt goes on from
	extraneous []string   // sync: the destination-only keys so far
	resumed    int
	started    time.Time
}

// startShard reads the shard's state. Unless the shard is done, it returns
// an attempt that goes on from the shard's checkpoint (its report lines
// past the checkpoint deleted) or, without one, starts over (the shard's
// old report purged).
func (s *Service) startShard(ctx context.Context, sp shardSpec, log *slog.Logger) (a *shardAttempt, done bool, err error) {
	ss, rev, err := s.shardRev(ctx, sp.Run, sp.N)
	if err != nil {
		return nil, false, fmt.Errorf("read reconcile shard state: %w", err)
	}
	if ss.Done {
		return nil, true, nil
	}
	a = &shardAttempt{s: s, sp: sp, log: log, rev: rev, rep: s.reporter(sp.Run, sp.N), prog: &Progress{}, resumed: ss.Resumed,
		started: time.Now()}
	if ss.Checkpoint == nil || ss.Checkpoint.Range > len(sp.Ranges) {
		return a, false, a.rep.purge(ctx)
	}
	a.from = *ss.Checkpoint
	a.prog.Restore(ss.Counts)
	a.extraneous = ss.DeleteKeys
	a.resumed++
	if err := a.rep.resume(ctx, a.from.ReportSeq); err != nil {
		return nil, false, err
	}
	log.Info("reconcile shard resumed from its checkpoint", "range", a.from.Range, "after", a.from.After,
		"listed", ss.Listed, "resumed", a.resumed)
	return a, false, nil
}

// shardDiff is the diff of a shard's ranges.
func (s *Service) shardDiff(ts *TaskSides, a *shardAttempt) *Diff {
	d := &Diff{Task: ts.Runtime.Task, Src: ts.Src, Dst: ts.Dst, Source: ts.Runtime.Source, Destination: ts.Runtime.Destination,
		Queue: s.queue, Report: a.rep, Metrics: s.m, Log: a.log, RunID: a.sp.Run, Options: a.sp.Options, Progress: a.prog,
		CheckpointKeys: s.cfg.CheckpointKeys, CheckpointEvery: s.cfg.CheckpointEvery}
	if op, ok := ts.Runtime.Destination.(Opener); ok {
		d.DstOpener = op
	}
	return d
}

// march diffs the shard's ranges from the attempt's checkpoint on, saving
// a checkpoint whenever d's march offers one and after each range but the
// last.
func (a *shardAttempt) march(ctx context.Context, d *Diff) error {
	maxDeletes := a.sp.Options.withDefaults().MaxDeletes
	var err error
	for i := a.from.Range; i < len(a.sp.Ranges) && err == nil; i++ {
		rg := a.sp.Ranges[i]
		if i == a.from.Range && a.from.After != "" {
			rg.After = a.from.After // both listings start after it
		}
		before := a.extraneous // the earlier ranges'
		d.OnCheckpoint = func(ctx context.Context, c Checkpoint) error {
			return a.save(ctx, checkpoint{Range: i, After: c.Key}, c.Counts, addCapped(before, c.Extraneous, maxDeletes))
		}
		var ex []string
		ex, err = d.RunRange(ctx, rg)
		a.extraneous = addCapped(a.extraneous, ex, maxDeletes)
		if err == nil && i+1 < len(a.sp.Ranges) {
			err = a.save(ctx, checkpoint{Range: i + 1}, a.prog.Snapshot(), a.extraneous)
		}
	}
	return err
}

// save saves checkpoint c: the report flushed first, so that c says how
// far it goes.
func (a *shardAttempt) save(ctx context.Context, c checkpoint, counts Counts, ex []string) error {
	if err := a.rep.flush(ctx); err != nil {
		return &checkpointError{err}
	}
	c.ReportSeq = a.rep.last()
	st := shardState{Counts: counts, DeleteKeys: ex, Checkpoint: &c, Resumed: a.resumed}
	if err := a.s.saveShard(ctx, a.sp.Run, a.sp.N, st, &a.rev); err != nil {
		return &checkpointError{err}
	}
	return nil
}

// finish saves the shard's outcome; err is its march's.
func (a *shardAttempt) finish(ctx context.Context, err error) error {
	if ferr := a.rep.flush(ctx); err == nil {
		err = ferr
	}
	final := shardState{Counts: a.prog.Snapshot(), Done: true, Resumed: a.resumed}
	if err != nil {
		final.Error = err.Error()
		a.log.Error("reconcile shard failed", "err", err)
	}
	if a.sp.Options.Mode == ModeSync && err == nil {
		final.DeleteKeys = a.extraneous
	}
	if perr := a.s.saveShard(ctx, a.sp.Run, a.sp.N, final, &a.rev); perr != nil {
		return perr
	}
	// elapsed is this attempt's: with listed (of a shard never resumed),
	// the listing rate of one shard, what a run's time is projected from.
	a.log.Info("reconcile shard done", "listed", final.Listed, "missing", final.Missing, "different", final.Different,
		"extraneous", final.Extraneous, "resumed", a.resumed, "elapsed", time.Since(a.started).Round(time.Millisecond))
	return nil
}

// checkpointError is a checkpoint that could not be saved: the shard stops
// without an outcome, and its next delivery goes on from the last one saved.
type checkpointError struct{ err error }

func (e *checkpointError) Error() string { return "save the shard's checkpoint: " + e.err.Error() }

func (e *checkpointError) Unwrap() error { return e.err }

// addCapped appends b to a copy of a, unless a already holds more than
// limit keys (then none will be deleted anyway).
func addCapped(a, b []string, limit int) []string {
	out := slices.Clone(a)
	if len(out) <= limit {
		out = append(out, b...)
	}
	return out
}
