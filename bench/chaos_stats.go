package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// quantileOf is the nearest-rank q-quantile of ds (unsorted) in unit
// (time.Second, time.Millisecond): a value that was observed, never an
// interpolation. NaN with no sample, so that a figure nobody measured
// cannot pass for a good one.
func quantileOf(ds []time.Duration, q float64, unit time.Duration) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(percentile(s, q)) / float64(unit)
}

// chaosResult is what the last line reports.
type chaosResult struct {
	minutes       float64
	events        int // events sent: webhooks and SQS messages
	objects       int // source objects at the end, each checked at the destination
	replicaKills  int
	natsKills     int
	lost          int // destination objects missing, wrong, left over after a delete, or extra
	stuck         int // jobs, SQS messages and webhooks not done when the drain timed out
	orphanUploads int // multipart uploads open at the destination after the sweep wait
	unexpectedDLQ int // dead letters of objects the harness did not break on purpose
	resumeP99     float64
	lagP99        float64 // milliseconds
}

// line is the last line of `bench chaos`; NaN figures (no sample) print as
// NaN, which no threshold accepts.
func (r chaosResult) line() string {
	return fmt.Sprintf("chaos minutes=%g events=%d objects=%d replica_kills=%d nats_kills=%d lost=%d stuck=%d orphan_uploads=%d unexpected_dlq=%d resume_p99_s=%.1f lag_p99_ms=%.0f",
		r.minutes, r.events, r.objects, r.replicaKills, r.natsKills, r.lost, r.stuck, r.orphanUploads, r.unexpectedDLQ, r.resumeP99, r.lagP99)
}

// minKillsForResume is how many replica kills make a run with no resume
// measured a failure. A kill finds no copy to time when the checkpoints
// cannot be read at that moment (a NATS node down) or no multipart copy is
// running; CI's one-minute run, with 3 kills, once timed 2. Twelve kills
// (a 5-minute run) with none timed is the measure broken.
const minKillsForResume = 5

// failures says why the run fails, if it does: anything lost, stuck, left
// open or dead-lettered unexpectedly, fewer kills than asked for, or a
// resume slower than resumeGoal (if > 0) or never measured although
// minKillsForResume or more replicas were killed (the measure itself
// broken, as it once was).
func (r chaosResult) failures(wantReplicaKills, wantNATSKills int, resumeGoal time.Duration) []string {
	var out []string
	for _, c := range []struct {
		name string
		n    int
	}{{"lost", r.lost}, {"stuck", r.stuck}, {"orphan_uploads", r.orphanUploads}, {"unexpected_dlq", r.unexpectedDLQ}} {
		if c.n > 0 {
			out = append(out, fmt.Sprintf("%s=%d", c.name, c.n))
		}
	}
	if r.replicaKills < wantReplicaKills {
		out = append(out, fmt.Sprintf("%d replica kills of %d asked for", r.replicaKills, wantReplicaKills))
	}
	if r.natsKills < wantNATSKills {
		out = append(out, fmt.Sprintf("%d NATS kills of %d asked for", r.natsKills, wantNATSKills))
	}
	switch {
	case resumeGoal <= 0:
	case math.IsNaN(r.resumeP99) && r.replicaKills >= minKillsForResume:
		out = append(out, fmt.Sprintf("resume unmeasured: none of %d replica kills caught a multipart copy in hand", r.replicaKills))
	case r.resumeP99 > resumeGoal.Seconds():
		out = append(out, fmt.Sprintf("resume_p99_s=%.1f over the goal of %gs", r.resumeP99, resumeGoal.Seconds()))
	}
	return out
}

// spread describes samples as "p50 X, p99 Y, max Z (n samples)" in unit.
func spread(ds []time.Duration, unit time.Duration, name string) string {
	if len(ds) == 0 {
		return "no samples"
	}
	f := func(q float64) string {
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", quantileOf(ds, q, unit)), "0"), ".") + name
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s (%d samples)", f(0.5), f(0.99), f(1), len(ds))
}
