// Package metrics owns every Prometheus series oss2s3 exports: their names,
// labels and help texts live in this one file.
package metrics

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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

	Redeliveries     *prometheus.CounterVec
	EndToEndLag      *prometheus.HistogramVec
	PartsInFlight    prometheus.Gauge
	MemoryBudgetUsed prometheus.Gauge
	MemoryBudget     prometheus.Gauge

	queue *queueCollector

	// The series the gateway touches on every request, looked up without
	// hashing label values (the lookups were 1.6% of its CPU at full
	// rate): events and queued are filled by New and only read after;
	// http fills as routes answer.
	events map[[2]string]prometheus.Counter
	queued map[string]prometheus.Counter
	http   sync.Map // httpKey -> *httpSeries
}

// LagBuckets are the end-to-end lag histogram's upper bounds: 60 s is one
// of them, so the SLO "99% within 60 s" is read from the histogram exactly.
var LagBuckets = []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600, 4 * 3600, 24 * 3600}

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
		queue: newQueueCollector(tasks),
	}
	reg.MustRegister(m.EventsReceived, m.JobsQueued, m.ObjectsCopied, m.BytesCopied,
		m.CopyDuration, m.JobsInFlight, m.HTTPRequests, m.HTTPDuration,
		m.ReconcileObjects, m.ReconcileRuns, m.ReconcileDuration, m.ReconcileLastSuccess, m.ReconcileRunning, m.ReconcileInterval,
		m.Redeliveries, m.EndToEndLag, m.PartsInFlight, m.MemoryBudgetUsed, m.MemoryBudget, m.queue)
	m.events = map[[2]string]prometheus.Counter{}
	m.queued = map[string]prometheus.Counter{}
	for _, src := range Sources {
		for _, r := range []string{EventQueued, EventDuplicate, EventIgnored, EventUnrouted, EventRejected, EventFailed} {
			m.events[[2]string{src, r}] = m.EventsReceived.WithLabelValues(src, r)
		}
	}
	for _, t := range tasks {
		m.queued[t] = m.JobsQueued.WithLabelValues(t)
		m.BytesCopied.WithLabelValues(t)
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
	}
	return m
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
}

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
	tasks  []string
	source atomic.Pointer[QueueInspector]
	now    func() time.Time

	mu      sync.Mutex
	readAt  time.Time // when last was read; zero: never
	last    QueueStats
	lastErr error

	up, jobs, oldest, unacked, redelivered, dead *prometheus.Desc
}

func newQueueCollector(tasks []string) *queueCollector {
	name := func(n string) string { return prometheus.BuildFQName(namespace, "", n) }
	return &queueCollector{
		tasks: tasks,
		now:   time.Now,
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
	}
}

// byTask returns the counts of the configured tasks in their order, then
// the sum of every other task's count.
func (c *queueCollector) byTask(counts map[string]uint64) []float64 {
	out := make([]float64, len(c.tasks)+1)
	known := 0.0
	var total uint64
	for i, t := range c.tasks {
		out[i] = float64(counts[t])
		known += out[i]
	}
	for _, n := range counts {
		total += n
	}
	out[len(c.tasks)] = float64(total) - known
	return out
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.jobs, c.oldest, c.unacked, c.redelivered, c.dead} {
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
	jobs, dead := c.byTask(st.Jobs), c.byTask(st.DeadLetters)
	for i, t := range append(c.tasks[:len(c.tasks):len(c.tasks)], OtherTask) {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, jobs[i], t)
		ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, dead[i], t)
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
	if c, ok := m.queued[task]; ok {
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

// ObserveHTTP records one answered request. route is the route pattern
// (never the raw path, which may hold a key), so the series are few and
// each is looked up once.
func (m *Metrics) ObserveHTTP(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	k := httpKey{route, method, code}
	s, ok := m.http.Load(k)
	if !ok {
		s, _ = m.http.LoadOrStore(k, &httpSeries{
			requests: m.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(code)),
			duration: m.HTTPDuration.WithLabelValues(route),
		})
	}
	hs := s.(*httpSeries)
	hs.requests.Inc()
	hs.duration.Observe(d.Seconds())
}
