// Package metrics owns every Prometheus series oss2s3 exports: their names,
// labels and help texts live in this one file.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "oss2s3"

// Event sources, the values of the "source" label.
const (
	SourceOSSWebhook  = "oss_webhook"
	SourceEventBridge = "eventbridge"
	SourceMNS         = "mns"
	SourceSQS         = "sqs"
)

// Sources lists every value of the "source" label.
var Sources = []string{SourceOSSWebhook, SourceEventBridge, SourceMNS, SourceSQS}

// Event results, the values of the "result" label of EventsReceived.
const (
	EventQueued    = "queued"
	EventDuplicate = "duplicate"
	EventIgnored   = "ignored"
	EventUnrouted  = "unrouted"
	EventRejected  = "rejected"
	EventFailed    = "failed"
)

// Job results, the values of the "result" label of ObjectsCopied.
const (
	CopyCopied     = "copied"      // the destination now holds the source version
	CopySkipped    = "skipped"     // nothing to do: already current, or a kind the task skips (archive, symlink)
	CopyDeleted    = "deleted"     // the source is gone and the task propagates deletes
	CopySourceGone = "source_gone" // the source is gone; the copy is left alone
	CopyDeferred   = "deferred"    // waiting on something else: an archive restore, a giant object's parts
	CopyRetried    = "retried"     // an attempt failed and the job will be tried again
	CopyFailed     = "failed"      // failed for good: moved to the dead-letter queue
)

// CopyResults lists every value of the "result" label.
var CopyResults = []string{CopyCopied, CopySkipped, CopyDeleted, CopySourceGone, CopyDeferred, CopyRetried, CopyFailed}

// Reconcile object results, the values of the "result" label of
// ReconcileObjects.
const (
	ReconcileListed     = "listed"     // a source object the diff looked at
	ReconcileMissing    = "missing"    // in the source, not in the destination
	ReconcileDifferent  = "different"  // in both, but the destination is not the source's version
	ReconcileExtraneous = "extraneous" // in the destination only
	ReconcileQueued     = "queued"     // a copy or delete job the diff queued
	ReconcileDeleted    = "deleted"    // a destination-only object a sync run deleted
)

// ReconcileObjectResults lists every value of ReconcileObjects' "result" label.
var ReconcileObjectResults = []string{ReconcileListed, ReconcileMissing, ReconcileDifferent, ReconcileExtraneous, ReconcileQueued, ReconcileDeleted}

// Configuration reload results, the values of the "result" label of
// ConfigReloads.
const (
	ReloadSuccess = "success"
	ReloadFailure = "failure"
)

// Reconcile run results, the values of the "result" label of ReconcileRuns.
const (
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// Metrics holds every series. Create it once per process with New.
type Metrics struct {
	EventsReceived *prometheus.CounterVec
	JobsQueued     *prometheus.CounterVec
	ObjectsCopied  *prometheus.CounterVec
	BytesCopied    *prometheus.CounterVec
	CopyDuration   *prometheus.HistogramVec
	JobsInFlight   prometheus.Gauge
	HTTPRequests   *prometheus.CounterVec
	HTTPDuration   *prometheus.HistogramVec

	ReconcileObjects     *prometheus.CounterVec
	ReconcileRuns        *prometheus.CounterVec
	ReconcileDuration    *prometheus.HistogramVec
	ReconcileLastSuccess *prometheus.GaugeVec
	ReconcileRunning     *prometheus.GaugeVec
	ReconcileInterval    *prometheus.GaugeVec
	ReconcileProgress    *prometheus.GaugeVec
	ReconcileETA         *prometheus.GaugeVec

	Redeliveries     *prometheus.CounterVec
	EndToEndLag      *prometheus.HistogramVec
	PartsInFlight    prometheus.Gauge
	MemoryBudgetUsed prometheus.Gauge
	MemoryBudget     prometheus.Gauge

	// What the sweepers found that no worker would have done by itself.
	LeasesExpired  *prometheus.CounterVec
	StuckJobs      prometheus.Counter
	OrphansAborted *prometheus.CounterVec

	// A task's bandwidth cap (options.bandwidth) and the time it held
	// reads back.
	SourceBandwidth     *prometheus.GaugeVec
	SourceBandwidthWait *prometheus.CounterVec

	// Configuration reloads (SIGHUP): how each went, and when the
	// configuration in use was loaded (at start, or by the last reload
	// that succeeded).
	ConfigReloads           *prometheus.CounterVec
	ConfigLastReloadSuccess prometheus.Gauge

	queue *queueCollector

	// The series the gateway touches on every request, looked up without
	// hashing label values (the lookups were 1.6% of its CPU at full
	// rate): events is filled by New and only read after; queued is
	// replaced whole by SetTasks; http fills as routes answer.
	events     map[[2]string]prometheus.Counter
	queued     atomic.Pointer[map[string]prometheus.Counter]
	http       sync.Map // httpKey -> *httpSeries
	httpSeries atomic.Int64
	tasksMu    sync.Mutex // serialises SetTasks
}

// LagBuckets are the end-to-end lag histogram's upper bounds, from 5 ms
// (a small object copied while the event is still fresh takes a few
// milliseconds; buckets that started at 0.5 s read an 8 ms p99 as 495 ms)
// to a day. 60 s is one of them, so the SLO "99% within 60 s" is read
// from the histogram exactly.
var LagBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600, 4 * 3600, 24 * 3600}

// NewRegistry returns the registry the gateway serves on /metrics, with
// the Go runtime and process collectors already on it; New adds oss2s3's
// own series.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// New creates the series and registers them with reg. Label values from
// fixed sets are created at zero for every task in tasks, so that a rate()
// over them starts from a known value.
func New(reg prometheus.Registerer, tasks []string) *Metrics {
	m := &Metrics{
		EventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_received_total",
			Help: "OSS event records received, by source and result.",
		}, []string{"source", "result"}),
		JobsQueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_queued_total",
			Help: "Copy jobs acknowledged by JetStream, by task.",
		}, []string{"task"}),
		ObjectsCopied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "objects_total",
			Help: "Jobs finished by the copy workers, by task and result.",
		}, []string{"task", "result"}),
		BytesCopied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "copied_bytes_total",
			Help: "Bytes written to the destination by completed copies, by task.",
		}, []string{"task"}),
		CopyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "copy_duration_seconds",
			Help:    "Time to copy one object, from the source HEAD to the destination's answer, by task.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"task"}),
		JobsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "jobs_in_flight",
			Help: "Copy jobs this process is working on now.",
		}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests answered by the gateway, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		ReconcileObjects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "reconcile_objects_total",
			Help: "Objects seen by reconcile runs, by task and result (listed, missing, different, extraneous, queued, deleted).",
		}, []string{"task", "result"}),
		ReconcileRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "reconcile_runs_total",
			Help: "Reconcile runs finished, by task and result.",
		}, []string{"task", "result"}),
		ReconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "reconcile_duration_seconds",
			Help:    "Time a reconcile run took from start to its last shard, by task.",
			Buckets: prometheus.ExponentialBuckets(1, 3, 10),
		}, []string{"task"}),
		ReconcileLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "reconcile_last_success_timestamp_seconds",
			Help: "Unix time the newest successful reconcile run of a task finished, as the runs bucket records it (runs are kept 7 days): every replica exports it, from its start on. Absent while the bucket holds no successful run of the task.",
		}, []string{"task"}),
		ReconcileRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "reconcile_running",
			Help: "1 while a reconcile run of the task is in progress on this replica.",
		}, []string{"task"}),
		ReconcileProgress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "reconcile_progress_ratio",
			Help: "How far the task's newest reconcile run in progress is, 0 to 1: the phase behind of its listing and its copies (GET /v1/reconciles/{id} tells both). Every replica exports it for the runs it sees; absent when no run is in progress or its share is not known yet.",
		}, []string{"task"}),
		ReconcileETA: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "reconcile_eta_seconds",
			Help: "Seconds left of the task's newest reconcile run in progress, at its rate over the last minute. Absent when not known.",
		}, []string{"task"}),
		ReconcileInterval: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "reconcile_interval_seconds",
			Help: "The longest time between two scheduled reconcile runs of the task; not set for a task without a schedule. The overdue alert fires at twice this since the last success.",
		}, []string{"task"}),
		Redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "job_redeliveries_total",
			Help: "Jobs this process received again after an earlier attempt (a retry, an expired ack wait, a crashed worker), by task.",
		}, []string{"task"}),
		EndToEndLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "end_to_end_lag_seconds",
			Help:    "Time from the OSS event to the destination holding the change (copied or deleted), by task. Jobs without an event time (reconcile, SQS key lists) are not counted.",
			Buckets: LagBuckets,
		}, []string{"task"}),
		PartsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "multipart_parts_in_flight",
			Help: "Multipart parts this process is transferring now (ranged GET to UploadPart).",
		}),
		MemoryBudgetUsed: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "memory_budget_used_bytes",
			Help: "Bytes of part buffers taken from the memory budget now.",
		}),
		MemoryBudget: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "memory_budget_bytes",
			Help: "The memory budget for part buffers (workers.memory_budget).",
		}),
		LeasesExpired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "leases_expired_total",
			Help: "Multipart copies whose worker stopped renewing its lease (it died or was cut off), queued for another worker to resume from their last part, by task.",
		}, []string{"task"}),
		StuckJobs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "queue_stuck_jobs_total",
			Help: "Jobs found in the job stream that JetStream would never deliver again (a consumer with a delivery limit ended them), queued afresh.",
		}),
		OrphansAborted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "orphan_uploads_aborted_total",
			Help: "Multipart uploads oss2s3 started at the destination that no live copy owned any more, aborted by the orphan sweeper, by task.",
		}, []string{"task"}),
		SourceBandwidth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "source_bandwidth_limit_bytes_per_second",
			Help: "The most this replica reads from the task's source a second (options.bandwidth); 0: no cap.",
		}, []string{"task"}),
		SourceBandwidthWait: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "source_bandwidth_wait_seconds_total",
			Help: "Time reads from the task's source were held back by its bandwidth cap; its rate near the number of busy workers means the cap is what limits the copy.",
		}, []string{"task"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "config_reloads_total",
			Help: "Configuration reloads asked for (SIGHUP), by result: success (the file's configuration is in use) or failure (refused: the previous one is still in use; the log and GET /v1/tasks say why).",
		}, []string{"result"}),
		ConfigLastReloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_success_timestamp_seconds",
			Help: "Unix time the configuration in use was loaded: at start, or by the last reload that succeeded.",
		}),
		queue: newQueueCollector(),
	}
	reg.MustRegister(m.EventsReceived, m.JobsQueued, m.ObjectsCopied, m.BytesCopied,
		m.CopyDuration, m.JobsInFlight, m.HTTPRequests, m.HTTPDuration,
		m.ReconcileObjects, m.ReconcileRuns, m.ReconcileDuration, m.ReconcileLastSuccess, m.ReconcileRunning, m.ReconcileInterval,
		m.ReconcileProgress, m.ReconcileETA,
		m.Redeliveries, m.EndToEndLag, m.PartsInFlight, m.MemoryBudgetUsed, m.MemoryBudget,
		m.LeasesExpired, m.StuckJobs, m.OrphansAborted, m.SourceBandwidth, m.SourceBandwidthWait,
		m.ConfigReloads, m.ConfigLastReloadSuccess, m.queue)
	m.events = map[[2]string]prometheus.Counter{}
	for _, src := range Sources {
		for _, r := range []string{EventQueued, EventDuplicate, EventIgnored, EventUnrouted, EventRejected, EventFailed} {
			m.events[[2]string{src, r}] = m.EventsReceived.WithLabelValues(src, r)
		}
	}
	for _, r := range []string{ReloadSuccess, ReloadFailure} {
		m.ConfigReloads.WithLabelValues(r)
	}
	m.SetTasks(tasks)
	return m
}

// SetTasks makes tasks the configured ones, at start and after each
// configuration reload: their series are created at zero (rate() starts
// from a known value), the queue series name them (the jobs of any other
// task count under OtherTask), and the gauges of a task no longer
// configured are removed. Its counters stay, as a counter's history does.
func (m *Metrics) SetTasks(tasks []string) {
	if m == nil {
		return
	}
	m.tasksMu.Lock()
	defer m.tasksMu.Unlock()
	queued := map[string]prometheus.Counter{}
	for _, t := range tasks {
		queued[t] = m.JobsQueued.WithLabelValues(t)
	}
	if old := m.queued.Load(); old != nil {
		for t := range *old {
			if _, ok := queued[t]; !ok {
				m.SourceBandwidth.DeleteLabelValues(t)
			}
		}
	}
	m.queued.Store(&queued)
	m.queue.setTasks(tasks)
	for _, t := range tasks {
		m.BytesCopied.WithLabelValues(t)
		m.SourceBandwidth.WithLabelValues(t)
		m.SourceBandwidthWait.WithLabelValues(t)
		for _, r := range CopyResults {
			m.ObjectsCopied.WithLabelValues(t, r)
		}
		for _, r := range ReconcileObjectResults {
			m.ReconcileObjects.WithLabelValues(t, r)
		}
		for _, r := range []string{RunSucceeded, RunFailed} {
			m.ReconcileRuns.WithLabelValues(t, r)
		}
		m.ReconcileRunning.WithLabelValues(t)
		m.Redeliveries.WithLabelValues(t)
		m.LeasesExpired.WithLabelValues(t)
		m.OrphansAborted.WithLabelValues(t)
	}
}

// ConfigLoaded records the configuration loaded at start, or a reload:
// ok says whether the file's configuration is now in use; at is when.
// The first call (the start) counts no reload.
func (m *Metrics) ConfigLoaded(reload, ok bool, at time.Time) {
	if m == nil {
		return
	}
	if reload {
		result := ReloadFailure
		if ok {
			result = ReloadSuccess
		}
		m.ConfigReloads.WithLabelValues(result).Inc()
	}
	if ok {
		m.ConfigLastReloadSuccess.Set(float64(at.UnixMilli()) / 1000)
	}
}

// ObserveLag records the end-to-end lag of a job whose change the
// destination now holds. A zero event time (a job no event caused) counts
// nothing.
func (m *Metrics) ObserveLag(task string, eventTime, done time.Time) {
	if m == nil || eventTime.IsZero() {
		return
	}
	m.EndToEndLag.WithLabelValues(task).Observe(max(done.Sub(eventTime).Seconds(), 0))
}

// BudgetTaken records n bytes of part buffers taken from the memory
// budget; BudgetGiven records them given back.
func (m *Metrics) BudgetTaken(n int64) {
	if m == nil {
		return
	}
	m.MemoryBudgetUsed.Add(float64(n))
}

// BudgetGiven is the counterpart of BudgetTaken.
func (m *Metrics) BudgetGiven(n int64) {
	if m == nil {
		return
	}
	m.MemoryBudgetUsed.Sub(float64(n))
}

// PartStarted records a multipart part starting its transfer; PartDone
// records it finished, whatever the outcome.
func (m *Metrics) PartStarted() {
	if m == nil {
		return
	}
	m.PartsInFlight.Inc()
}

// PartDone is the counterpart of PartStarted.
func (m *Metrics) PartDone() {
	if m == nil {
		return
	}
	m.PartsInFlight.Dec()
}

// OtherTask is the "task" label of queue and dead-letter jobs of tasks this
// replica is not configured with (a task removed from the configuration,
// or a replica whose configuration lags behind the others').
const OtherTask = "(other)"

// QueueStats is the state of the shared JetStream work queue, as one
// replica sees it. Every replica reports the same values: aggregate them
// with max(), never sum().
type QueueStats struct {
	Jobs        map[string]uint64 // jobs in the work queue (waiting or being worked on), by task
	OldestJob   time.Time         // when the oldest job in the work queue was queued; zero when empty
	Unacked     uint64            // jobs delivered to a worker and not yet finished, over every replica
	Redelivered uint64            // jobs delivered more than once and not yet finished
	DeadLetters map[string]uint64 // jobs in the dead-letter stream, by task
	// NewestDead is the newest dead letter of each task that has one: the
	// key an alert names (see deploy/prometheus/rules).
	NewestDead map[string]DeadLetterRef
}

// DeadLetterRef names one dead letter: its object key and when it was
// parked.
type DeadLetterRef struct {
	Key string
	At  time.Time
}

// MaxKeyLabel is the longest key label value (bytes) the newest dead
// letter's series carries; longer keys are cut at a rune boundary and end
// in "...".
const MaxKeyLabel = 256

// QueueInspector reports the queue's state; transfer.Queue is one.
type QueueInspector interface {
	QueueStats(ctx context.Context) (QueueStats, error)
}

// WatchQueue makes every scrape ask q for the queue's state (with a short
// timeout, so a slow or unreachable JetStream never stalls /metrics).
// Before it is called, the queue series are not exported.
func (m *Metrics) WatchQueue(q QueueInspector) {
	if m == nil {
		return
	}
	m.queue.source.Store(&q)
}

// QueueScrapeTimeout bounds the questions one scrape asks JetStream.
const QueueScrapeTimeout = 2 * time.Second

// QueueStatsMaxAge is how long one reading of the queue's state serves
// scrapes: several Prometheus servers, or a tool polling /metrics, then
// cost JetStream at most a few API requests a second.
const QueueStatsMaxAge = time.Second

type queueCollector struct {
	tasks  atomic.Pointer[[]string] // the configured tasks, in their order
	source atomic.Pointer[QueueInspector]
	now    func() time.Time

	mu      sync.Mutex
	readAt  time.Time // when last was read; zero: never
	last    QueueStats
	lastErr error

	up, jobs, oldest, unacked, redelivered, dead, newestDead *prometheus.Desc
}

func newQueueCollector() *queueCollector {
	name := func(n string) string { return prometheus.BuildFQName(namespace, "", n) }
	c := &queueCollector{
		now: time.Now,
		up: prometheus.NewDesc(name("queue_up"),
			"1 if this replica could read the JetStream queue's state at this scrape, 0 if not (the other queue series are then missing).", nil, nil),
		jobs: prometheus.NewDesc(name("queue_jobs"),
			"Jobs in the shared work queue, waiting or being worked on, by task. The same on every replica: aggregate with max().", []string{"task"}, nil),
		oldest: prometheus.NewDesc(name("queue_oldest_job_age_seconds"),
			"Age of the oldest job in the shared work queue; 0 when it is empty.", nil, nil),
		unacked: prometheus.NewDesc(name("queue_unacked_jobs"),
			"Jobs delivered to a worker of any replica and not finished yet.", nil, nil),
		redelivered: prometheus.NewDesc(name("queue_redelivered_jobs"),
			"Jobs in the work queue that were delivered more than once and are not finished yet.", nil, nil),
		dead: prometheus.NewDesc(name("dead_letter_jobs"),
			"Jobs in the dead-letter stream, by task: failed for good, waiting for a redrive.", []string{"task"}, nil),
		// The one label value that comes from data rather than a closed
		// set: at most one series per configured task (the newest dead
		// letter only, replaced by the next), the key cut to MaxKeyLabel
		// bytes. It lets an alert name the object.
		newestDead: prometheus.NewDesc(name("dead_letter_newest_timestamp_seconds"),
			"When the newest dead letter of each configured task was parked, labelled with its object key (one series per task).", []string{"task", "key"}, nil),
	}
	c.setTasks(nil)
	return c
}

func (c *queueCollector) setTasks(tasks []string) {
	tasks = append([]string(nil), tasks...)
	c.tasks.Store(&tasks)
}

// byTask returns the counts of tasks in their order, then the sum of
// every other task's count.
func byTask(tasks []string, counts map[string]uint64) []float64 {
	out := make([]float64, len(tasks)+1)
	known := 0.0
	var total uint64
	for i, t := range tasks {
		out[i] = float64(counts[t])
		known += out[i]
	}
	for _, n := range counts {
		total += n
	}
	out[len(tasks)] = float64(total) - known
	return out
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.jobs, c.oldest, c.unacked, c.redelivered, c.dead, c.newestDead} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.source.Load()
	if src == nil {
		return
	}
	st, err := c.read(*src)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	tasks := *c.tasks.Load()
	jobs, dead := byTask(tasks, st.Jobs), byTask(tasks, st.DeadLetters)
	for i, t := range append(tasks[:len(tasks):len(tasks)], OtherTask) {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, jobs[i], t)
		ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, dead[i], t)
	}
	for i, t := range tasks {
		if d, ok := st.NewestDead[t]; ok && dead[i] > 0 {
			ch <- prometheus.MustNewConstMetric(c.newestDead, prometheus.GaugeValue, float64(d.At.UnixMilli())/1000, t, keyLabel(d.Key))
		}
	}
	age := 0.0
	if !st.OldestJob.IsZero() {
		age = max(c.now().Sub(st.OldestJob).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(c.unacked, prometheus.GaugeValue, float64(st.Unacked))
	ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(st.Redelivered))
}

// read returns the queue's state, read again only when the last reading
// is older than QueueStatsMaxAge.
func (c *queueCollector) read(src QueueInspector) (QueueStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.readAt.IsZero() || now.Sub(c.readAt) >= QueueStatsMaxAge || now.Before(c.readAt) {
		ctx, cancel := context.WithTimeout(context.Background(), QueueScrapeTimeout)
		defer cancel()
		c.last, c.lastErr = src.QueueStats(ctx)
		c.readAt = now
	}
	return c.last, c.lastErr
}

// Events is the EventsReceived counter of source and result.
func (m *Metrics) Events(source, result string) prometheus.Counter {
	if c, ok := m.events[[2]string{source, result}]; ok {
		return c
	}
	return m.EventsReceived.WithLabelValues(source, result)
}

// Queued is the JobsQueued counter of task.
func (m *Metrics) Queued(task string) prometheus.Counter {
	if c, ok := (*m.queued.Load())[task]; ok {
		return c
	}
	return m.JobsQueued.WithLabelValues(task)
}

type httpKey struct {
	route, method string
	code          int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// MethodOther is the "method" label of every request whose method is not
// one of HTTP's standard ones: a client may send any token as its method,
// and each would otherwise be a series kept for ever (issue 14: 300
// invented methods made 300 series, 50 long ones a 10 MB /metrics).
const MethodOther = "other"

// RouteOther is the "route" label ObserveHTTP uses once maxHTTPSeries
// series exist: a safety net for a caller that passes something other than
// a route pattern.
const RouteOther = "(other)"

// maxHTTPSeries bounds the HTTP series (and ObserveHTTP's cache of them)
// whatever the callers pass. The gateway's routes, methods and status
// codes make a few dozen.
const maxHTTPSeries = 512

// httpMethod returns method if it is a standard HTTP method, MethodOther
// if not. The returned string is a constant, never the request's.
func httpMethod(method string) string {
	switch method {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodConnect:
		return http.MethodConnect
	case http.MethodOptions:
		return http.MethodOptions
	case http.MethodTrace:
		return http.MethodTrace
	}
	return MethodOther
}

// ObserveHTTP records one answered request. route must be a route pattern
// from the gateway's route table (never the raw path, which may hold a
// key); method may be anything a client sent: it is labelled as itself only
// when it is a standard method. So the series are few, and each is looked
// up once.
func (m *Metrics) ObserveHTTP(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	if code < 100 || code > 999 {
		code = 0
	}
	hs := m.httpSeriesOf(httpKey{route, httpMethod(method), code})
	hs.requests.Inc()
	hs.duration.Observe(d.Seconds())
}

// httpSeriesOf returns the series of k, created on first use; past
// maxHTTPSeries, new keys share the route RouteOther. (The count may pass
// the bound by the requests racing to create series, no more.)
func (m *Metrics) httpSeriesOf(k httpKey) *httpSeries {
	if s, ok := m.http.Load(k); ok {
		return s.(*httpSeries)
	}
	if m.httpSeries.Load() >= maxHTTPSeries {
		k.route = RouteOther
		if s, ok := m.http.Load(k); ok {
			return s.(*httpSeries)
		}
	}
	s, loaded := m.http.LoadOrStore(k, &httpSeries{
		requests: m.HTTPRequests.WithLabelValues(k.route, k.method, strconv.Itoa(k.code)),
		duration: m.HTTPDuration.WithLabelValues(k.route),
	})
	if !loaded {
		m.httpSeries.Add(1)
	}
	return s.(*httpSeries)
}

// keyLabel is key as valid UTF-8 (a label must be), cut to MaxKeyLabel
// bytes at a rune boundary.
func keyLabel(key string) string {
	key = strings.ToValidUTF8(key, "\uFFFD")
	if len(key) <= MaxKeyLabel {
		return key
	}
	cut := MaxKeyLabel - len("...")
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	return key[:cut] + "..."
}
