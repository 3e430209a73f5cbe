package reconcile

// Coordinators: the replica holding a run's lock sums its shards and ends
// it; a run whose coordinator went silent is adopted.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// goCoordinate coordinates run st in the background until it ends or the
// service stops (s.stop), whatever becomes of the request that started it.
func (s *Service) goCoordinate(ts *TaskSides, st RunState, o Options) {
	ctx, cancel := context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		s.coordinate(ctx, ts, st, o)
	}()
}

// coordinate keeps the task's lock alive, sums the shards' progress into
// the run's state, and ends the run when every shard is done.
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
		sum := s.sumShards(ctx, st, o.MaxDeletes, log)
		st.Counts, st.ShardsDone = sum.counts, sum.done
		if sum.done < st.Shards {
			if err := s.putRun(ctx, st); err != nil {
				log.Warn("save run state", "err", err)
			}
			continue
		}
		s.end(ctx, ts, st, o, sum, log)
		return
	}
}

// shardsSum is a run's shards, as far as their states in KV tell.
type shardsSum struct {
	counts     Counts
	done       int      // shards done
	errs       []string // of the shards done
	extraneous []string // the done shards' sync deletes; past max_deletes, no more are added
}

func (s *Service) sumShards(ctx context.Context, st RunState, maxDeletes int, log *slog.Logger) shardsSum {
	var sum shardsSum
	for n := range st.Shards {
		ss, ok, err := s.shard(ctx, st.ID, n)
		if err != nil {
			log.Warn("read shard state", "shard", n, "err", err)
			continue
		}
		if !ok {
			continue
		}
		sum.counts = sum.counts.Add(ss.Counts)
		if !ss.Done {
			continue
		}
		sum.done++
		if ss.Error != "" {
			sum.errs = append(sum.errs, fmt.Sprintf("shard %d: %s", n, ss.Error))
		}
		if len(sum.extraneous) <= maxDeletes {
			sum.extraneous = append(sum.extraneous, ss.DeleteKeys...)
		}
	}
	return sum
}

// end ends a run whose shards are all done: a sync run deletes then, and
// only if no shard had an error. The run's final state is saved and its
// lock released.
func (s *Service) end(ctx context.Context, ts *TaskSides, st RunState, o Options, sum shardsSum, log *slog.Logger) {
	errs := sum.errs
	if len(errs) == 0 && o.Mode == ModeSync {
		deleted, derrs := s.syncDeletes(ctx, ts, st, o, sum.extraneous)
		st.Deleted += deleted
		errs = append(errs, derrs...)
	}
	st.Done, st.Finished = true, time.Now().UTC()
	st.Error = strings.Join(errs, "; ")
	// Counted before the final state is saved: whoever reads the run
	// as done finds it in the metrics too.
	s.finished(st, log)
	if err := s.putRun(ctx, st); err != nil {
		log.Error("save the run's final state", "err", err)
	}
	if err := s.release(ctx, st.Task, st.ID); err != nil {
		log.Warn("release the reconcile lock (it expires)", "err", err)
	}
}

// syncDeletes deletes the destination-only objects of a clean sync run,
// reporting them after the shards' reports (as shard number st.Shards).
func (s *Service) syncDeletes(ctx context.Context, ts *TaskSides, st RunState, o Options, extraneous []string) (int64, []string) {
	var errs []string
	rep := s.reporter(st.ID, st.Shards)
	d := &Diff{Task: ts.Runtime.Task, Destination: ts.Runtime.Destination, Metrics: s.m, Log: s.log, RunID: st.ID,
		Progress: &Progress{}, Report: rep}
	if err := DeleteExtraneous(ctx, d, extraneous, o.MaxDeletes); err != nil {
		errs = append(errs, err.Error())
	}
	if err := rep.flush(ctx); err != nil {
		errs = append(errs, err.Error())
	}
	return d.Progress.Deleted.Load(), errs
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

// Adopt takes over the runs whose coordinator died: a run not done whose
// task's lock expired. The replica that takes the lock again coordinates
// it from where its shards are (their state is in KV; shards still queued
// are worked by every replica as before).
func (s *Service) Adopt(ctx context.Context) {
	keys, err := transfer.ListKeys(ctx, s.runs, "run.*")
	if err != nil {
		return
	}
	for _, k := range keys {
		e, err := s.runs.Get(ctx, k)
		if err != nil {
			continue
		}
		var st RunState
		if json.Unmarshal(e.Value(), &st) != nil || st.Done {
			continue
		}
		ts := s.task(st.Task)
		if ts == nil {
			continue
		}
		if _, err := s.locks.Create(ctx, lockKey(st.Task), []byte(st.ID)); err != nil {
			continue // still held (by its coordinator, or a newer run)
		}
		st.Owner = s.cfg.Owner
		// The shards are queued already: coordinating needs no prefixes.
		o := Options{Mode: st.Mode, Verify: st.Verify, MaxDeletes: st.MaxDeletes}.withDefaults()
		s.log.Warn("reconcile run adopted: its coordinator went silent", "task", st.Task, "run", st.ID)
		if s.m != nil {
			s.m.ReconcileRunning.WithLabelValues(st.Task).Set(1)
		}
		s.goCoordinate(ts, st, o)
	}
}
