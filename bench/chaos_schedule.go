package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// faultKind names one kind of fault the chaos run injects.
type faultKind string

const (
	faultReplicaKill faultKind = "replica_kill" // SIGKILL of an oss2s3 replica, restarted after For
	faultNATSKill    faultKind = "nats_kill"    // SIGKILL of a NATS node, restarted after For
	faultSlowDown    faultKind = "s3_slowdown"  // Share of S3 requests answered 503 SlowDown, for For
	faultS3Latency   faultKind = "s3_latency"   // Latency added to oss2s3 <-> S3, for For
	faultS3Reset     faultKind = "s3_reset"     // Share of oss2s3 <-> S3 connections reset, for For
	faultNATSLatency faultKind = "nats_latency" // Latency added to oss2s3 <-> every NATS node, for For
	faultNATSReset   faultKind = "nats_reset"   // connections of oss2s3 to one NATS node reset, for For
	faultOSSCut      faultKind = "oss_cut"      // the next Times OSS GetObject bodies cut after CutAfter bytes
)

// faultKinds lists the kinds in the order the summary prints them.
var faultKinds = []faultKind{faultReplicaKill, faultNATSKill, faultSlowDown, faultS3Latency, faultS3Reset,
	faultNATSLatency, faultNATSReset, faultOSSCut}

// fault is one scheduled fault.
type fault struct {
	At       time.Duration // from the start of the load
	Kind     faultKind
	For      time.Duration // episodes: how long they last; kills: how long the process stays down
	Latency  time.Duration
	Share    float64 // slowdown: share of requests refused; s3_reset: share of connections reset
	CutAfter int64
	Times    int
	Leader   bool // nats_kill: kill the job stream's leader rather than any node
}

func (f fault) String() string {
	s := fmt.Sprintf("%6.1fs %s", f.At.Seconds(), f.Kind)
	switch f.Kind {
	case faultReplicaKill, faultNATSKill:
		s += fmt.Sprintf(" (down %.1fs)", f.For.Seconds())
		if f.Leader {
			s += " of the job stream's leader"
		}
	case faultSlowDown, faultS3Reset:
		s += fmt.Sprintf(" %.0f%% for %.1fs", f.Share*100, f.For.Seconds())
	case faultS3Latency, faultNATSLatency:
		s += fmt.Sprintf(" +%v for %.1fs", f.Latency, f.For.Seconds())
	case faultNATSReset:
		s += fmt.Sprintf(" for %.1fs", f.For.Seconds())
	case faultOSSCut:
		s += fmt.Sprintf(" %d bodies after %s", f.Times, formatSize(f.CutAfter))
	}
	return s
}

// scheduleWindow is the part of a run of length d in which faults start:
// after a warm-up that lets the bed settle, and ending a little before the
// load stops, so that the last restarts are done when the drain begins.
func scheduleWindow(d time.Duration) (from, to time.Duration) {
	return min(10*time.Second, d/6), d - min(5*time.Second, d/12)
}

// buildSchedule plans the faults of a run of length d: the kills asked for,
// evenly spread with some jitter (so that they fall at different moments of
// the copies each run), and episodes of every other kind in proportion to
// the run's length, at least one each. The same seed gives the same plan.
func buildSchedule(d time.Duration, replicaKills, natsKills int, seed uint64) []fault {
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	from, to := scheduleWindow(d)
	minutes := d.Minutes()
	per := func(perMinute float64) int { return max(1, int(math.Round(minutes*perMinute))) }
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	// at returns n moments evenly spread over the window, shifted by
	// offset (a fraction of one slot), each moved by up to jitter slots.
	at := func(n int, offset, jitter float64) []time.Duration {
		slot := float64(to-from) / float64(n)
		out := make([]time.Duration, n)
		for i := range out {
			x := (float64(i) + offset + jitter*(2*rng.Float64()-1)) * slot
			out[i] = from + time.Duration(min(max(x, 0), float64(to-from)))
		}
		return out
	}
	var plan []fault
	for _, t := range at(replicaKills, 0.5, 0.3) {
		plan = append(plan, fault{At: t, Kind: faultReplicaKill, For: between(time.Second, 3*time.Second)})
	}
	for i, t := range at(natsKills, 0.25, 0.15) {
		plan = append(plan, fault{At: t, Kind: faultNATSKill, For: between(3*time.Second, 5*time.Second), Leader: i%2 == 0})
	}
	for _, t := range at(per(1), 0.75, 0.2) {
		plan = append(plan, fault{At: t, Kind: faultSlowDown, For: between(5*time.Second, 10*time.Second), Share: 0.3 + 0.3*rng.Float64()})
	}
	for _, t := range at(per(0.6), rng.Float64(), 0.4) {
		plan = append(plan, fault{At: t, Kind: faultS3Latency, For: between(10*time.Second, 20*time.Second),
			Latency: between(100*time.Millisecond, 300*time.Millisecond).Round(time.Millisecond)})
	}
	for _, t := range at(per(0.6), rng.Float64(), 0.4) {
		plan = append(plan, fault{At: t, Kind: faultS3Reset, For: between(2*time.Second, 4*time.Second), Share: 0.3 + 0.3*rng.Float64()})
	}
	for _, t := range at(per(0.6), rng.Float64(), 0.4) {
		plan = append(plan, fault{At: t, Kind: faultNATSLatency, For: between(10*time.Second, 20*time.Second),
			Latency: between(20*time.Millisecond, 60*time.Millisecond).Round(time.Millisecond)})
	}
	for _, t := range at(per(0.6), rng.Float64(), 0.4) {
		plan = append(plan, fault{At: t, Kind: faultNATSReset, For: between(time.Second, 3*time.Second)})
	}
	for _, t := range at(per(2), rng.Float64(), 0.4) {
		plan = append(plan, fault{At: t, Kind: faultOSSCut, CutAfter: 64<<10 + rng.Int64N(4<<20-64<<10), Times: 1 + rng.IntN(4)})
	}
	slices.SortStableFunc(plan, func(a, b fault) int { return int(a.At - b.At) })
	return plan
}

// countKinds counts a plan's faults by kind, in faultKinds order.
func countKinds(plan []fault) string {
	n := map[faultKind]int{}
	for _, f := range plan {
		n[f.Kind]++
	}
	parts := make([]string, 0, len(faultKinds))
	for _, k := range faultKinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n[k]))
	}
	return strings.Join(parts, " ")
}
