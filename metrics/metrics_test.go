package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oss2s3/oss2s3/metrics"
)

func TestSeriesPassTheLinter(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg, []string{"t1"})
	m.ObserveHTTP("/v1/events/oss", "POST", 202, time.Millisecond)
	m.CopyDuration.WithLabelValues("t1").Observe(0.1)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestSeriesStartAtZeroForEveryTask(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	metrics.New(reg, []string{"t1", "t2"})
	want := `
# HELP oss2s3_jobs_queued_total Copy jobs acknowledged by JetStream, by task.
# TYPE oss2s3_jobs_queued_total counter
oss2s3_jobs_queued_total{task="t1"} 0
oss2s3_jobs_queued_total{task="t2"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "oss2s3_jobs_queued_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "oss2s3_objects_total"); n != 2*len(metrics.CopyResults) {
		t.Fatalf("oss2s3_objects_total has %d series, want %d (2 tasks x every result)", n, 2*len(metrics.CopyResults))
	}
}
