package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// lagQuantile is the nearest-rank q-quantile of sorted (ascending) lags in
// milliseconds, where an object that never arrived counts as +Inf: a p99
// over a run where more than 1% of the objects are missing is +Inf, never
// the p99 of the ones that made it. NaN with no sample.
func lagQuantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// histBucket is one cumulative bucket of a Prometheus histogram.
type histBucket struct {
	le    float64 // upper bound; +Inf for the last
	count float64 // observations <= le
}

// histogram is one series of a Prometheus histogram, buckets ascending.
type histogram struct {
	buckets []histBucket
	count   float64
	sum     float64
}

// parseHistogram reads the series name{labels...} (the labels given must
// match; others may be present, le aside) of a histogram from a Prometheus
// text exposition: its _bucket, _count and _sum lines.
func parseHistogram(r io.Reader, name string, want map[string]string) (histogram, bool, error) {
	var h histogram
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"_")
		if !ok {
			continue
		}
		suffix, rest, ok := strings.Cut(rest, "{")
		if !ok || (suffix != "bucket" && suffix != "count" && suffix != "sum") {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		got, v, match, err := matchSample(labels, value, want)
		if !match {
			continue
		}
		if err != nil {
			return h, false, fmt.Errorf("metrics: %q: %w", line, err)
		}
		found = true
		switch suffix {
		case "count":
			h.count = v
		case "sum":
			h.sum = v
		case "bucket":
			le, err := strconv.ParseFloat(got["le"], 64) // "+Inf" parses
			if err != nil {
				return h, false, fmt.Errorf("metrics: %q: bad le: %w", line, err)
			}
			h.buckets = append(h.buckets, histBucket{le: le, count: v})
		}
	}
	if err := sc.Err(); err != nil {
		return h, false, err
	}
	slices.SortFunc(h.buckets, func(a, b histBucket) int {
		switch {
		case a.le < b.le:
			return -1
		case a.le > b.le:
			return 1
		}
		return 0
	})
	return h, found, nil
}

// minus is the observations of h that came after earlier, a scrape of the
// same series: bucket by bucket (matched by bound), count and sum.
func (h histogram) minus(earlier histogram) histogram {
	before := map[float64]float64{}
	for _, b := range earlier.buckets {
		before[b.le] = b.count
	}
	d := histogram{count: h.count - earlier.count, sum: h.sum - earlier.sum}
	for _, b := range h.buckets {
		d.buckets = append(d.buckets, histBucket{le: b.le, count: b.count - before[b.le]})
	}
	return d
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear interpolation inside the bucket the rank falls in, from the
// bucket below's bound (0 for the first); a rank in the +Inf bucket gives
// the highest finite bound. NaN with no observation. With coarse buckets
// this is only as good as the bounds: a 3 ms lag in a first bucket of
// [0, 0.5 s] reads as some share of 500 ms.
func (h histogram) quantile(q float64) float64 {
	if len(h.buckets) == 0 {
		return math.NaN()
	}
	total := h.buckets[len(h.buckets)-1].count
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, b := range h.buckets {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				if i == 0 {
					return math.NaN()
				}
				return h.buckets[i-1].le
			}
			if b.count == below {
				return b.le
			}
			return lower + (b.le-lower)*(rank-below)/(b.count-below)
		}
		lower, below = b.le, b.count
	}
	return h.buckets[len(h.buckets)-1].le
}

// bounds lists the finite upper bounds, for the report.
func (h histogram) bounds() string {
	var s []string
	for _, b := range h.buckets {
		if !math.IsInf(b.le, 1) {
			s = append(s, strconv.FormatFloat(b.le, 'g', -1, 64))
		}
	}
	return strings.Join(s, ",")
}

// fmtMS writes a lag in milliseconds for the report and the last line:
// one decimal under 100 ms, none above; +Inf and NaN as such.
func fmtMS(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsNaN(v):
		return "NaN"
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}
