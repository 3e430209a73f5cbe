package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/robfig/cron/v3"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// Names of the JetStream objects the reconciler keeps its runs in, shared
// by every replica.
const (
	RunsBucket    = "oss2s3_reconcile_runs"  // run.<id> and shard.<id>.<n>
	LocksBucket   = "oss2s3_reconcile_locks" // one key per task with a run in progress
	ReportStream  = "OSS2S3_RECONCILE_REPORTS"
	ReportSubject = "oss2s3.reconcile.report." // + <id>.<shard>
)

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
	ID         string    `json:"id"`
	Task       string    `json:"task"`
	Mode       string    `json:"mode"`
	Verify     string    `json:"verify"`
	MaxDeletes int       `json:"max_deletes"`
	Prefixes   []string  `json:"prefixes,omitempty"`
	Trigger    string    `json:"trigger,omitempty"` // api, schedule, start, cli
	Owner      string    `json:"owner"`             // the replica coordinating it
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished,omitzero"`
	Shards     int       `json:"shards"`
	ShardsDone int       `json:"shards_done"`
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
	CopiesDone   bool    `json:"copies_done"`
	CopiesDoneBy string  `json:"copies_done_by,omitempty"`
	Elapsed      float64 `json:"elapsed_seconds"`
	Done         bool    `json:"done"`
	Error        string  `json:"error,omitempty"`
}

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

// TaskSides is one task with what a diff of it needs.
type TaskSides struct {
	Runtime  *transfer.TaskRuntime
	Src, Dst Lister
}

// NewTaskSides lists a task's OSS source and S3 destination through the
// clients its runtime already has.
func NewTaskSides(rt *transfer.TaskRuntime) *TaskSides {
	dst := rt.Destination.(*transfer.S3Destination)
	return &TaskSides{Runtime: rt,
		Src: &OSSLister{Bucket: rt.Source.(*transfer.OSSSource).Bucket()},
		Dst: &S3Lister{Client: dst.Client(), Bucket: dst.BucketName()}}
}

// ServiceConfig shapes the reconciler of one process.
type ServiceConfig struct {
	Replicas int           // of the KV buckets and the report stream
	LockTTL  time.Duration // a coordinator silent this long loses its task's lock (default 1m)
	Poll     time.Duration // how often the coordinator sums the shards (default 1s)
	Owner    string        // this replica's name
	// RangesPerShard groups a task's prefixes into shards (default 64).
	RangesPerShard int
	// Shards is about how many key-range shards a run of fewer prefixes
	// is cut into (default 32).
	Shards    int
	ReportAge time.Duration // how long reports are kept (default 7 days)
	// A running shard saves a checkpoint (one KV write) every
	// CheckpointKeys keys (default 20000) or CheckpointEvery (default
	// 2s), whichever comes first, and at the end of each of its ranges.
	CheckpointKeys  int
	CheckpointEvery time.Duration
}

// Service starts, coordinates and reports reconcile runs. Every replica
// has one; a run's shards are jobs on the work queue, so every replica's
// workers share a run, and a run's state lives in JetStream KV, so any
// replica answers for any run.
type Service struct {
	cfg     ServiceConfig
	js      jetstream.JetStream
	runs    jetstream.KeyValue
	locks   jetstream.KeyValue
	reports jetstream.Stream
	queue   Publisher
	tasks   map[string]*TaskSides
	m       *metrics.Metrics
	log     *slog.Logger

	ctx context.Context // the coordinators' lifetime
	wg  sync.WaitGroup

	flushMu sync.Mutex // held by flushTallies
	doneMu  sync.Mutex
	done    map[string]*jobTally // run id -> copies this replica finished

	idleMu    sync.Mutex
	idleSince time.Time // the work queue seen empty on every look since (see queueIdle)

	// succeeded holds the successful runs the runs bucket records (as its
	// watcher told), so that every replica exports the newest one's finish
	// as oss2s3_reconcile_last_success_timestamp_seconds, from its start
	// on, whichever replica coordinated the run.
	succeededMu sync.Mutex
	succeeded   map[string]success // run id -> task and finish
}

// success is a successful run, as the last-success gauge needs it.
type success struct {
	task     string
	finished time.Time
}

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
	dirty        bool
}

// NewService creates (or opens) the KV buckets and the report stream. The
// runs this replica coordinates live until ctx is done.
func NewService(ctx context.Context, js jetstream.JetStream, queue Publisher, tasks map[string]*TaskSides,
	cfg ServiceConfig, m *metrics.Metrics, log *slog.Logger) (*Service, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.RangesPerShard <= 0 {
		cfg.RangesPerShard = 64
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 32
	}
	if cfg.ReportAge <= 0 {
		cfg.ReportAge = 7 * 24 * time.Hour
	}
	if cfg.CheckpointKeys <= 0 {
		cfg.CheckpointKeys = 20000
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 2 * time.Second
	}
	if cfg.Owner == "" {
		cfg.Owner = "oss2s3-" + newID()[:8]
	}
	s := &Service{cfg: cfg, js: js, queue: queue, tasks: tasks, m: m, log: log, ctx: ctx, done: map[string]*jobTally{},
		succeeded: map[string]success{}}
	var err error
	s.runs, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: RunsBucket, Description: "oss2s3 reconcile runs: state and progress of each run and shard",
		History: 1, TTL: cfg.ReportAge, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create key-value bucket %s: %w", RunsBucket, err)
	}
	s.locks, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: LocksBucket, Description: "oss2s3 reconcile locks: the run in progress per task; expire unless renewed",
		History: 1, TTL: cfg.LockTTL, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create key-value bucket %s: %w", LocksBucket, err)
	}
	s.reports, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: ReportStream, Description: "oss2s3 reconcile reports: JSON lines of what each run found, per shard",
		Subjects: []string{ReportSubject + ">"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
		Replicas: cfg.Replicas, MaxAge: cfg.ReportAge,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", ReportStream, err)
	}
	if err := s.watchRuns(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// runsLoadTime bounds how long NewService waits for the runs bucket's
// current runs.
const runsLoadTime = time.Minute

// watchRuns keeps the last-success gauge right on this replica: it reads
// every run the runs bucket holds now (so a replica that restarts exports
// the newest success still recorded before its first scrape, not nothing
// until the next run), then follows the bucket until ctx is done (so it
// learns the runs other replicas finish the moment they are saved). A
// watch rather than a re-read on a timer: one ordered consumer per
// replica, on the run.* keys only, that costs nothing between runs and
// is never stale.
func (s *Service) watchRuns(ctx context.Context) error {
	w, err := s.runs.Watch(ctx, "run.*")
	if err != nil {
		return fmt.Errorf("watch key-value bucket %s: %w", RunsBucket, err)
	}
	load := time.NewTimer(runsLoadTime)
	defer load.Stop()
	for loaded := false; !loaded; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("read key-value bucket %s: the watch ended", RunsBucket)
			}
			if e == nil { // every run recorded now is read
				loaded = true
				break
			}
			s.observeRun(e)
		case <-load.C:
			_ = w.Stop()
			return fmt.Errorf("read key-value bucket %s: no answer in %v", RunsBucket, runsLoadTime)
		case <-ctx.Done():
			_ = w.Stop()
			return ctx.Err()
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					if ctx.Err() == nil {
						s.log.Error("the watch of the reconcile runs ended: oss2s3_reconcile_last_success_timestamp_seconds learns only this replica's runs")
					}
					return
				}
				if e != nil {
					s.observeRun(e)
				}
			}
		}
	}()
	return nil
}

// observeRun takes in one change of a run.<id> key: a run saved, or one
// deleted or purged (then an older success still recorded takes its place).
func (s *Service) observeRun(e jetstream.KeyValueEntry) {
	id := strings.TrimPrefix(e.Key(), "run.")
	if e.Operation() != jetstream.KeyValuePut {
		s.forgetRun(id)
		return
	}
	var st RunState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		s.log.Warn("unreadable reconcile run in the runs bucket", "key", e.Key(), "err", err)
		return
	}
	st.ID = id
	s.noteRun(st)
}

// noteRun counts st in the last-success gauge if it is a successful run of
// a task this replica has.
func (s *Service) noteRun(st RunState) {
	if !st.Done || st.Error != "" || st.Finished.IsZero() || s.tasks[st.Task] == nil {
		return
	}
	s.succeededMu.Lock()
	defer s.succeededMu.Unlock()
	s.succeeded[st.ID] = success{task: st.Task, finished: st.Finished}
	s.exportLastSuccess(st.Task)
}

func (s *Service) forgetRun(id string) {
	s.succeededMu.Lock()
	defer s.succeededMu.Unlock()
	sc, ok := s.succeeded[id]
	if !ok {
		return
	}
	delete(s.succeeded, id)
	s.exportLastSuccess(sc.task)
}

// exportLastSuccess sets task's gauge to its newest success, or removes
// the series if none is recorded. Successes older than the bucket keeps
// runs are forgotten (they expired from it; expiry sends no word), except
// the newest: it is still the truth, and an overdue alert should see it.
// s.succeededMu is held.
func (s *Service) exportLastSuccess(task string) {
	var newest time.Time
	newestID := ""
	for id, sc := range s.succeeded {
		if sc.task == task && sc.finished.After(newest) {
			newest, newestID = sc.finished, id
		}
	}
	expired := time.Now().Add(-s.cfg.ReportAge)
	for id, sc := range s.succeeded {
		if sc.task == task && id != newestID && sc.finished.Before(expired) {
			delete(s.succeeded, id)
		}
	}
	if s.m == nil {
		return
	}
	if newestID == "" {
		s.m.ReconcileLastSuccess.DeleteLabelValues(task)
		return
	}
	s.m.ReconcileLastSuccess.WithLabelValues(task).Set(float64(newest.Unix()))
}

// Wait waits for the runs this replica coordinates to end (their context
// is the one Start was given).
func (s *Service) Wait() { s.wg.Wait() }

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Start begins a run of task: it takes the task's lock (or returns a
// *RunningError), plans the shards, queues them, and coordinates the run
// in the background until it ends or the service's context is done (ctx
// is only for starting).
func (s *Service) Start(ctx context.Context, task string, o Options, trigger string) (RunState, error) {
	ts := s.tasks[task]
	if ts == nil {
		return RunState{}, fmt.Errorf("%w: %q", ErrNoTask, task)
	}
	t := ts.Runtime.Task
	if o.Mode == "" {
		o.Mode = t.Reconcile.Mode
	}
	if o.Verify == "" {
		o.Verify = t.Reconcile.Verify
	}
	if o.MaxDeletes <= 0 {
		o.MaxDeletes = t.Reconcile.MaxDeletes
	}
	o = o.withDefaults()
	if !ValidMode(o.Mode) || !ValidVerify(o.Verify) {
		return RunState{}, fmt.Errorf("mode %q / verify %q: want report|copy|sync|copy_all and size|etag|content", o.Mode, o.Verify)
	}
	id := newID()
	if _, err := s.locks.Create(ctx, lockKey(task), []byte(id)); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			if e, gerr := s.locks.Get(ctx, lockKey(task)); gerr == nil {
				return RunState{}, &RunningError{ID: string(e.Value())}
			}
			return RunState{}, &RunningError{}
		}
		return RunState{}, fmt.Errorf("take the reconcile lock: %w", err)
	}
	st := RunState{ID: id, Task: task, Mode: o.Mode, Verify: o.Verify, MaxDeletes: o.MaxDeletes, Prefixes: o.Prefixes,
		Trigger: trigger, Owner: s.cfg.Owner, Started: time.Now().UTC()}
	specs, err := s.plan(ctx, ts, st, o)
	if err == nil {
		st.Shards = len(specs)
		err = s.putRun(ctx, st)
	}
	if err == nil {
		err = s.queueShards(ctx, t, st, specs)
	}
	if err != nil {
		_ = s.locks.Delete(context.WithoutCancel(ctx), lockKey(task))
		return RunState{}, err
	}
	if s.m != nil {
		s.m.ReconcileRunning.WithLabelValues(task).Set(1)
	}
	s.log.Info("reconcile run started", "task", task, "run", id, "mode", o.Mode, "shards", len(specs), "trigger", trigger)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.coordinate(s.ctx, ts, st, o)
	}()
	return st, nil
}

func lockKey(task string) string { return "task." + task }

// plan splits a run into shards: its prefixes (the run's, else the
// task's), a few dozen to a shard; or, with fewer prefixes than
// ServiceConfig.Shards (a whole bucket is one range), key ranges cut where
// the source's keys fan out (see Split), one to a shard, so that every
// replica works on a huge bucket, flat or not.
func (s *Service) plan(ctx context.Context, ts *TaskSides, st RunState, o Options) ([]shardSpec, error) {
	ranges := o.Ranges(ts.Runtime.Task)
	perShard := s.cfg.RangesPerShard
	if len(ranges) < s.cfg.Shards {
		var pieces []Range
		for _, r := range ranges {
			ps, err := Split(ctx, ts.Src, r, max(2, s.cfg.Shards/len(ranges)))
			if err != nil {
				return nil, fmt.Errorf("plan shards: %w", err)
			}
			pieces = append(pieces, ps...)
		}
		ranges, perShard = pieces, 1
	}
	var specs []shardSpec
	for len(ranges) > 0 {
		n := min(len(ranges), perShard)
		specs = append(specs, shardSpec{Run: st.ID, N: len(specs), Ranges: ranges[:n], Options: o})
		ranges = ranges[n:]
	}
	return specs, nil
}

func (s *Service) queueShards(ctx context.Context, t *transfer.Task, st RunState, specs []shardSpec) error {
	jobs := make([]transfer.Job, 0, len(specs))
	for _, sp := range specs {
		raw, err := json.Marshal(sp)
		if err != nil {
			return err
		}
		jobs = append(jobs, transfer.Job{Task: t.Name, Bucket: t.Source.Bucket, Key: fmt.Sprintf("reconcile:%s:%d", st.ID, sp.N),
			Kind: transfer.KindReconcile, Origin: "reconcile", EventTime: st.Started, Nonce: st.ID, Shard: string(raw)})
	}
	for len(jobs) > 0 {
		b := jobs[:min(len(jobs), 1000)]
		if _, err := s.queue.Publish(ctx, b); err != nil {
			return fmt.Errorf("queue reconcile shards: %w", err)
		}
		jobs = jobs[len(b):]
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
	t := s.tally(ctx, id)
	st.Copied, st.Failed, st.Skipped = t.Copied, t.Failed, t.Skipped
	st.Jobs = st.Queued
	if st.Done && st.Copied+st.Failed+st.Skipped < st.Jobs && s.queueIdle(ctx) {
		// Before falling back on the idle queue, this replica's own
		// counts are saved now rather than at its next tick (which a
		// loaded machine can delay past the idle wait), and summed again.
		s.flushTallies(ctx)
		t = s.tally(ctx, id)
		st.Copied, st.Failed, st.Skipped = t.Copied, t.Failed, t.Skipped
		st.CopiesDone, st.CopiesDoneBy = true, "idle_queue"
	}
	if st.Done && st.Copied+st.Failed+st.Skipped >= st.Jobs {
		st.CopiesDone, st.CopiesDoneBy = true, "tally"
	}
	return st, nil
}

// Depther tells how many jobs the work queue holds, waiting or in flight
// (transfer.Queue).
type Depther interface {
	Depth(ctx context.Context) (uint64, error)
}

// queueIdle reports whether this replica has seen the work queue empty
// (no job waiting, in flight or waiting for a retry) on every look for at
// least two polls, long enough for every replica to save the tallies of
// the jobs that ended before. It ends the wait for a run's copies whose
// results were not all counted (see CopiesDoneBy): once the queue is
// empty, none of them can still be running.
func (s *Service) queueIdle(ctx context.Context) bool {
	dq, ok := s.queue.(Depther)
	if !ok {
		return false
	}
	n, err := dq.Depth(ctx)
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if err != nil || n > 0 {
		s.idleSince = time.Time{}
		return false
	}
	if s.idleSince.IsZero() {
		s.idleSince = time.Now()
	}
	return time.Since(s.idleSince) >= 2*s.cfg.Poll
}

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
	s.doneMu.Lock()
	defer s.doneMu.Unlock()
	t := s.done[id]
	if t == nil {
		t = &jobTally{}
		s.done[id] = t
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
			s.flushTallies(context.WithoutCancel(ctx))
			return
		case <-t.C:
			s.flushTallies(ctx)
		}
	}
}

func (s *Service) flushTallies(ctx context.Context) {
	// One flush at a time: two could otherwise store a run's counts out
	// of order, the older last.
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.doneMu.Lock()
	save := map[string][]byte{}
	for id, t := range s.done {
		if t.dirty {
			save[id], _ = json.Marshal(t)
			t.dirty = false
		}
	}
	s.doneMu.Unlock()
	for id, raw := range save {
		if _, err := s.runs.Put(ctx, "done."+id+"."+kvToken(s.cfg.Owner), raw); err != nil {
			s.log.Warn("save reconcile job tally", "run", id, "err", err)
		}
	}
}

// tally sums the replicas' tallies of run id; FailedGiants counted in
// Failed, each once.
func (s *Service) tally(ctx context.Context, id string) (sum jobTally) {
	kl, err := s.runs.ListKeysFiltered(ctx, "done."+id+".*")
	if err != nil {
		return sum
	}
	defer func() { _ = kl.Stop() }()
	giants := map[string]bool{}
	for k := range kl.Keys() {
		e, err := s.runs.Get(ctx, k)
		if err != nil {
			continue
		}
		var t jobTally
		if json.Unmarshal(e.Value(), &t) == nil {
			sum.Copied += t.Copied
			sum.Failed += t.Failed
			sum.Skipped += t.Skipped
			for _, g := range t.FailedGiants {
				giants[g] = true
			}
		}
	}
	sum.Failed += int64(len(giants))
	return sum
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

// coordinate keeps the task's lock alive, sums the shards' progress into
// the run's state, and ends the run when every shard is done: a sync run
// deletes then, and only if no shard had an error.
func (s *Service) coordinate(ctx context.Context, ts *TaskSides, st RunState, o Options) {
	task := st.Task
	log := s.log.With("task", task, "run", st.ID)
	defer func() {
		if s.m != nil {
			s.m.ReconcileRunning.WithLabelValues(task).Set(0)
		}
	}()
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	renew := time.Now()
	for {
		select {
		case <-ctx.Done():
			log.Warn("reconcile coordinator stopped before the run ended; the lock expires", "ttl", s.cfg.LockTTL)
			return
		case <-tick.C:
		}
		if time.Since(renew) > s.cfg.LockTTL/4 {
			if _, err := s.locks.Put(ctx, lockKey(task), []byte(st.ID)); err != nil {
				log.Warn("renew the reconcile lock", "err", err)
			} else {
				renew = time.Now()
			}
		}
		var sum Counts
		done := 0
		var errs []string
		var extraneous []string
		for n := range st.Shards {
			ss, ok, err := s.shard(ctx, st.ID, n)
			if err != nil {
				log.Warn("read shard state", "shard", n, "err", err)
				continue
			}
			if !ok {
				continue
			}
			sum = sum.Add(ss.Counts)
			if ss.Done {
				done++
				if ss.Error != "" {
					errs = append(errs, fmt.Sprintf("shard %d: %s", n, ss.Error))
				}
				if len(extraneous) <= o.MaxDeletes {
					extraneous = append(extraneous, ss.DeleteKeys...)
				}
			}
		}
		st.Counts, st.ShardsDone = sum, done
		if done < st.Shards {
			if err := s.putRun(ctx, st); err != nil {
				log.Warn("save run state", "err", err)
			}
			continue
		}
		if len(errs) == 0 && o.Mode == ModeSync {
			d := &Diff{Task: ts.Runtime.Task, Destination: ts.Runtime.Destination, Metrics: s.m, Log: s.log, RunID: st.ID,
				Progress: &Progress{}, Report: s.reporter(st.ID, st.Shards)}
			if err := DeleteExtraneous(ctx, d, extraneous, o.MaxDeletes); err != nil {
				errs = append(errs, err.Error())
			}
			st.Deleted += d.Progress.Deleted.Load()
			if sr, ok := d.Report.(*streamReport); ok {
				if err := sr.flush(ctx); err != nil {
					errs = append(errs, err.Error())
				}
			}
		}
		st.Done, st.Finished = true, time.Now().UTC()
		st.Error = strings.Join(errs, "; ")
		// Counted before the final state is saved: whoever reads the run
		// as done finds it in the metrics too.
		s.finished(st, log)
		if err := s.putRun(ctx, st); err != nil {
			log.Error("save the run's final state", "err", err)
		}
		if err := s.release(ctx, task, st.ID); err != nil {
			log.Warn("release the reconcile lock (it expires)", "err", err)
		}
		return
	}
}

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

func (s *Service) finished(st RunState, log *slog.Logger) {
	result := metrics.RunSucceeded
	if st.Error != "" {
		result = metrics.RunFailed
	}
	if s.m != nil {
		s.m.ReconcileRuns.WithLabelValues(st.Task, result).Inc()
		s.m.ReconcileDuration.WithLabelValues(st.Task).Observe(st.Finished.Sub(st.Started).Seconds())
	}
	s.noteRun(st) // now, not only when the watch brings it back
	args := []any{"listed", st.Listed, "missing", st.Missing, "different", st.Different, "extraneous", st.Extraneous,
		"queued", st.Queued, "deleted", st.Deleted, "errors", st.Errors, "elapsed", st.Finished.Sub(st.Started).Round(time.Millisecond)}
	if st.Error != "" {
		log.Error("reconcile run failed", append(args, "err", st.Error)...)
		return
	}
	log.Info("reconcile run finished", args...)
}

// RunShard implements transfer.ShardRunner: it diffs a shard's ranges and
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
	if err := json.Unmarshal([]byte(job.Shard), &sp); err != nil {
		return transfer.Permanent(fmt.Errorf("reconcile shard: %w", err))
	}
	ts := s.tasks[job.Task]
	if ts == nil {
		return transfer.Permanent(fmt.Errorf("reconcile shard: %w: %q", ErrNoTask, job.Task))
	}
	log = log.With("run", sp.Run, "shard", sp.N)
	ss, rev, err := s.shardRev(ctx, sp.Run, sp.N)
	if err != nil {
		return fmt.Errorf("read reconcile shard state: %w", err)
	}
	if ss.Done {
		return nil // done already (a duplicate delivery)
	}
	rep := s.reporter(sp.Run, sp.N)
	prog := &Progress{}
	var cp checkpoint
	var extraneous []string
	if ss.Checkpoint != nil && ss.Checkpoint.Range <= len(sp.Ranges) {
		cp = *ss.Checkpoint
		prog.Restore(ss.Counts)
		extraneous = ss.DeleteKeys
		ss.Resumed++
		if err := rep.resume(ctx, cp.ReportSeq); err != nil {
			return err
		}
		log.Info("reconcile shard resumed from its checkpoint", "range", cp.Range, "after", cp.After,
			"listed", ss.Listed, "resumed", ss.Resumed)
	} else if err := rep.purge(ctx); err != nil {
		return err
	}
	resumed := ss.Resumed
	save := func(ctx context.Context, c checkpoint, counts Counts, ex []string) error {
		if err := rep.flush(ctx); err != nil {
			return &checkpointError{err}
		}
		c.ReportSeq = rep.last()
		st := shardState{Counts: counts, DeleteKeys: ex, Checkpoint: &c, Resumed: resumed}
		if err := s.saveShard(ctx, sp.Run, sp.N, st, &rev); err != nil {
			return &checkpointError{err}
		}
		return nil
	}
	d := &Diff{Task: ts.Runtime.Task, Src: ts.Src, Dst: ts.Dst, Source: ts.Runtime.Source, Destination: ts.Runtime.Destination,
		Queue: s.queue, Report: rep, Metrics: s.m, Log: log, RunID: sp.Run, Options: sp.Options, Progress: prog,
		CheckpointKeys: s.cfg.CheckpointKeys, CheckpointEvery: s.cfg.CheckpointEvery}
	if op, ok := ts.Runtime.Destination.(Opener); ok {
		d.DstOpener = op
	}
	maxDeletes := sp.Options.withDefaults().MaxDeletes
	for i := cp.Range; i < len(sp.Ranges) && err == nil; i++ {
		rg := sp.Ranges[i]
		if i == cp.Range && cp.After != "" {
			rg.After = cp.After // both listings start after it
		}
		before := extraneous // the earlier ranges'
		d.OnCheckpoint = func(ctx context.Context, c Checkpoint) error {
			return save(ctx, checkpoint{Range: i, After: c.Key}, c.Counts, addCapped(before, c.Extraneous, maxDeletes))
		}
		var ex []string
		ex, err = d.RunRange(ctx, rg)
		extraneous = addCapped(extraneous, ex, maxDeletes)
		if err == nil && i+1 < len(sp.Ranges) {
			err = save(ctx, checkpoint{Range: i + 1}, prog.Snapshot(), extraneous)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: another replica goes on from the checkpoint
	}
	if ce := (*checkpointError)(nil); errors.As(err, &ce) {
		return err // the queue delivers the shard again; it goes on from the last checkpoint saved
	}
	if ferr := rep.flush(ctx); err == nil {
		err = ferr
	}
	final := shardState{Counts: prog.Snapshot(), Done: true, Resumed: resumed}
	if err != nil {
		final.Error = err.Error()
		log.Error("reconcile shard failed", "err", err)
	}
	if sp.Options.Mode == ModeSync && err == nil {
		final.DeleteKeys = extraneous
	}
	if perr := s.saveShard(ctx, sp.Run, sp.N, final, &rev); perr != nil {
		return perr
	}
	log.Info("reconcile shard done", "listed", final.Listed, "missing", final.Missing, "different", final.Different,
		"extraneous", final.Extraneous, "resumed", resumed)
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

// streamReport writes report lines into the report stream, many lines to a
// message, one subject per shard. A shard that starts over purges its
// subject; one that goes on from its checkpoint deletes the messages
// written after it (see resume), so a key's lines are never there twice.
type streamReport struct {
	js      jetstream.JetStream
	subject string
	attempt string // in the message ids: another attempt's messages are not duplicates
	mu      sync.Mutex
	buf     []byte
	seq     int
	lastSeq uint64 // stream sequence of the shard's last message
}

// reportChunk is about how many bytes of lines a report message holds (a
// variable for the tests).
var reportChunk = 64 << 10

func (s *Service) reporter(id string, shard int) *streamReport {
	return &streamReport{js: s.js, subject: fmt.Sprintf("%s%s.%d", ReportSubject, id, shard), attempt: newID()}
}

func (r *streamReport) Report(ctx context.Context, l ReportLine) error {
	line, err := json.Marshal(l)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(append(r.buf, line...), '\n')
	if len(r.buf) >= reportChunk {
		return r.flushLocked(ctx)
	}
	return nil
}

func (r *streamReport) flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushLocked(ctx)
}

func (r *streamReport) flushLocked(ctx context.Context) error {
	if len(r.buf) == 0 {
		return nil
	}
	msg := &nats.Msg{Subject: r.subject, Data: r.buf, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s/%s/%d", r.subject, r.attempt, r.seq))
	ack, err := r.js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	r.seq++
	r.lastSeq = max(r.lastSeq, ack.Sequence)
	r.buf = nil
	return nil
}

// last is the stream sequence of the last message written (or kept by
// resume); 0 if none.
func (r *streamReport) last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastSeq
}

func (r *streamReport) purge(ctx context.Context) error {
	st, err := r.js.Stream(ctx, ReportStream)
	if err != nil {
		return err
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(r.subject)); err != nil {
		return fmt.Errorf("clear the shard's old report: %w", err)
	}
	r.lastSeq = 0
	return nil
}

// resume deletes the shard's messages after stream sequence keep: the
// lines of the keys an interrupted attempt handled after its checkpoint,
// which this attempt handles again. They are the subject's last few
// messages (a checkpoint flushes the report), deleted newest first.
func (r *streamReport) resume(ctx context.Context, keep uint64) error {
	st, err := r.js.Stream(ctx, ReportStream)
	if err != nil {
		return err
	}
	for {
		m, err := st.GetLastMsgForSubject(ctx, r.subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("read the shard's old report: %w", err)
		}
		if m.Sequence <= keep {
			break
		}
		if err := st.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("delete the report lines past the shard's checkpoint: %w", err)
		}
	}
	r.lastSeq = keep
	return nil
}

// WriteReport copies a run's report (JSON lines) to w.
func (s *Service) WriteReport(ctx context.Context, id string, w io.Writer) error {
	if _, err := s.Get(ctx, id); err != nil {
		return err
	}
	c, err := s.js.OrderedConsumer(ctx, ReportStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{ReportSubject + id + ".>"}})
	if err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	pending := info.NumPending
	for pending > 0 {
		batch, err := c.Fetch(int(min(pending, 100)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if _, err := w.Write(m.Data()); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if got == 0 {
			return errors.New("report: the stream stopped answering")
		}
		pending -= uint64(got)
	}
	return nil
}

// ParseSchedule parses a task's reconcile schedule: a standard cron
// expression (minute hour day month weekday), a descriptor (@hourly,
// @daily), or a fixed rate ("@every 1h").
func ParseSchedule(spec string) (cron.Schedule, error) {
	return cron.ParseStandard(spec)
}

// LongestGap is the longest time between two consecutive activations of
// sched among its next few after from (a weekday-only schedule has a
// longer gap over the weekend than between weekdays).
func LongestGap(sched cron.Schedule, from time.Time) time.Duration {
	var longest time.Duration
	prev := sched.Next(from)
	for range 16 {
		next := sched.Next(prev)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(prev))
		prev = next
	}
	return longest
}

// Schedule starts each task's runs on its schedule (and once now, for
// tasks with on_start) until ctx is done. Every replica schedules; the
// task's lock lets one of them run it, the others skip that time.
func (s *Service) Schedule(ctx context.Context) error {
	c := cron.New()
	for name, ts := range s.tasks {
		rc := ts.Runtime.Task.Reconcile
		start := func(trigger string) {
			st, err := s.Start(ctx, name, Options{}, trigger)
			var re *RunningError
			switch {
			case errors.As(err, &re):
				s.log.Info("reconcile run already in progress: skipped", "task", name, "running", re.ID, "trigger", trigger)
			case err != nil:
				s.log.Error("reconcile run did not start", "task", name, "trigger", trigger, "err", err)
			default:
				_ = st
			}
		}
		if rc.Schedule != "" {
			sched, err := ParseSchedule(rc.Schedule)
			if err != nil {
				return fmt.Errorf("task %s: reconcile.schedule %q: %w", name, rc.Schedule, err)
			}
			c.Schedule(sched, cron.FuncJob(func() { start("schedule") }))
			gap := LongestGap(sched, time.Now())
			if s.m != nil {
				// What the overdue alert measures against.
				s.m.ReconcileInterval.WithLabelValues(name).Set(gap.Seconds())
			}
			if 2*gap > s.cfg.ReportAge {
				s.log.Warn("reconcile runs are kept for less than twice the schedule: a success may expire before the overdue alert would fire; after a restart the alert then counts from the replicas' start",
					"task", name, "schedule", rc.Schedule, "kept", s.cfg.ReportAge)
			}
		}
		if rc.OnStart {
			go start("start")
		}
	}
	c.Start()
	t := time.NewTicker(s.cfg.LockTTL)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-c.Stop().Done()
			return nil
		case <-t.C:
			s.Adopt(ctx)
		}
	}
}

// Adopt takes over the runs whose coordinator died: a run not done whose
// task's lock expired. The replica that takes the lock again coordinates
// it from where its shards are (their state is in KV; shards still queued
// are worked by every replica as before).
func (s *Service) Adopt(ctx context.Context) {
	kl, err := s.runs.ListKeysFiltered(ctx, "run.*")
	if err != nil {
		return
	}
	var keys []string
	for k := range kl.Keys() {
		keys = append(keys, k)
	}
	_ = kl.Stop()
	for _, k := range keys {
		e, err := s.runs.Get(ctx, k)
		if err != nil {
			continue
		}
		var st RunState
		if json.Unmarshal(e.Value(), &st) != nil || st.Done {
			continue
		}
		ts := s.tasks[st.Task]
		if ts == nil {
			continue
		}
		if _, err := s.locks.Create(ctx, lockKey(st.Task), []byte(st.ID)); err != nil {
			continue // still held (by its coordinator, or a newer run)
		}
		st.Owner = s.cfg.Owner
		o := Options{Mode: st.Mode, Verify: st.Verify, MaxDeletes: st.MaxDeletes, Prefixes: st.Prefixes}.withDefaults()
		s.log.Warn("reconcile run adopted: its coordinator went silent", "task", st.Task, "run", st.ID)
		if s.m != nil {
			s.m.ReconcileRunning.WithLabelValues(st.Task).Set(1)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.coordinate(s.ctx, ts, st, o)
		}()
	}
}
