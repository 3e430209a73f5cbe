package ingest

import (
	"context"
	"log/slog"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// Publisher durably queues jobs; it returns only when every job is stored.
type Publisher interface {
	Publish(ctx context.Context, jobs []transfer.Job) (transfer.PublishResult, error)
}

// Router names the tasks that want an object.
type Router interface {
	Route(bucket, key string) []string
}

// Result counts what happened to a batch of records.
type Result struct {
	Queued    int `json:"queued"`    // new jobs stored in JetStream
	Duplicate int `json:"duplicate"` // jobs JetStream already held (the same event sent again, or by another path)
	Ignored   int `json:"ignored"`   // records that are not a change of an object (e.g. UploadPart)
	Unrouted  int `json:"unrouted"`  // records no task wants
}

// Intake turns OSS event records, however they arrived (webhook,
// EventBridge, MNS, SQS), into copy jobs: it applies the event table,
// routes each record to the tasks that want it, and publishes the jobs
// durably. It is shared by every way events arrive.
type Intake struct {
	pub    Publisher
	router Router
	m      *metrics.Metrics
	log    *slog.Logger
}

// NewIntake returns an Intake.
func NewIntake(pub Publisher, router Router, m *metrics.Metrics, log *slog.Logger) *Intake {
	return &Intake{pub: pub, router: router, m: m, log: log}
}

// Jobs turns records into jobs, counting the ignored and unrouted ones.
func (in *Intake) Jobs(source string, records []ossevent.Record) ([]transfer.Job, Result) {
	var res Result
	var jobs []transfer.Job
	for i := range records {
		r := &records[i]
		kind := ossevent.KindOf(r.EventName)
		if kind == ossevent.KindIgnore {
			res.Ignored++
			continue
		}
		tasks := in.router.Route(r.OSS.Bucket.Name, r.OSS.Object.Key)
		if len(tasks) == 0 {
			res.Unrouted++
			continue
		}
		for _, task := range tasks {
			jobs = append(jobs, transfer.Job{
				Task:       task,
				Kind:       string(kind),
				Origin:     source,
				EventTime:  r.Time(),
				ObjectArgs: transfer.ObjectArgs{Bucket: r.OSS.Bucket.Name, Key: r.OSS.Object.Key, ETag: r.ETag(), Size: r.OSS.Object.Size, Event: r.EventName},
			})
		}
	}
	return jobs, res
}

// Accept queues the jobs of records and returns only once JetStream has
// stored all of them. On error nothing is to be considered accepted: the
// sender must send the records again (the repeats of jobs that did get in
// are recognised as duplicates).
func (in *Intake) Accept(ctx context.Context, source string, records []ossevent.Record) (Result, error) {
	jobs, res := in.Jobs(source, records)
	return in.Publish(ctx, source, jobs, res)
}

// Duplicates counts records already accepted (a request sent again) as
// Accept would count them had JetStream recognised every job as one it
// holds, and queues nothing.
func (in *Intake) Duplicates(source string, records []ossevent.Record) Result {
	jobs, res := in.Jobs(source, records)
	res.Duplicate = len(jobs)
	in.count(source, metrics.EventIgnored, res.Ignored)
	in.count(source, metrics.EventUnrouted, res.Unrouted)
	in.count(source, metrics.EventDuplicate, res.Duplicate)
	return res
}

// Publish queues jobs made by Jobs and counts the outcome in res.
func (in *Intake) Publish(ctx context.Context, source string, jobs []transfer.Job, res Result) (Result, error) {
	// Series are created at start (metrics.New); counting only what is
	// not zero saves label lookups per request on the hot path.
	in.count(source, metrics.EventIgnored, res.Ignored)
	in.count(source, metrics.EventUnrouted, res.Unrouted)
	if len(jobs) == 0 {
		return res, nil
	}
	pr, err := in.pub.Publish(ctx, jobs)
	// Jobs stored before a failure are counted as queued: the sender will
	// send them again, and then they count as duplicates.
	res.Queued, res.Duplicate = pr.Queued, pr.Duplicate
	for i := range jobs {
		if pr.IsQueued(i) {
			in.m.Queued(jobs[i].Task).Inc()
		}
	}
	in.count(source, metrics.EventQueued, pr.Queued)
	in.count(source, metrics.EventDuplicate, pr.Duplicate)
	if err != nil {
		failed := len(jobs) - pr.Queued - pr.Duplicate
		in.count(source, metrics.EventFailed, failed)
		in.log.Warn("could not queue events", "source", source, "jobs", len(jobs), "failed", failed, "err", err)
		return res, err
	}
	return res, nil
}

// count adds n events of source with result to EventsReceived.
func (in *Intake) count(source, result string, n int) {
	if n != 0 {
		in.m.Events(source, result).Add(float64(n))
	}
}
