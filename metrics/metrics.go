// Package metrics owns every Prometheus series oss2s3 exports: their names,
// labels and help texts live in this one file.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
			Help: "Unix time the last successful reconcile run of a task finished.",
		}, []string{"task"}),
		ReconcileRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "reconcile_running",
			Help: "1 while a reconcile run of the task is in progress on this replica.",
		}, []string{"task"}),
	}
	reg.MustRegister(m.EventsReceived, m.JobsQueued, m.ObjectsCopied, m.BytesCopied,
		m.CopyDuration, m.JobsInFlight, m.HTTPRequests, m.HTTPDuration,
		m.ReconcileObjects, m.ReconcileRuns, m.ReconcileDuration, m.ReconcileLastSuccess, m.ReconcileRunning)
	for _, src := range Sources {
		for _, r := range []string{EventQueued, EventDuplicate, EventIgnored, EventUnrouted, EventRejected, EventFailed} {
			m.EventsReceived.WithLabelValues(src, r)
		}
	}
	for _, t := range tasks {
		m.JobsQueued.WithLabelValues(t)
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
	}
	return m
}

// ObserveHTTP records one answered request. route is the route pattern
// (never the raw path, which may hold a key).
func (m *Metrics) ObserveHTTP(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.HTTPDuration.WithLabelValues(route).Observe(d.Seconds())
}
