// Package sqsingest pulls OSS events from Amazon SQS queues (the queue Data
// Transfer Hub users already feed) and queues them as copy jobs. A message
// is deleted from SQS only after JetStream has stored its jobs; a message
// that cannot be understood is left for the queue's own redrive policy.
package sqsingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// Config is one queue to pull from.
type Config struct {
	Name            string `yaml:"name"`
	QueueURL        string `yaml:"queue_url"`
	Region          string `yaml:"region"`
	Endpoint        string `yaml:"endpoint"` // for SQS-compatible servers; empty means AWS
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	SessionToken    string `yaml:"session_token"`
	// Task receives the seed function's {"key": ..., "size": ...}
	// messages, which do not name a bucket. Full OSS event documents and
	// S3-style records are routed by bucket and prefix like any event.
	Task              string        `yaml:"task"`
	WaitSeconds       int32         `yaml:"wait_seconds"`       // long polling, 1 to 20 (default 20)
	VisibilityTimeout time.Duration `yaml:"visibility_timeout"` // 0: the queue's own
	Pollers           int           `yaml:"pollers"`            // concurrent receive loops (default 1)
}

// Ingester pulls one queue.
type Ingester struct {
	cfg     Config
	client  *sqs.Client
	routing func() Routing
	m       *metrics.Metrics
	log     *slog.Logger
}

// Routing is what a batch is queued with, as the configuration has it now:
// the Intake (which routes records by the tasks) and the task named by
// Config.Task, which {"key","size"} messages are for (nil when the queue
// names none). A configuration reload may replace it between two batches;
// each batch reads it once, so its messages are all routed alike.
type Routing struct {
	Intake *ingest.Intake
	Task   *transfer.Task
}

// New builds the SQS client for cfg; routing gives the Intake and the task
// of each batch.
func New(ctx context.Context, cfg Config, routing func() Routing, m *metrics.Metrics, log *slog.Logger) (*Ingester, error) {
	if cfg.WaitSeconds <= 0 || cfg.WaitSeconds > 20 {
		cfg.WaitSeconds = 20
	}
	if cfg.Pollers <= 0 {
		cfg.Pollers = 1
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(cfg.Region)}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqs %s: aws config: %w", cfg.Name, err)
	}
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Ingester{cfg: cfg, client: client, routing: routing, m: m, log: log.With("sqs", cfg.Name)}, nil
}

// Run pulls until ctx is done.
func (g *Ingester) Run(ctx context.Context) error {
	done := make(chan struct{}, g.cfg.Pollers)
	for range g.cfg.Pollers {
		go func() { g.poll(ctx); done <- struct{}{} }()
	}
	for range g.cfg.Pollers {
		<-done
	}
	return nil
}

func (g *Ingester) poll(ctx context.Context) {
	g.log.Info("sqs ingester started", "queue", g.cfg.QueueURL)
	pause := time.Duration(0)
	for ctx.Err() == nil {
		if pause > 0 {
			sleep(ctx, pause)
		}
		in := &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(g.cfg.QueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: g.cfg.WaitSeconds,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		}
		if g.cfg.VisibilityTimeout > 0 {
			in.VisibilityTimeout = int32(g.cfg.VisibilityTimeout.Seconds())
		}
		out, err := g.client.ReceiveMessage(ctx, in)
		if err != nil {
			if ctx.Err() == nil {
				pause = backoff(pause)
				g.log.Warn("sqs receive failed", "err", err, "retry_in", pause)
			}
			continue
		}
		if len(out.Messages) == 0 {
			pause = 0
			continue
		}
		// A batch received is seen through even if shutdown starts
		// meanwhile: its jobs are queued and its messages deleted now,
		// rather than coming back after the visibility timeout.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err = g.handle(hctx, out.Messages)
		cancel()
		if err != nil {
			// JetStream cannot take the jobs (full, or down): stop
			// pulling for a while. Nothing is deleted, so the messages
			// come back when their visibility timeout ends.
			pause = backoff(pause)
			g.log.Warn("sqs ingester paused: jobs could not be queued", "err", err, "messages", len(out.Messages), "retry_in", pause)
			continue
		}
		pause = 0
	}
	g.log.Info("sqs ingester stopped")
}

// handle queues the jobs of one batch, then deletes the messages whose
// jobs are stored.
func (g *Ingester) handle(ctx context.Context, msgs []types.Message) error {
	var jobs []transfer.Job
	var res ingest.Result
	var done []types.DeleteMessageBatchRequestEntry
	rt := g.routing()
	for i, msg := range msgs {
		j, r, err := g.jobs(rt, aws.ToString(msg.Body), aws.ToString(msg.MessageId))
		if err != nil {
			g.m.Events(metrics.SourceSQS, metrics.EventRejected).Inc()
			g.log.Warn("sqs message not understood; left for the queue's redrive policy", "message_id", aws.ToString(msg.MessageId),
				"receive_count", msg.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)], "err", err)
			continue
		}
		jobs = append(jobs, j...)
		res.Ignored, res.Unrouted = res.Ignored+r.Ignored, res.Unrouted+r.Unrouted
		done = append(done, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: msg.ReceiptHandle})
	}
	if _, err := rt.Intake.Publish(ctx, metrics.SourceSQS, jobs, res); err != nil {
		return err
	}
	if len(done) == 0 {
		return nil
	}
	out, err := g.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(g.cfg.QueueURL), Entries: done})
	if err != nil {
		// The jobs are stored; the messages will be received again and
		// their jobs recognised as duplicates.
		g.log.Warn("sqs delete failed; messages will come back as duplicates", "err", err)
		return nil
	}
	for _, f := range out.Failed {
		g.log.Warn("sqs delete of one message failed", "id", aws.ToString(f.Id), "code", aws.ToString(f.Code), "message", aws.ToString(f.Message))
	}
	return nil
}

// jobs understands the three message formats: the seed function's
// {"key","size"}, an OSS trigger document, and S3-style event records (each
// possibly wrapped in an SNS notification). msgID is the SQS message's ID.
func (g *Ingester) jobs(rt Routing, body, msgID string) ([]transfer.Job, ingest.Result, error) {
	if !utf8.ValidString(body) {
		return nil, ingest.Result{}, errors.New("message body is not valid UTF-8")
	}
	var probe struct {
		Key     *string         `json:"key"`
		Size    *int64          `json:"size"`
		Events  json.RawMessage `json:"events"`
		Records json.RawMessage `json:"Records"`
		Type    string          `json:"Type"`
		Message *string         `json:"Message"`
	}
	if err := json.Unmarshal([]byte(body), &probe); err != nil {
		return nil, ingest.Result{}, fmt.Errorf("message is not JSON: %w", err)
	}
	switch {
	case probe.Type == "Notification" && probe.Message != nil:
		return g.jobs(rt, *probe.Message, msgID)
	case probe.Events != nil:
		doc, err := ossevent.Parse([]byte(body))
		if err != nil {
			return nil, ingest.Result{}, err
		}
		jobs, res := rt.Intake.Jobs(metrics.SourceSQS, doc.Events)
		return jobs, res, nil
	case probe.Records != nil:
		records, err := fromS3Records(probe.Records)
		if err != nil {
			return nil, ingest.Result{}, err
		}
		jobs, res := rt.Intake.Jobs(metrics.SourceSQS, records)
		return jobs, res, nil
	case probe.Key != nil:
		return dthJob(rt.Task, *probe.Key, probe.Size, msgID)
	}
	return nil, ingest.Result{}, errors.New(`message is none of {"key","size"}, {"events":[...]} or {"Records":[...]}`)
}

// dthJob is the job of a {"key","size"} message for the configured task.
// Such a message names no version of the object (no ETag, no event time), so
// its SQS message ID tells a redelivery of it (a duplicate) from a later
// message about the same key (a new change, which must be queued again even
// within the duplicate window).
func dthJob(task *transfer.Task, key string, size *int64, msgID string) ([]transfer.Job, ingest.Result, error) {
	if task == nil {
		return nil, ingest.Result{}, errors.New(`a {"key","size"} message, but the queue's configuration names no task`)
	}
	r := ossevent.Record{EventName: "ObjectCreated:PutObject"}
	r.OSS.Bucket.Name, r.OSS.Object.Key = task.Source.Bucket, key
	if size != nil {
		r.OSS.Object.Size = *size
	}
	if err := r.Validate(); err != nil {
		return nil, ingest.Result{}, err
	}
	return []transfer.Job{{
		Task:       task.Name,
		Kind:       string(ossevent.KindConverge),
		Origin:     metrics.SourceSQS,
		Nonce:      "sqs:" + msgID,
		ObjectArgs: transfer.ObjectArgs{Bucket: task.Source.Bucket, Key: key, Size: r.OSS.Object.Size, Event: r.EventName},
	}}, ingest.Result{}, nil
}

// s3Record is the part of an S3 event notification record oss2s3 reads.
type s3Record struct {
	EventName string `json:"eventName"`
	EventTime string `json:"eventTime"`
	S3        struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key  string `json:"key"`
			Size int64  `json:"size"`
			ETag string `json:"eTag"`
		} `json:"object"`
	} `json:"s3"`
}

// fromS3Records converts S3-style records (keys URL-encoded, "+" for
// space, event names such as ObjectCreated:Put) into OSS records.
func fromS3Records(raw json.RawMessage) ([]ossevent.Record, error) {
	var recs []s3Record
	if err := json.Unmarshal(raw, &recs); err != nil {
		return nil, fmt.Errorf("Records: %w", err) //nolint:staticcheck // ST1005: "Records" is the field's name in the message
	}
	if len(recs) == 0 {
		return nil, errors.New("Records is empty") //nolint:staticcheck // ST1005: "Records" is the field's name in the message
	}
	out := make([]ossevent.Record, len(recs))
	for i, r := range recs {
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			return nil, fmt.Errorf("Records[%d].s3.object.key: %w", i, err) //nolint:staticcheck // ST1005: "Records" is the field's name in the message
		}
		name := r.EventName
		switch {
		case strings.HasPrefix(name, "ObjectRemoved:"):
			name = "ObjectRemoved:DeleteObject"
		case strings.HasPrefix(name, "ObjectCreated:"):
			name = "ObjectCreated:PutObject"
		}
		o := ossevent.Record{EventName: name, EventTime: r.EventTime}
		o.OSS.Bucket.Name = r.S3.Bucket.Name
		o.OSS.Object.Key, o.OSS.Object.Size, o.OSS.Object.ETag = key, r.S3.Object.Size, r.S3.Object.ETag
		if err := o.Validate(); err != nil {
			return nil, fmt.Errorf("Records[%d]: %w", i, err) //nolint:staticcheck // ST1005: "Records" is the field's name in the message
		}
		out[i] = o
	}
	return out, nil
}

func backoff(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Second
	}
	return min(2*d, time.Minute)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
