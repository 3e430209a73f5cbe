package reconcile

// Last success: the oss2s3_reconcile_last_success_timestamp_seconds gauge,
// kept right on every replica by watching the runs bucket.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/metrics"
)

// success is a successful run, as the last-success gauge needs it.
type success struct {
	task     string
	finished time.Time
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
		s.success.forget(id)
		return
	}
	var st RunState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		s.log.Warn("unreadable reconcile run in the runs bucket", "key", e.Key(), "err", err)
		return
	}
	st.ID = id
	s.noteRun(st)
	if s.task(st.Task) != nil {
		s.active.note(st, time.Now())
	}
}

// noteRun counts st in the last-success gauge if it is a successful run.
// The runs of every task are kept, not only those of the tasks configured
// now: a reload that adds a task exports its newest success at once.
func (s *Service) noteRun(st RunState) {
	if !st.Done || st.Error != "" || st.Finished.IsZero() {
		return
	}
	s.success.note(st.ID, success{task: st.Task, finished: st.Finished})
}

// lastSuccess owns the successful runs the runs bucket records (as its
// watcher told, or this replica's coordinators), so that every replica
// exports the newest one's finish as
// oss2s3_reconcile_last_success_timestamp_seconds, from its start on,
// whichever replica coordinated the run.
type lastSuccess struct {
	keep time.Duration    // how long the runs bucket keeps a run
	m    *metrics.Metrics // may be nil
	// configured tells the tasks that have a series: those of the
	// configuration in use (nil: every task).
	configured func(task string) bool

	mu   sync.Mutex
	runs map[string]success // run id -> task and finish
}

func newLastSuccess(keep time.Duration, m *metrics.Metrics) *lastSuccess {
	return &lastSuccess{keep: keep, m: m, runs: map[string]success{}}
}

func (l *lastSuccess) note(id string, sc success) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs[id] = sc
	l.export(sc.task)
}

func (l *lastSuccess) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc, ok := l.runs[id]
	if !ok {
		return
	}
	delete(l.runs, id)
	l.export(sc.task)
}

// refresh exports every task again after a reload: the series of the
// tasks added appear, those of the tasks removed go.
func (l *lastSuccess) refresh(removed []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tasks := map[string]bool{}
	for _, sc := range l.runs {
		tasks[sc.task] = true
	}
	for _, t := range removed {
		tasks[t] = true
	}
	for t := range tasks {
		l.export(t)
	}
}

// export sets task's gauge to its newest success, or removes the series
// if none is recorded. Successes older than the bucket keeps runs are
// forgotten (they expired from it; expiry sends no word), except the
// newest: it is still the truth, and an overdue alert should see it.
// l.mu is held.
func (l *lastSuccess) export(task string) {
	var newest time.Time
	newestID := ""
	for id, sc := range l.runs {
		if sc.task == task && sc.finished.After(newest) {
			newest, newestID = sc.finished, id
		}
	}
	expired := time.Now().Add(-l.keep)
	for id, sc := range l.runs {
		if sc.task == task && id != newestID && sc.finished.Before(expired) {
			delete(l.runs, id)
		}
	}
	if l.m == nil {
		return
	}
	if newestID == "" || (l.configured != nil && !l.configured(task)) {
		l.m.ReconcileLastSuccess.DeleteLabelValues(task)
		return
	}
	l.m.ReconcileLastSuccess.WithLabelValues(task).Set(float64(newest.Unix()))
}
