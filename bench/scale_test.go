package main

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestScalingIsSpeedupOverReplicas(t *testing.T) {
	t.Parallel()
	one := scalePoint{replicas: 1, keys: 1_000_000, elapsed: 100 * time.Second} // 10k keys/s
	for _, tc := range []struct {
		name                string
		base, p             scalePoint
		speedup, efficiency float64
	}{
		{"Linear", one, scalePoint{replicas: 8, keys: 1_000_000, elapsed: 12500 * time.Millisecond}, 8, 1},
		{"HalfAsFastPerReplica", one, scalePoint{replicas: 8, keys: 1_000_000, elapsed: 25 * time.Second}, 4, 0.5},
		{"TheBaseItself", one, one, 1, 1},
		// A base of 2 replicas (the smoke run's 1 and 2 start at 1; a
		// run of 2,4,8 at 2): speedup counts in replicas, from the base's
		// rate per replica.
		{"BaseOfTwo", scalePoint{replicas: 2, keys: 1_000_000, elapsed: 50 * time.Second},
			scalePoint{replicas: 8, keys: 1_000_000, elapsed: 20 * time.Second}, 5, 0.625},
		{"NoTime", one, scalePoint{replicas: 2, keys: 1}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, e := scaling(tc.base, tc.p)
			if !near(s, tc.speedup) || !near(e, tc.efficiency) {
				t.Errorf("scaling = %v, %v; want %v, %v", s, e, tc.speedup, tc.efficiency)
			}
		})
	}
}

func TestShardRateAtAnotherPageLatency(t *testing.T) {
	t.Parallel()
	// 8000 keys/s at 100 ms: a page of 1000 keys every 125 ms, 25 ms of
	// which is not latency.
	for _, tc := range []struct {
		measured float64
		from, to time.Duration
		want     float64
	}{
		{8000, 100 * time.Millisecond, 100 * time.Millisecond, 8000},
		{8000, 100 * time.Millisecond, 300 * time.Millisecond, 1000 / 0.325},
		{8000, 100 * time.Millisecond, 0, 1000 / 0.025},
		// Faster than the latency allows (a measurement error): no
		// negative fixed cost.
		{20000, 100 * time.Millisecond, 200 * time.Millisecond, 5000},
		{0, 100 * time.Millisecond, 200 * time.Millisecond, 0},
	} {
		if got := shardRateAt(tc.measured, tc.from, tc.to); !near(got, tc.want) {
			t.Errorf("shardRateAt(%v, %v, %v) = %v, want %v", tc.measured, tc.from, tc.to, got, tc.want)
		}
	}
}

func TestProjectionTook(t *testing.T) {
	t.Parallel()
	pj := projection{keys: 1_000_000_000, shards: 128}
	// 128 shards at 8000 keys/s: 1,024,000 keys/s, 976.5625 s.
	if got, want := pj.took(8000), time.Duration(976.5625*float64(time.Second)); got != want {
		t.Errorf("took = %v, want %v", got, want)
	}
	if got := pj.took(0); got != 0 {
		t.Errorf("took at no rate = %v, want 0 (unknown)", got)
	}
}

func TestMedianOfEveryCount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		in := slices.Clone(tc.in)
		if got := median(in); got != tc.want || !slices.Equal(in, tc.in) {
			t.Errorf("median(%v) = %v (input now %v), want %v", tc.in, got, in, tc.want)
		}
	}
}

func TestParseScaleFlags(t *testing.T) {
	t.Parallel()
	o, err := parseScaleFlags([]string{"-smoke"}, io.Discard)
	if err != nil || o.objects != 200_000 || !slices.Equal(o.replicas, []int{1, 2}) || o.shards != 8 || o.concurrency != 1 {
		t.Errorf("-smoke: %+v, %v", o, err)
	}
	o, err = parseScaleFlags(nil, io.Discard)
	if err != nil || !slices.Equal(o.replicas, []int{1, 2, 4, 8}) || o.latency != 100*time.Millisecond {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	if o, err := parseScaleFlags([]string{"-profile"}, io.Discard); err != nil || !o.keep {
		t.Errorf("-profile keeps the work directory: %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"-replicas", "4,2"}, {"-replicas", "0"}, {"-shards", "0"}, {"-shards", "2000"},
		{"-objects", "10"}, {"-concurrency", "0"}, {"-page-latency", "-1s"}} {
		if _, err := parseScaleFlags(bad, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestShardsDoneReadsTheReplicasLog(t *testing.T) {
	t.Parallel()
	log := `{"time":"2026-12-05T20:44:54Z","level":"INFO","msg":"copy workers started","concurrency":1}
{"time":"2026-12-05T20:44:54Z","level":"INFO","msg":"reconcile shard done","shard":3,"listed":20000,"resumed":0,"elapsed":2915000000}
not json, but says "reconcile shard done"
{"time":"2026-12-05T20:44:57Z","level":"INFO","msg":"reconcile shard resumed from its checkpoint","listed":5}
{"time":"2026-12-05T20:44:58Z","level":"INFO","msg":"reconcile shard done","shard":11,"listed":30000,"resumed":1,"elapsed":1000000000}
`
	path := filepath.Join(t.TempDir(), "r1.log")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := shardsDone(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []shardDone{
		{Msg: "reconcile shard done", Listed: 20000, Elapsed: 2915000000},
		{Msg: "reconcile shard done", Listed: 30000, Resumed: 1, Elapsed: 1000000000},
	}
	if !slices.Equal(got, want) {
		t.Errorf("shardsDone = %+v, want %+v", got, want)
	}
}
