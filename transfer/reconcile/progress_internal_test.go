package reconcile

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oss2s3/oss2s3/metrics"
)

func val(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprintf("%.4g", *p)
}

// TestProgress pins how a run's percentage and ETA follow from its counts
// and the moving rate.
func TestProgress(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

	t.Run("ListingOfAWholeBucket", func(t *testing.T) {
		m := NewMeter()
		st := RunState{ID: "r", Mode: ModeCopy, SourceObjects: 1000}
		p := m.Progress(&st, t0)
		if p.Phase != PhaseListing || val(p.Percent) != "0" || p.ETASeconds != nil {
			t.Fatalf("first look: phase %s, %s%%, eta %s (no rate yet)", p.Phase, val(p.Percent), val(p.ETASeconds))
		}
		st.Listed = 250
		p = m.Progress(&st, t0.Add(10*time.Second))
		if val(p.Listing.Percent) != "25" || p.Listing.Rate != 25 || val(p.Listing.ETASeconds) != "30" {
			t.Fatalf("listing: %s%%, %v/s, eta %s; want 25%%, 25/s, 30 s", val(p.Listing.Percent), p.Listing.Rate, val(p.Listing.ETASeconds))
		}
		if val(p.Percent) != "25" || val(p.ETASeconds) != "30" {
			t.Fatalf("run: %s%%, eta %s; want the listing's", val(p.Percent), val(p.ETASeconds))
		}
		// The stat is an estimate: a listing past it is not 100% done.
		st.Listed = 1200
		p = m.Progress(&st, t0.Add(20*time.Second))
		if val(p.Percent) != "99.9" || p.ETASeconds != nil {
			t.Fatalf("listing past the stat: %s%%, eta %s; want 99.9%% and no ETA", val(p.Percent), val(p.ETASeconds))
		}
	})

	t.Run("ListingOfPrefixesHasNoShare", func(t *testing.T) {
		m := NewMeter()
		st := RunState{ID: "r", Mode: ModeReport, Counts: Counts{Listed: 10}}
		m.Progress(&st, t0)
		st.Listed = 30
		p := m.Progress(&st, t0.Add(2*time.Second))
		if p.Percent != nil || p.ETASeconds != nil || p.Listing.Rate != 10 {
			t.Fatalf("no total: %s%%, eta %s, rate %v; want unknown, unknown, 10/s", val(p.Percent), val(p.ETASeconds), p.Listing.Rate)
		}
	})

	t.Run("CopiesAfterTheDiffByBytes", func(t *testing.T) {
		m := NewMeter()
		st := RunState{ID: "r", Mode: ModeCopy, Done: true, Jobs: 10, Counts: Counts{Listed: 50, QueuedBytes: 1000}}
		m.Progress(&st, t0)
		st.Copied, st.BytesDone = 4, 400
		p := m.Progress(&st, t0.Add(10*time.Second))
		if p.Phase != PhaseCopying || val(p.Copies.Percent) != "40" || p.Copies.Rate != 40 || val(p.Copies.ETASeconds) != "15" {
			t.Fatalf("copies: %s %s%%, %v B/s, eta %s; want copying 40%%, 40 B/s, 15 s", p.Phase, val(p.Copies.Percent), p.Copies.Rate, val(p.Copies.ETASeconds))
		}
		if val(p.Percent) != "40" || val(p.ETASeconds) != "15" || val(p.Listing.Percent) != "100" {
			t.Fatalf("run: %s%%, eta %s, listing %s%%; want the copies' and a listing done", val(p.Percent), val(p.ETASeconds), val(p.Listing.Percent))
		}
	})

	t.Run("BothPhasesTheOneBehindAndTheLaterEnd", func(t *testing.T) {
		m := NewMeter()
		st := RunState{ID: "r", Mode: ModeCopy, SourceObjects: 100, Jobs: 10, Counts: Counts{QueuedBytes: 100}}
		m.Progress(&st, t0)
		st.Listed, st.Jobs, st.QueuedBytes, st.Copied, st.BytesDone = 50, 20, 200, 18, 180
		p := m.Progress(&st, t0.Add(10*time.Second))
		// listing 50% at 5/s: 10 s left; copies 90% at 18 B/s: 1.1 s left.
		if val(p.Percent) != "50" || val(p.ETASeconds) != "10" {
			t.Fatalf("run: %s%%, eta %s; want 50%% and 10 s", val(p.Percent), val(p.ETASeconds))
		}
	})

	t.Run("Done", func(t *testing.T) {
		m := NewMeter()
		st := RunState{ID: "r", Mode: ModeCopy, Done: true, CopiesDone: true, Jobs: 3, Copied: 3}
		p := m.Progress(&st, t0)
		if p.Phase != PhaseDone || val(p.Percent) != "100" || val(p.ETASeconds) != "0" {
			t.Fatalf("done: %s %s%% eta %s", p.Phase, val(p.Percent), val(p.ETASeconds))
		}
		if len(m.runs) != 0 {
			t.Fatal("a run done is still metered")
		}
		rep := RunState{ID: "q", Mode: ModeReport, Done: true}
		if p := m.Progress(&rep, t0); p.Phase != PhaseDone {
			t.Fatalf("a report run done is %s", p.Phase)
		}
	})
}

// TestMeter: the rate is over the last minute only, and the meter's memory
// is bounded.
func TestMeter(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	m := NewMeter()
	m.observe("r", sample{at: t0})
	m.observe("r", sample{at: t0.Add(100 * time.Second), listed: 100})
	if r, _, _, ok := m.observe("r", sample{at: t0.Add(110 * time.Second), listed: 1100}); !ok || r != 100 {
		t.Fatalf("rate %v (ok %v), want 100/s over the last minute, not 10/s since the start", r, ok)
	}
	if _, _, _, ok := m.observe("s", sample{at: t0}); ok {
		t.Fatal("a rate from one look")
	}
	for i := range 1000 {
		m.observe(fmt.Sprint("run", i), sample{at: t0.Add(time.Duration(i) * time.Second)})
		m.observe("r", sample{at: t0.Add(time.Duration(i) * time.Second), listed: int64(i)})
	}
	if len(m.runs) > maxMetered || len(m.seen) > maxMetered {
		t.Fatalf("%d runs metered, at most %d", len(m.runs), maxMetered)
	}
	if n := len(m.runs["r"]); n > maxSamples {
		t.Fatalf("%d samples of one run, at most %d", n, maxSamples)
	}
	if _, ok := m.runs["run0"]; ok {
		t.Fatal("the run seen longest ago was kept")
	}
}

// TestProgressGauges: each task's newest run in progress is exported, and
// a task with none (or whose share is not known) has no series.
func TestProgressGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, []string{"a", "b"})
	s := &Service{m: m, tasks: StaticTasks{"a": nil, "b": nil}}
	f := func(v float64) *float64 { return &v }
	s.setProgressGauges(map[string]*RunProgress{"a": {Percent: f(25), ETASeconds: f(30)}, "b": {Percent: f(50)}})
	if got := testutil.ToFloat64(m.ReconcileProgress.WithLabelValues("a")); got != 0.25 {
		t.Fatalf("progress of a = %v, want 0.25", got)
	}
	if got := testutil.ToFloat64(m.ReconcileETA.WithLabelValues("a")); got != 30 {
		t.Fatalf("eta of a = %v, want 30", got)
	}
	s.setProgressGauges(map[string]*RunProgress{"b": {Percent: f(50)}})
	if n := testutil.CollectAndCount(m.ReconcileProgress); n != 1 {
		t.Fatalf("%d progress series with one task running, want 1", n)
	}
	if n := testutil.CollectAndCount(m.ReconcileETA); n != 0 {
		t.Fatalf("%d eta series with no time left known, want 0", n)
	}
}

// TestActiveRuns: the progress loop follows runs in progress, and the
// copies of runs whose diff ended within the hour, not report runs done
// or older runs.
func TestActiveRuns(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	var a activeRuns
	a.note(RunState{ID: "2-running", Task: "t"}, now)
	a.note(RunState{ID: "1-copying", Task: "t", Mode: ModeCopy, Done: true, Finished: now.Add(-time.Minute)}, now)
	a.note(RunState{ID: "0-old", Task: "t", Mode: ModeCopy, Done: true, Finished: now.Add(-2 * time.Hour)}, now)
	a.note(RunState{ID: "3-report", Task: "t", Mode: ModeReport, Done: true, Finished: now}, now)
	if got := fmt.Sprint(a.ids()); got != "[1-copying 2-running]" {
		t.Fatalf("followed %s", got)
	}
	for i := range 1000 {
		a.note(RunState{ID: fmt.Sprint("r", i), Task: "t"}, now)
	}
	if n := len(a.ids()); n > maxMetered {
		t.Fatalf("%d runs followed, at most %d", n, maxMetered)
	}
}
