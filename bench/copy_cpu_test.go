package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestMedianIsTheMiddleRunNotTheBest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{264}, 264},
		{[]float64{1423.6, 264, 1000.9}, 1000.9},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := slices.Clone(tc.in)
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("median reordered its input: %v", tc.in)
		}
	}
}

func TestPerUnit(t *testing.T) {
	t.Parallel()
	if got := perUnit(3*time.Second, 10_000); math.Abs(got-300e-6) > 1e-12 {
		t.Errorf("3 s for 10,000 objects: %v s/object, want 300e-6", got)
	}
	if got := perUnit(6*time.Second, 4); got != 1.5 {
		t.Errorf("6 s for 4 GiB: %v s/GiB, want 1.5", got)
	}
	if got := perUnit(time.Second, 0); got != 0 {
		t.Errorf("no work: %v, want 0", got)
	}
}

func TestWindowSharesAccountForTheMachine(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	w := &window{
		start: cpuSample{at: t0, machine: cpuTicks{busy: 100 * time.Second, idle: 50 * time.Second, iowait: 5 * time.Second},
			versity: 10 * time.Second, bench: 20 * time.Second},
		end: cpuSample{at: t0.Add(4 * time.Second), machine: cpuTicks{busy: 107 * time.Second, idle: 50400 * time.Millisecond, iowait: 5600 * time.Millisecond},
			versity: 12 * time.Second, bench: 21 * time.Second},
		tool: 3 * time.Second,
	}
	// 4 s on 2 cores: 8 s of CPU, 7 busy (3 tool, 2 versitygw, 1 harness, 1 other), 0.6 iowait, 0.4 idle.
	want := cpuShares{tool: 0.75, versity: 0.5, bench: 0.25, other: 0.25, iowait: 0.15, idle: 0.1}
	got := w.shares()
	for _, f := range []struct {
		name      string
		got, want float64
	}{{"tool", got.tool, want.tool}, {"versity", got.versity, want.versity}, {"bench", got.bench, want.bench},
		{"other", got.other, want.other}, {"iowait", got.iowait, want.iowait}, {"idle", got.idle, want.idle}} {
		if math.Abs(f.got-f.want) > 1e-9 {
			t.Errorf("%s = %v cores, want %v", f.name, f.got, f.want)
		}
	}
	if (&window{}).shares() != (cpuShares{}) {
		t.Error("an empty window has shares")
	}
}
func TestRcloneSettingsComparedByMedians(t *testing.T) {
	t.Parallel()
	// rclone1 has the best single run, rclone2 the better median; rclone1
	// spends less CPU per unit in the middle run.
	r1 := &tally{c: contender{id: "rclone1"}, rates: []float64{100, 300, 110}, cpu: []float64{2, 1, 3}}
	r2 := &tally{c: contender{id: "rclone2"}, rates: []float64{150, 160, 140}, cpu: []float64{1.5, 2.5, 2.5}}
	if got := fastest([]*tally{r1, r2}); got != r2 {
		t.Errorf("fastest = %s, want rclone2 (median 150 against 110)", got.c.id)
	}
	if got := frugalest([]*tally{r1, r2}); got != r1 {
		t.Errorf("frugalest = %s, want rclone1 (median 2 against 2.5)", got.c.id)
	}
}

func TestMedianCeilingPicksTheStreamCountByMedian(t *testing.T) {
	t.Parallel()
	rate, streams := medianCeiling(map[int][]float64{8: {400, 200, 210}, 16: {300, 250, 260}})
	if rate != 260 || streams != 16 {
		t.Errorf("got %v at %d streams, want 260 at 16 (8 streams' best run, 400, is not its median)", rate, streams)
	}
}

// TestPollsThinOutAsTheWaitGrows: oss2s3's /metrics is scraped at most
// every 20 ms at first (a short run's clock stays precise), then 1% of the
// time waited apart (the clock stops at most 1% late), at most 100 ms.
func TestPollsThinOutAsTheWaitGrows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ waited, want time.Duration }{
		{0, 20 * time.Millisecond},
		{time.Second, 20 * time.Millisecond},
		{5 * time.Second, 50 * time.Millisecond},
		{time.Minute, 100 * time.Millisecond},
	} {
		if got := pollInterval(tc.waited); got != tc.want {
			t.Errorf("after %v: poll every %v, want %v", tc.waited, got, tc.want)
		}
	}
}
