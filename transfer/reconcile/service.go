package reconcile

// The service: one replica's reconciler, what it is given and the JetStream
// assets it keeps its runs in.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// MaxShards is the default of ServiceConfig.MaxShards, and the most shards
// a task may ask for.
const MaxShards = 1024

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
	Shards int
	// MaxShards caps the shards of a run (default MaxShards): past
	// RangesPerShard*MaxShards prefixes, shards hold more ranges.
	MaxShards int
	ReportAge time.Duration // how long reports are kept (default 7 days)
	// A running shard saves a checkpoint (one KV write) every
	// CheckpointKeys keys (default 20000) or CheckpointEvery (default
	// 2s), whichever comes first, and at the end of each of its ranges.
	CheckpointKeys  int
	CheckpointEvery time.Duration
	// Clock is the time schedules follow (default the real one; tests
	// inject theirs).
	Clock Clock
}

func (cfg ServiceConfig) withDefaults() ServiceConfig {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
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
	if cfg.MaxShards <= 0 {
		cfg.MaxShards = MaxShards
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
	return cfg
}

// Service starts, coordinates and reports reconcile runs. Every replica
// has one; a run's shards are jobs on the work queue, so every replica's
// workers share a run, and a run's state lives in JetStream KV, so any
// replica answers for any run.
type Service struct {
	cfg   ServiceConfig
	js    jetstream.JetStream // the report stream's messages
	runs  jetstream.KeyValue  // RunsBucket
	locks jetstream.KeyValue  // LocksBucket
	queue Publisher
	tasks Tasks
	m     *metrics.Metrics
	log   *slog.Logger

	stop <-chan struct{} // closed when the coordinators must stop: NewService's ctx is done
	wg   sync.WaitGroup  // the coordinators and the runs bucket's watch

	tallies *tallies
	idle    *idleQueue
	success *lastSuccess
	meter   *Meter
	active  activeRuns // the runs whose progress this replica exports
}

// Tasks gives the reconciler the tasks as the configuration has them now.
// A configuration reload replaces them: Current returns the set with a
// channel that is closed when it is replaced (nil: never), so that
// Schedule follows the new schedules. A run keeps the task it started
// with.
type Tasks interface {
	Current() (tasks map[string]*TaskSides, replaced <-chan struct{})
}

// StaticTasks is a task set that is never replaced (the one-shot
// commands, tests).
type StaticTasks map[string]*TaskSides

// Current returns s; it is never replaced.
func (s StaticTasks) Current() (map[string]*TaskSides, <-chan struct{}) { return s, nil }

// task returns the task named name as configured now, or nil.
func (s *Service) task(name string) *TaskSides {
	tasks, _ := s.tasks.Current()
	return tasks[name]
}

// NewService creates (or opens) the reconciler's JetStream assets through
// js: the KV buckets and the report stream. The runs this replica
// coordinates live until ctx is done.
func NewService(ctx context.Context, js jetstream.JetStream, queue Publisher, tasks Tasks,
	cfg ServiceConfig, m *metrics.Metrics, log *slog.Logger) (*Service, error) {
	cfg = cfg.withDefaults()
	runs, locks, err := createAssets(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, js: js, runs: runs, locks: locks, queue: queue, tasks: tasks, m: m, log: log,
		stop: ctx.Done(), tallies: newTallies(runs, cfg.Owner, log), idle: &idleQueue{poll: cfg.Poll},
		success: newLastSuccess(cfg.ReportAge, m), meter: NewMeter()}
	s.success.configured = func(task string) bool { return s.task(task) != nil }
	if dq, ok := queue.(Depther); ok {
		s.idle.queue = dq
	}
	if err := s.watchRuns(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// createAssets creates the runs and locks buckets and the report stream,
// or updates them to cfg; every replica does, at once or not.
func createAssets(ctx context.Context, js jetstream.JetStream, cfg ServiceConfig) (runs, locks jetstream.KeyValue, err error) {
	runs, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: RunsBucket, Description: "oss2s3 reconcile runs: state and progress of each run and shard",
		History: 1, TTL: cfg.ReportAge, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create key-value bucket %s: %w", RunsBucket, err)
	}
	locks, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: LocksBucket, Description: "oss2s3 reconcile locks: the run in progress per task; expire unless renewed",
		History: 1, TTL: cfg.LockTTL, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create key-value bucket %s: %w", LocksBucket, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: ReportStream, Description: "oss2s3 reconcile reports: JSON lines of what each run found, per shard",
		Subjects: []string{ReportSubject + ">"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
		Replicas: cfg.Replicas, MaxAge: cfg.ReportAge,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create stream %s: %w", ReportStream, err)
	}
	// Shard jobs run under contexts hours long: a lost reply must not
	// hold one for ever.
	return transfer.BoundedKV(runs, 0), transfer.BoundedKV(locks, 0), nil
}

// Wait waits for the runs this replica coordinates to stop (they stop
// when the ctx NewService was given is done).
func (s *Service) Wait() { s.wg.Wait() }

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
