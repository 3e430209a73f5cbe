package sqsingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/sqsemu"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/sqsingest"
)

const (
	accessKeyID     = "AKIDSQSINGEST"
	secretAccessKey = "secret-of-the-sqs-ingester"
	queueName       = "dth-queue"
	dlqName         = "dth-dlq"
	// waitLimit bounds every wait: generous next to the 1 s visibility
	// timeout and the SDK's retry backoff, small next to a hung test.
	waitLimit = 15 * time.Second
)

type options struct {
	queue      transfer.QueueConfig // URL is set by setup
	maxReceive int                  // > 0: the queue dead-letters to dlqName after this many receives
}

type testBundle struct {
	emu *sqsemu.Server
	url string // the queue the ingester pulls
	dlq string // its dead-letter queue ("" without a redrive policy)
	q   *transfer.Queue
	js  jetstream.JetStream
	reg *prometheus.Registry
	ing *sqsingest.Ingester
}

// setup starts the SQS emulator, a JetStream server and an ingester on them,
// but does not run the ingester: tests that need several messages in one
// receive send them first, then call start.
func setup(t *testing.T, opts options) *testBundle {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	emu := sqsemu.New(sqsemu.Options{Credentials: map[string]string{accessKeyID: secretAccessKey}, Region: "us-east-1"})
	endpoint, err := emu.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	b := &testBundle{emu: emu}
	attrs := map[string]string{"VisibilityTimeout": "1"}
	if opts.maxReceive > 0 {
		b.dlq = emu.CreateQueue(dlqName, nil)
		attrs["RedrivePolicy"] = `{"deadLetterTargetArn":"` + emu.QueueARN(dlqName) + `","maxReceiveCount":` + strconv.Itoa(opts.maxReceive) + `}`
	}
	b.url = emu.CreateQueue(queueName, attrs)

	ns := jstest.Start(t)
	opts.queue.URL = ns.ClientURL()
	b.q, err = transfer.OpenQueue(ctx, opts.queue, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.q.Close)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if b.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}

	dth := &transfer.Task{Name: "dth", Source: transfer.SourceConfig{Bucket: "src"}}
	logs := &transfer.Task{Name: "logs", Source: transfer.SourceConfig{Bucket: "other", Prefixes: []string{"logs/"}}}
	b.reg = prometheus.NewRegistry()
	m := metrics.New(b.reg, []string{"dth", "logs"})
	in := ingest.NewIntake(b.q, transfer.NewRouter([]*transfer.Task{dth, logs}), m, log)
	b.ing, err = sqsingest.New(ctx, sqsingest.Config{
		Name: "q", QueueURL: b.url, Region: "us-east-1", Endpoint: endpoint,
		AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey,
		Task: "dth", WaitSeconds: 1, VisibilityTimeout: time.Second,
	}, func() sqsingest.Routing { return sqsingest.Routing{Intake: in, Task: dth} }, m, log)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// start runs the ingester until the test ends; the cleanup waits for Run
// to return, before the servers it uses stop.
func (b *testBundle) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.ing.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Error("Run did not return after its context was cancelled")
		}
	})
}

func (b *testBundle) send(t *testing.T, bodies ...string) {
	t.Helper()
	for _, body := range bodies {
		if _, err := b.emu.SendMessage(b.url, body); err != nil {
			t.Fatal(err)
		}
	}
}

// jobs reads every job in the stream without consuming it, ordered by task
// and key.
func (b *testBundle) jobs(t *testing.T) []transfer.Job {
	t.Helper()
	ctx := context.Background()
	s, err := b.js.Stream(ctx, transfer.JobStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []transfer.Job
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var j transfer.Job
		if err := json.Unmarshal(m.Data, &j); err != nil {
			t.Fatalf("job %d: %v", seq, err)
		}
		out = append(out, j)
	}
	slices.SortFunc(out, func(a, b transfer.Job) int {
		return strings.Compare(a.Task+"\x00"+a.Key+"\x00"+a.Kind, b.Task+"\x00"+b.Key+"\x00"+b.Kind)
	})
	return out
}

func (b *testBundle) depth(t *testing.T) uint64 {
	t.Helper()
	n, err := b.q.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// work does what a copy worker does to the stream: it takes the jobs
// waiting on the workers' consumer and acknowledges them, which removes
// them (a work-queue stream). It returns the jobs taken.
func (b *testBundle) work(t *testing.T) []transfer.Job {
	t.Helper()
	ctx := context.Background()
	c, err := b.js.Consumer(ctx, transfer.JobStream, transfer.WorkerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(10, jetstream.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var out []transfer.Job
	for m := range batch.Messages() {
		var j transfer.Job
		if err := json.Unmarshal(m.Data(), &j); err != nil {
			t.Fatal(err)
		}
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
		out = append(out, j)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		t.Fatal(err)
	}
	return out
}

// events is oss2s3_events_received_total{source="sqs",result=result} as the
// registry exports it.
func (b *testBundle) events(t *testing.T, result string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "oss2s3_events_received_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["source"] == metrics.SourceSQS && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf(`no series oss2s3_events_received_total{source="sqs",result=%q}`, result)
	return 0
}

// waitFor polls cond until it holds, failing the test with what() after
// waitLimit.
func waitFor(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDeleted waits until n messages are deleted and none is left.
func (b *testBundle) waitDeleted(t *testing.T, n int) {
	t.Helper()
	waitFor(t, func() bool {
		st := b.emu.Stats(b.url)
		return st.Deleted == n && st.Visible+st.InFlight+st.Delayed == 0
	}, func() string { return statsString(b.emu.Stats(b.url)) })
}

func statsString(st sqsemu.QueueStats) string {
	js, _ := json.Marshal(st)
	return "queue stats " + string(js)
}

func ossDocument(t *testing.T, records ...ossevent.Record) string {
	t.Helper()
	js, err := json.Marshal(ossevent.Document{Events: records})
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

// withoutTimes strips what varies from run to run (times, the nonce made of
// the SQS message ID) from jobs.
func withoutTimes(jobs []transfer.Job) []transfer.Job {
	out := slices.Clone(jobs)
	for i := range out {
		out[i].EventTime, out[i].QueuedAt, out[i].Nonce = time.Time{}, time.Time{}, ""
	}
	return out
}

func TestIngester(t *testing.T) {
	t.Parallel()
	eventTime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	putLog := ossevent.NewRecord("ObjectCreated:PutObject", "cn-hangzhou", "other", "logs/x.log", "ETAG", 3, "text/plain", eventTime)
	putSrc := ossevent.NewRecord("ObjectCreated:PutObject", "cn-hangzhou", "src", "same.txt", "SAMEETAG", 9, "text/plain", eventTime)

	// Messages that are understood: each is queued as its jobs, then
	// deleted.
	understood := []struct {
		name      string
		bodies    []string
		want      []transfer.Job
		queued    float64 // oss2s3_events_received_total{source="sqs",result="queued"}
		duplicate float64
	}{
		{
			name:   "DeletesAMessageOnlyAfterItsJobsAreStored",
			bodies: []string{`{"key":"a/b.txt","size":5}`},
			want: []transfer.Job{{
				Task:       "dth",
				Kind:       transfer.KindConverge,
				Origin:     metrics.SourceSQS,
				ObjectArgs: transfer.ObjectArgs{Bucket: "src", Key: "a/b.txt", Size: 5, Event: "ObjectCreated:PutObject"},
			}},
			queued: 1,
		},
		{
			name:   "RoutesAnOSSTriggerDocumentByBucketAndPrefix",
			bodies: []string{ossDocument(t, putLog)},
			want: []transfer.Job{{
				Task:       "logs",
				Kind:       transfer.KindConverge,
				Origin:     metrics.SourceSQS,
				ObjectArgs: transfer.ObjectArgs{Bucket: "other", Key: "logs/x.log", ETag: "ETAG", Size: 3, Event: "ObjectCreated:PutObject"},
			}},
			queued: 1,
		},
		{
			name: "DecodesS3RecordKeysAndMapsRemovesToRemoveJobs",
			bodies: []string{`{"Records":[` +
				`{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"src"},"object":{"key":"dir/hello+world%21.txt","size":7,"eTag":"abc"}}},` +
				`{"eventName":"ObjectRemoved:Delete","eventTime":"2026-01-02T03:04:05.000Z","s3":{"bucket":{"name":"src"},"object":{"key":"dir/gone%2B1.txt"}}}]}`},
			want: []transfer.Job{
				{
					Task:       "dth",
					Kind:       transfer.KindRemove,
					Origin:     metrics.SourceSQS,
					ObjectArgs: transfer.ObjectArgs{Bucket: "src", Key: "dir/gone+1.txt", Event: "ObjectRemoved:DeleteObject"},
				},
				{
					Task:       "dth",
					Kind:       transfer.KindConverge,
					Origin:     metrics.SourceSQS,
					ObjectArgs: transfer.ObjectArgs{Bucket: "src", Key: "dir/hello world!.txt", ETag: "ABC", Size: 7, Event: "ObjectCreated:PutObject"},
				},
			},
			queued: 2,
		},
		{
			name:   "UnwrapsAnSNSNotification",
			bodies: []string{`{"Type":"Notification","MessageId":"m-1","TopicArn":"arn:aws:sns:us-east-1:000000000000:t","Message":"{\"key\":\"sns.txt\",\"size\":1}"}`},
			want: []transfer.Job{{
				Task:       "dth",
				Kind:       transfer.KindConverge,
				Origin:     metrics.SourceSQS,
				ObjectArgs: transfer.ObjectArgs{Bucket: "src", Key: "sns.txt", Size: 1, Event: "ObjectCreated:PutObject"},
			}},
			queued: 1,
		},
		{
			name:   "QueuesTheSameEventSentTwiceOnceAndDeletesBothMessages",
			bodies: []string{ossDocument(t, putSrc), ossDocument(t, putSrc)},
			want: []transfer.Job{{
				Task:       "dth",
				Kind:       transfer.KindConverge,
				Origin:     metrics.SourceSQS,
				ObjectArgs: transfer.ObjectArgs{Bucket: "src", Key: "same.txt", ETag: "SAMEETAG", Size: 9, Event: "ObjectCreated:PutObject"},
			}},
			queued: 1, duplicate: 1,
		},
		{
			name:   "DeletesAMessageNoTaskWantsWithoutQueueingAJob",
			bodies: []string{ossDocument(t, ossevent.NewRecord("ObjectCreated:PutObject", "cn-hangzhou", "other", "not-logs/x", "E", 1, "text/plain", eventTime))},
		},
	}
	for _, tc := range understood {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{})
			b.start(t)
			b.send(t, tc.bodies...)
			b.waitDeleted(t, len(tc.bodies))
			if got := withoutTimes(b.jobs(t)); !slices.Equal(got, tc.want) {
				t.Fatalf("jobs\n got %+v\nwant %+v", got, tc.want)
			}
			if got := b.events(t, metrics.EventQueued); got != tc.queued {
				t.Errorf("queued events %v, want %v", got, tc.queued)
			}
			if got := b.events(t, metrics.EventDuplicate); got != tc.duplicate {
				t.Errorf("duplicate events %v, want %v", got, tc.duplicate)
			}
			if got := b.events(t, metrics.EventRejected); got != 0 {
				t.Errorf("rejected events %v, want 0", got)
			}
		})
	}

	// Messages that cannot be understood are never deleted: they go to
	// the dead-letter queue when the queue's redrive policy says so.
	malformed := []struct {
		name string
		body string
	}{
		{"LeavesAMessageThatIsNotJSONToTheRedrivePolicy", `this is not JSON`},
		{"LeavesJSONOfNoKnownFormatToTheRedrivePolicy", `{"hello":"world"}`},
		{"LeavesAnEmptyKeyToTheRedrivePolicy", `{"key":""}`},
		{"LeavesAnOSSDocumentWithAnInvalidRecordToTheRedrivePolicy", `{"events":[{"eventName":"ObjectCreated:PutObject","oss":{"object":{"key":"k"}}}]}`},
		{"LeavesAnS3RecordWithABadlyEscapedKeyToTheRedrivePolicy", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"src"},"object":{"key":"bad%zz"}}}]}`},
	}
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{maxReceive: 2})
			b.start(t)
			b.send(t, tc.body)
			waitFor(t, func() bool { return b.emu.Stats(b.dlq).Visible == 1 },
				func() string { return statsString(b.emu.Stats(b.url)) })
			st := b.emu.Stats(b.url)
			if st.Deleted != 0 || st.DeadLettered != 1 || st.Received != 2 || st.Visible+st.InFlight != 0 {
				t.Fatalf("want the message received twice, never deleted, dead-lettered: %s", statsString(st))
			}
			if dl := b.emu.Messages(b.dlq); len(dl) != 1 || dl[0].Body != tc.body {
				t.Fatalf("dead-letter queue holds %+v, want the message as sent", dl)
			}
			// Counted once per receive.
			waitFor(t, func() bool { return b.events(t, metrics.EventRejected) == 2 },
				func() string {
					return "rejected events " + strconv.Itoa(int(b.events(t, metrics.EventRejected))) + ", want 2"
				})
			if n := b.depth(t); n != 0 {
				t.Fatalf("stream holds %d jobs, want none", n)
			}
		})
	}

	t.Run("AMalformedMessageDoesNotHoldBackTheOthersInItsBatch", func(t *testing.T) {
		t.Parallel()
		b := setup(t, options{})
		b.send(t, `not JSON`, `{"key":"good.txt","size":2}`) // before start: one receive gets both
		b.start(t)
		waitFor(t, func() bool { return b.emu.Stats(b.url).Deleted == 1 },
			func() string { return statsString(b.emu.Stats(b.url)) })
		left := b.emu.Messages(b.url)
		if len(left) != 1 || left[0].Body != `not JSON` {
			t.Fatalf("left in the queue %+v, want only the malformed message", left)
		}
		if jobs := b.jobs(t); len(jobs) != 1 || jobs[0].Key != "good.txt" {
			t.Fatalf("jobs %+v, want the good message's", jobs)
		}
	})

	t.Run("DeletesNothingWhileJetStreamIsFullAndLosesNothingOnceThereIsRoom", func(t *testing.T) {
		t.Parallel()
		b := setup(t, options{queue: transfer.QueueConfig{MaxMsgs: 1}})
		b.send(t, `{"key":"one","size":1}`, `{"key":"two","size":2}`) // one receive, two jobs
		b.start(t)

		// The first job fills the stream, the second is refused: the
		// batch failed, and neither message may be deleted.
		waitFor(t, func() bool { return b.events(t, metrics.EventFailed) >= 2 },
			func() string { return statsString(b.emu.Stats(b.url)) })
		if st := b.emu.Stats(b.url); st.Deleted != 0 {
			t.Fatalf("deleted while JetStream refused the jobs: %s", statsString(st))
		}
		// The ingester retries after its pause, once the messages are
		// visible again: they are received again and still not deleted.
		waitFor(t, func() bool { return b.emu.Stats(b.url).Received >= 4 && b.events(t, metrics.EventFailed) >= 4 },
			func() string { return statsString(b.emu.Stats(b.url)) })
		if st := b.emu.Stats(b.url); st.Deleted != 0 {
			t.Fatalf("deleted while JetStream refused the jobs: %s", statsString(st))
		}
		if n := b.depth(t); n != 1 {
			t.Fatalf("stream holds %d jobs, want 1 (its limit)", n)
		}

		// Workers take jobs, which makes room: every job arrives and
		// only then are the messages deleted.
		var done []string
		waitFor(t, func() bool {
			for _, j := range b.work(t) {
				done = append(done, j.Key)
			}
			st := b.emu.Stats(b.url)
			return len(done) >= 2 && st.Deleted == 2 && st.Visible+st.InFlight == 0
		}, func() string { return statsString(b.emu.Stats(b.url)) + ", jobs worked " + strings.Join(done, ",") })
		slices.Sort(done)
		if !slices.Equal(done, []string{"one", "two"}) {
			t.Fatalf("jobs worked %q, want each of one and two once", done)
		}
		if n := b.depth(t); n != 0 {
			t.Fatalf("stream holds %d jobs, want none", n)
		}
	})

	t.Run("AMessageWhoseDeleteFailedComesBackAsADuplicateAndIsDeleted", func(t *testing.T) {
		t.Parallel()
		b := setup(t, options{})
		// The SDK tries 3 times: all of them fail.
		b.emu.InjectFault(sqsemu.Fault{Op: "DeleteMessageBatch", Status: 500, Times: 3})
		b.start(t)
		b.send(t, `{"key":"again.txt","size":4}`)
		b.waitDeleted(t, 1)
		st := b.emu.Stats(b.url)
		if st.Received != 2 {
			t.Fatalf("want the message received again after the failed delete: %s", statsString(st))
		}
		if n := b.emu.Requests()["DeleteMessageBatch"]; n != 4 {
			t.Errorf("DeleteMessageBatch requests %d, want 3 failed and 1 served", n)
		}
		if jobs := b.jobs(t); len(jobs) != 1 || jobs[0].Key != "again.txt" {
			t.Fatalf("jobs %+v, want one for again.txt", jobs)
		}
		if q, d := b.events(t, metrics.EventQueued), b.events(t, metrics.EventDuplicate); q != 1 || d != 1 {
			t.Fatalf("queued %v and duplicate %v events, want 1 and 1", q, d)
		}
	})

	t.Run("QueuesAKeyAgainWhenANewMessageNamesItAfterItsJobWasDone", func(t *testing.T) {
		t.Parallel()
		b := setup(t, options{})
		b.start(t)
		b.send(t, `{"key":"rewritten.txt","size":1}`)
		b.waitDeleted(t, 1)
		if done := b.work(t); len(done) != 1 || done[0].Size != 1 {
			t.Fatalf("worked %+v, want the first version's job", done)
		}
		// The object changes again within the duplicate window: a
		// {"key","size"} message carries no version, yet it is a new
		// event, not the first one sent again.
		b.send(t, `{"key":"rewritten.txt","size":2}`)
		b.waitDeleted(t, 2)
		if jobs := b.jobs(t); len(jobs) != 1 || jobs[0].Key != "rewritten.txt" || jobs[0].Size != 2 {
			t.Fatalf("jobs %+v, want one for the second version", jobs)
		}
	})
}
