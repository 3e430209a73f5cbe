package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLagQuantileCountsMissingObjectsAsInfinite(t *testing.T) {
	t.Parallel()
	inf := math.Inf(1)
	lags := make([]float64, 0, 1000)
	for i := range 1000 {
		lags = append(lags, float64(i+1)) // 1..1000 ms
	}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := lagQuantile(lags, tc.q); got != tc.want {
			t.Errorf("q=%g: got %g, want %g", tc.q, got, tc.want)
		}
	}
	// 11 of 1000 never arrived: the p99 is theirs, not the slowest arrival's.
	missing := append(slices.Clone(lags[:989]), slices.Repeat([]float64{inf}, 11)...)
	if got := lagQuantile(missing, 0.99); !math.IsInf(got, 1) {
		t.Errorf("p99 with 1.1%% missing = %g, want +Inf", got)
	}
	if got := lagQuantile(missing, 0.5); got != 500 {
		t.Errorf("p50 with 1.1%% missing = %g, want 500", got)
	}
	if got := lagQuantile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("no sample: %g, want NaN", got)
	}
}

const lagMetricsText = `# HELP oss2s3_end_to_end_lag_seconds Event to copy.
# TYPE oss2s3_end_to_end_lag_seconds histogram
oss2s3_end_to_end_lag_seconds_bucket{task="bench",le="0.005"} %d
oss2s3_end_to_end_lag_seconds_bucket{task="bench",le="0.01"} %d
oss2s3_end_to_end_lag_seconds_bucket{task="bench",le="0.5"} %d
oss2s3_end_to_end_lag_seconds_bucket{task="bench",le="+Inf"} %d
oss2s3_end_to_end_lag_seconds_sum{task="bench"} 1.5
oss2s3_end_to_end_lag_seconds_count{task="bench"} %d
oss2s3_end_to_end_lag_seconds_bucket{task="other",le="0.005"} 7
oss2s3_end_to_end_lag_seconds_bucket{task="other",le="+Inf"} 7
oss2s3_end_to_end_lag_seconds_count{task="other"} 7
oss2s3_objects_total{result="copied",task="bench"} 3
`

func lagMetrics(b5, b10, b500, inf int) string {
	return fmt.Sprintf(lagMetricsText, b5, b10, b500, inf, inf)
}

func TestHistogramDeltaQuantile(t *testing.T) {
	t.Parallel()
	parse := func(text string) histogram {
		t.Helper()
		h, ok, err := parseHistogram(strings.NewReader(text), lagMetric, map[string]string{"task": "bench"})
		if err != nil || !ok {
			t.Fatalf("parse: ok %v, err %v", ok, err)
		}
		return h
	}
	before := parse(lagMetrics(10, 10, 10, 10))
	after := parse(lagMetrics(10, 60, 110, 110)) // 100 more: 50 in (5, 10] ms, 50 in (10, 500] ms
	if len(after.buckets) != 4 || !math.IsInf(after.buckets[3].le, 1) || after.count != 110 {
		t.Fatalf("parsed %+v", after)
	}
	d := after.minus(before)
	if d.count != 100 || d.buckets[0].count != 0 || d.buckets[1].count != 50 || d.buckets[3].count != 100 {
		t.Fatalf("delta %+v", d)
	}
	// Rank 50 is the top of the (0.005, 0.01] bucket; rank 99 is 49/50
	// of the way through (0.01, 0.5].
	for _, tc := range []struct{ q, want float64 }{{0.5, 0.01}, {0.25, 0.0075}, {0.99, 0.01 + 0.49*49/50}} {
		if got := d.quantile(tc.q); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("q=%g: got %g, want %g", tc.q, got, tc.want)
		}
	}
	// Everything above the highest finite bound reads as that bound, as
	// histogram_quantile says.
	slow := parse(lagMetrics(0, 0, 0, 5))
	if got := slow.quantile(0.5); got != 0.5 {
		t.Errorf("all in +Inf: got %g, want 0.5", got)
	}
	if got := (histogram{}).quantile(0.5); !math.IsNaN(got) {
		t.Errorf("empty: got %g, want NaN", got)
	}
	if _, ok, _ := parseHistogram(strings.NewReader("go_goroutines 1\n"), lagMetric, nil); ok {
		t.Error("found a histogram in a text without one")
	}
}

func TestSizeRangeVariants(t *testing.T) {
	t.Parallel()
	var r sizeRange
	if err := r.Set("20MiB-40MiB"); err != nil {
		t.Fatal(err)
	}
	got := r.variants(5)
	want := []int64{20 << 20, 25 << 20, 30 << 20, 35 << 20, 40 << 20}
	if !slices.Equal(got, want) || r.String() != "20MiB-40MiB" {
		t.Errorf("variants %v (%s), want %v", got, r.String(), want)
	}
	if err := r.Set("10KiB"); err != nil || r.lo != 10<<10 || r.hi != 10<<10 || len(r.variants(8)) != 1 {
		t.Errorf("one size: %+v, %v", r, err)
	}
	if err := r.Set("40MiB-20MiB"); err == nil {
		t.Error("a range from high to low accepted")
	}
}

func TestLagKeysSortBySequenceWithinAChunk(t *testing.T) {
	t.Parallel()
	k := lagKey("small/", classSmall, 1234)
	if k != "small/s/00001/000001234" {
		t.Errorf("key %q", k)
	}
	if seq, ok := seqOfKey(k); !ok || seq != 1234 {
		t.Errorf("seqOfKey(%q) = %d, %v", k, seq, ok)
	}
	if !(lagKey("m/", classMultipart, 1999) > lagKey("m/", classMultipart, 1099)) ||
		!strings.HasPrefix(lagKey("m/", classMultipart, 1999), lagChunkPrefix("m/", classMultipart, 1)) {
		t.Error("keys do not sort by sequence inside their chunk")
	}
}

// The tracker lists a chunk from its lowest object sent and not yet seen,
// and looks at a chunk again only after a tenth of that object's age.
func TestListTrackerLooksFromTheLowestMissingObject(t *testing.T) {
	t.Parallel()
	tr := newListTracker(nil, "b", "small", 5*time.Millisecond, 1, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range lagChunk + 3 {
		tr.next(classSmall)
	}
	for seq := range lagChunk + 2 { // the last one stays queued: not sent yet
		tr.sent(classSmall, seq, t0, 10)
	}
	c := &tr.classes[classSmall]
	for seq := range 5 {
		c.objs[seq].state = objArrived
		c.pending--
	}
	tr.rejected(classSmall, 5)
	for seq := lagChunk; seq < lagChunk+2; seq++ { // chunk 1: both seen
		c.objs[seq].state = objArrived
		c.pending--
	}
	now := t0.Add(time.Second)
	looks := tr.due(now)
	if len(looks) != 1 || looks[0].chunk != 0 || looks[0].startAfter != lagKey("small/", classSmall, 5) {
		t.Fatalf("looks %+v", looks)
	}
	if got := tr.due(now.Add(99 * time.Millisecond)); len(got) != 0 {
		t.Errorf("looked again after 99ms at a 1s-old object: %+v", got)
	}
	if got := tr.due(now.Add(100 * time.Millisecond)); len(got) != 1 {
		t.Errorf("did not look again after a tenth of the age: %+v", got)
	}
	if got := tr.pendingCount(classSmall); got != lagChunk-6+1 {
		t.Errorf("pending %d, want %d", got, lagChunk-6+1)
	}
}
