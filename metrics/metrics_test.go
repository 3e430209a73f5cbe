package metrics_test

import (
	"context"
	"errors"
	"fmt"
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
	reg.MustRegister(metrics.NewRegistry()) // the Go and process collectors
	m := metrics.New(reg, []string{"t1"})
	m.ObserveHTTP("/v1/events/oss", "POST", 202, time.Millisecond)
	m.CopyDuration.WithLabelValues("t1").Observe(0.1)
	m.ObserveLag("t1", time.Now().Add(-time.Second), time.Now())
	m.ReconcileInterval.WithLabelValues("t1").Set(3600)
	m.ReconcileLastSuccess.WithLabelValues("t1").SetToCurrentTime()
	m.ReconcileDuration.WithLabelValues("t1").Observe(12)
	m.ReconcileProgress.WithLabelValues("t1").Set(0.25)
	m.ReconcileETA.WithLabelValues("t1").Set(90)
	m.WatchQueue(fakeQueue{st: metrics.QueueStats{Jobs: map[string]uint64{"t1": 3}}})
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

// TestSetTasksFollowsAReload: the tasks a reload adds get their series at
// zero and their own queue series; a task it removes loses its gauges and
// its queue jobs count under "(other)"; its counters keep their values.
func TestSetTasksFollowsAReload(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, []string{"t1", "t2"})
	m.SourceBandwidth.WithLabelValues("t2").Set(1 << 20)
	m.Queued("t2").Add(4)
	m.WatchQueue(fakeQueue{st: metrics.QueueStats{Jobs: map[string]uint64{"t1": 1, "t2": 2, "t3": 3}}})
	m.SetTasks([]string{"t1", "t3"})
	want := `
# HELP oss2s3_jobs_queued_total Copy jobs acknowledged by JetStream, by task.
# TYPE oss2s3_jobs_queued_total counter
oss2s3_jobs_queued_total{task="t1"} 0
oss2s3_jobs_queued_total{task="t2"} 4
oss2s3_jobs_queued_total{task="t3"} 0
# HELP oss2s3_queue_jobs Jobs in the shared work queue, waiting or being worked on, by task. The same on every replica: aggregate with max().
# TYPE oss2s3_queue_jobs gauge
oss2s3_queue_jobs{task="(other)"} 2
oss2s3_queue_jobs{task="t1"} 1
oss2s3_queue_jobs{task="t3"} 3
# HELP oss2s3_source_bandwidth_limit_bytes_per_second The most this replica reads from the task's source a second (options.bandwidth); 0: no cap.
# TYPE oss2s3_source_bandwidth_limit_bytes_per_second gauge
oss2s3_source_bandwidth_limit_bytes_per_second{task="t1"} 0
oss2s3_source_bandwidth_limit_bytes_per_second{task="t3"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "oss2s3_jobs_queued_total", "oss2s3_queue_jobs",
		"oss2s3_source_bandwidth_limit_bytes_per_second"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.ObjectsCopied); n != 3*len(metrics.CopyResults) {
		t.Fatalf("oss2s3_objects_total has %d series, want %d (t1, t2 kept, t3 added)", n, 3*len(metrics.CopyResults))
	}
}

// TestConfigReloadSeries: the reloads counted by result (the start is no
// reload), and the time of the configuration in use.
func TestConfigReloadSeries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	start := time.Unix(1796464800, 0)
	m.ConfigLoaded(false, true, start)
	m.ConfigLoaded(true, false, start.Add(time.Minute))
	m.ConfigLoaded(true, false, start.Add(2*time.Minute))
	want := `
# HELP oss2s3_config_last_reload_success_timestamp_seconds Unix time the configuration in use was loaded: at start, or by the last reload that succeeded.
# TYPE oss2s3_config_last_reload_success_timestamp_seconds gauge
oss2s3_config_last_reload_success_timestamp_seconds 1.7964648e+09
# HELP oss2s3_config_reloads_total Configuration reloads asked for (SIGHUP), by result: success (the file's configuration is in use) or failure (refused: the previous one is still in use; the log and GET /v1/tasks say why).
# TYPE oss2s3_config_reloads_total counter
oss2s3_config_reloads_total{result="failure"} 2
oss2s3_config_reloads_total{result="success"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "oss2s3_config_reloads_total", "oss2s3_config_last_reload_success_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
	m.ConfigLoaded(true, true, start.Add(3*time.Minute))
	if got := testutil.ToFloat64(m.ConfigLastReloadSuccess); got != 1796464980 {
		t.Fatalf("last success %v after a reload", got)
	}
	if got := testutil.ToFloat64(m.ConfigReloads.WithLabelValues(metrics.ReloadSuccess)); got != 1 {
		t.Fatalf("successes %v", got)
	}
}

type fakeQueue struct {
	st  metrics.QueueStats
	err error
}

func (f fakeQueue) QueueStats(context.Context) (metrics.QueueStats, error) { return f.st, f.err }

func TestQueueSeries(t *testing.T) {
	t.Parallel()
	names := []string{"oss2s3_queue_up", "oss2s3_queue_jobs", "oss2s3_dead_letter_jobs",
		"oss2s3_queue_oldest_job_age_seconds", "oss2s3_queue_unacked_jobs", "oss2s3_queue_redelivered_jobs"}

	t.Run("NotExportedBeforeTheQueueIsWatched", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		metrics.New(reg, []string{"t1"})
		if n := testutil.CollectAndCount(reg, names...); n != 0 {
			t.Fatalf("%d queue series before WatchQueue, want none (a zero would claim an empty queue)", n)
		}
	})

	t.Run("EveryTaskAndTheOthersAreReported", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		m := metrics.New(reg, []string{"t1", "t2"})
		m.WatchQueue(fakeQueue{st: metrics.QueueStats{
			Jobs:        map[string]uint64{"t1": 5, "removed": 2, "also-removed": 1},
			OldestJob:   time.Now().Add(-time.Hour),
			Unacked:     4,
			Redelivered: 1,
			DeadLetters: map[string]uint64{"t2": 7},
		}})
		want := `
# HELP oss2s3_dead_letter_jobs Jobs in the dead-letter stream, by task: failed for good, waiting for a redrive.
# TYPE oss2s3_dead_letter_jobs gauge
oss2s3_dead_letter_jobs{task="(other)"} 0
oss2s3_dead_letter_jobs{task="t1"} 0
oss2s3_dead_letter_jobs{task="t2"} 7
# HELP oss2s3_queue_jobs Jobs in the shared work queue, waiting or being worked on, by task. The same on every replica: aggregate with max().
# TYPE oss2s3_queue_jobs gauge
oss2s3_queue_jobs{task="(other)"} 3
oss2s3_queue_jobs{task="t1"} 5
oss2s3_queue_jobs{task="t2"} 0
# HELP oss2s3_queue_redelivered_jobs Jobs in the work queue that were delivered more than once and are not finished yet.
# TYPE oss2s3_queue_redelivered_jobs gauge
oss2s3_queue_redelivered_jobs 1
# HELP oss2s3_queue_unacked_jobs Jobs delivered to a worker of any replica and not finished yet.
# TYPE oss2s3_queue_unacked_jobs gauge
oss2s3_queue_unacked_jobs 4
# HELP oss2s3_queue_up 1 if this replica could read the JetStream queue's state at this scrape, 0 if not (the other queue series are then missing).
# TYPE oss2s3_queue_up gauge
oss2s3_queue_up 1
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "oss2s3_queue_up", "oss2s3_queue_jobs",
			"oss2s3_dead_letter_jobs", "oss2s3_queue_unacked_jobs", "oss2s3_queue_redelivered_jobs"); err != nil {
			t.Fatal(err)
		}
		age := testutil.ToFloat64(onlyFamily(reg, "oss2s3_queue_oldest_job_age_seconds"))
		if age < 3600 || age > 3600+60 {
			t.Fatalf("oldest job age %v s, want about an hour", age)
		}
	})

	t.Run("TheNewestDeadLetterOfEachConfiguredTaskIsNamed", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		m := metrics.New(reg, []string{"t1", "t2", "t3"})
		long := strings.Repeat("é", 200) // 400 bytes: cut at a rune boundary
		at := time.Date(2026, 12, 5, 10, 0, 0, 500e6, time.UTC)
		m.WatchQueue(fakeQueue{st: metrics.QueueStats{
			DeadLetters: map[string]uint64{"t1": 2, "t2": 1, "removed": 1},
			NewestDead: map[string]metrics.DeadLetterRef{
				"t1": {Key: "photos/<b>IMG_1.jpg", At: at}, "t2": {Key: long, At: at},
				"removed": {Key: "x", At: at},    // not a configured task: no series
				"t3":      {Key: "gone", At: at}, // no dead letters left: no series
			},
		}})
		cut := strings.Repeat("é", (metrics.MaxKeyLabel-3)/2) + "..."
		want := `
# HELP oss2s3_dead_letter_newest_timestamp_seconds When the newest dead letter of each configured task was parked, labelled with its object key (one series per task).
# TYPE oss2s3_dead_letter_newest_timestamp_seconds gauge
oss2s3_dead_letter_newest_timestamp_seconds{key="photos/<b>IMG_1.jpg",task="t1"} 1.7964648005e+09
oss2s3_dead_letter_newest_timestamp_seconds{key="` + cut + `",task="t2"} 1.7964648005e+09
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "oss2s3_dead_letter_newest_timestamp_seconds"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("AnUnreachableQueueIsReportedAsDown", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		m := metrics.New(reg, []string{"t1"})
		m.WatchQueue(fakeQueue{err: errors.New("nats: timeout")})
		want := `
# HELP oss2s3_queue_up 1 if this replica could read the JetStream queue's state at this scrape, 0 if not (the other queue series are then missing).
# TYPE oss2s3_queue_up gauge
oss2s3_queue_up 0
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLagIgnoresJobsWithoutAnEvent(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, []string{"t1"})
	m.ObserveLag("t1", time.Time{}, time.Now())
	if n := testutil.CollectAndCount(reg, "oss2s3_end_to_end_lag_seconds"); n != 0 {
		t.Fatalf("a job without an event time made %d lag series", n)
	}
	m.ObserveLag("t1", time.Now().Add(-30*time.Second), time.Now())
	if n := testutil.CollectAndCount(reg, "oss2s3_end_to_end_lag_seconds"); n != 1 {
		t.Fatalf("%d lag series after one job, want 1", n)
	}
}

// onlyFamily lets testutil.ToFloat64 read one unlabelled series of reg.
type familyView struct {
	reg  *prometheus.Registry
	name string
}

func onlyFamily(reg *prometheus.Registry, name string) prometheus.Collector {
	return familyView{reg, name}
}

func (f familyView) Describe(chan<- *prometheus.Desc) {}
func (f familyView) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := f.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == f.name {
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(f.name, "x", nil, nil), prometheus.GaugeValue, mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
}

// The hot path's accessors reach the same series as WithLabelValues,
// including label values New did not create.
func TestHotPathAccessorsCountTheirSeries(t *testing.T) {
	t.Parallel()
	m := metrics.New(prometheus.NewRegistry(), []string{"t1"})
	m.Events(metrics.SourceMNS, metrics.EventQueued).Add(2)
	m.Events(metrics.SourceOSSWebhook, metrics.EventRejected).Inc()
	m.Events("unknown", metrics.EventQueued).Inc()
	m.Queued("t1").Inc()
	m.Queued("t2").Add(3)
	for range 2 {
		m.ObserveHTTP("/v1/events/oss", "POST", 202, time.Millisecond)
	}
	m.ObserveHTTP("/v1/events/oss", "POST", 400, time.Millisecond)
	for _, c := range []struct {
		got  prometheus.Collector
		want float64
	}{
		{m.EventsReceived.WithLabelValues(metrics.SourceMNS, metrics.EventQueued), 2},
		{m.EventsReceived.WithLabelValues(metrics.SourceSQS, metrics.EventQueued), 0},
		{m.EventsReceived.WithLabelValues(metrics.SourceOSSWebhook, metrics.EventRejected), 1},
		{m.EventsReceived.WithLabelValues(metrics.SourceOSSWebhook, metrics.EventQueued), 0},
		{m.EventsReceived.WithLabelValues("unknown", metrics.EventQueued), 1},
		{m.JobsQueued.WithLabelValues("t1"), 1},
		{m.JobsQueued.WithLabelValues("t2"), 3},
		{m.HTTPRequests.WithLabelValues("/v1/events/oss", "POST", "202"), 2},
		{m.HTTPRequests.WithLabelValues("/v1/events/oss", "POST", "400"), 1},
	} {
		if got := testutil.ToFloat64(c.got); got != c.want {
			t.Errorf("%v: %v, want %v", c.got, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.HTTPDuration); n != 1 {
		t.Fatalf("duration series: %d, want 1", n)
	}
}

// TestHTTPLabelsComeFromClosedSets: whatever a client sends, the HTTP
// series stay few (issue 14: each invented method was a series kept for
// ever, and 50 methods of 200 KB made /metrics 10 MB).
func TestHTTPLabelsComeFromClosedSets(t *testing.T) {
	t.Parallel()

	t.Run("AnInventedMethodIsOther", func(t *testing.T) {
		t.Parallel()
		m := metrics.New(prometheus.NewRegistry(), nil)
		m.ObserveHTTP("/v1/events/oss", "GET", 405, time.Millisecond)
		for i := range 1000 {
			m.ObserveHTTP("/v1/events/oss", fmt.Sprintf("INVENTED%d%s", i, strings.Repeat("X", 1000)), 405, time.Millisecond)
		}
		if n := testutil.CollectAndCount(m.HTTPRequests); n != 2 {
			t.Fatalf("%d request series after 1000 invented methods, want 2 (GET and other)", n)
		}
		if got := testutil.ToFloat64(m.HTTPRequests.WithLabelValues("/v1/events/oss", metrics.MethodOther, "405")); got != 1000 {
			t.Fatalf("method=%q counted %v requests, want 1000", metrics.MethodOther, got)
		}
	})

	t.Run("EveryStandardMethodIsItself", func(t *testing.T) {
		t.Parallel()
		m := metrics.New(prometheus.NewRegistry(), nil)
		for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"} {
			m.ObserveHTTP("/healthz", method, 200, time.Millisecond)
			if got := testutil.ToFloat64(m.HTTPRequests.WithLabelValues("/healthz", method, "200")); got != 1 {
				t.Errorf("%s: %v requests, want 1", method, got)
			}
		}
	})

	t.Run("RoutesPastTheBoundShareOneSeries", func(t *testing.T) {
		t.Parallel()
		m := metrics.New(prometheus.NewRegistry(), nil)
		for i := range 5000 {
			m.ObserveHTTP(fmt.Sprintf("/raw/path/%d", i), "POST", 404, time.Millisecond)
		}
		if n := testutil.CollectAndCount(m.HTTPRequests); n > 513 {
			t.Fatalf("%d request series after 5000 distinct routes, want at most 513", n)
		}
		if got := testutil.ToFloat64(m.HTTPRequests.WithLabelValues(metrics.RouteOther, "POST", "404")); got < 5000-512 {
			t.Fatalf("route=%q counted %v requests, want the %d past the bound", metrics.RouteOther, got, 5000-512)
		}
	})
}
