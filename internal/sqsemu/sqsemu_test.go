package sqsemu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/oss2s3/oss2s3/internal/sqsemu"
)

const (
	testAK     = "AKIAEMULATOREXAMPLE"
	testSK     = "emulator-secret-key"
	testRegion = "eu-west-1"
)

// fakeClock is a test clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testBundle is what setup hands a test.
type testBundle struct {
	srv      *sqsemu.Server
	endpoint string
	client   *sqs.Client
}

// setup starts an emulator that checks signatures, and a real SDK client
// signing with the test credentials.
func setup(t *testing.T, opts ...func(*sqsemu.Options)) *testBundle {
	t.Helper()
	o := sqsemu.Options{Credentials: map[string]string{testAK: testSK}, Region: testRegion}
	for _, f := range opts {
		f(&o)
	}
	srv := sqsemu.New(o)
	endpoint, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &testBundle{srv: srv, endpoint: endpoint, client: newClient(t, endpoint, testAK, testSK, testRegion)}
}

// newClient builds the SDK client the way production code does: default
// config with a region and static credentials, only BaseEndpoint changed.
func newClient(t *testing.T, endpoint, ak, sk, region string, opts ...func(*sqs.Options)) *sqs.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, "")))
	if err != nil {
		t.Fatal(err)
	}
	return sqs.NewFromConfig(cfg, append([]func(*sqs.Options){func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, opts...)...)
}

func noRetries(o *sqs.Options) { o.RetryMaxAttempts = 1 }

// setupQueue is setup (without options) with the queue name made with
// attrs: it returns the bundle, a test context and the queue's URL.
func setupQueue(t *testing.T, name string, attrs map[string]string) (*testBundle, context.Context, string) {
	t.Helper()
	tb := setup(t)
	return tb, ctxT(t), tb.srv.CreateQueue(name, attrs)
}

// startUnsigned starts a server that checks no signatures, closed when
// the test ends, and returns it with its endpoint.
func startUnsigned(t *testing.T) (*sqsemu.Server, string) {
	t.Helper()
	srv := sqsemu.New(sqsemu.Options{})
	endpoint, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, endpoint
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func send(t *testing.T, c *sqs.Client, url, body string) string {
	t.Helper()
	out, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	return aws.ToString(out.MessageId)
}

func receive(t *testing.T, c *sqs.Client, in *sqs.ReceiveMessageInput) []types.Message {
	t.Helper()
	if in.MessageSystemAttributeNames == nil {
		in.MessageSystemAttributeNames = []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}
	}
	out, err := c.ReceiveMessage(ctxT(t), in)
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	return out.Messages
}

func receiveOne(t *testing.T, c *sqs.Client, url string) types.Message {
	t.Helper()
	msgs := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if len(msgs) != 1 {
		t.Fatalf("received %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

func requireAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v, want API error %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code = %q (%v), want %q", ae.ErrorCode(), err, code)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Fatalf("error %v: want HTTP status %d", err, status)
	}
	if re.ServiceRequestID() == "" {
		t.Errorf("error %s carries no request ID", code)
	}
}

// requireErrorType fails t unless err is (or wraps) the SDK's typed error
// *T; what, if not "", names the call in the message.
func requireErrorType[T any, P interface {
	*T
	error
}](t *testing.T, err error, what string) {
	t.Helper()
	var target P
	if !errors.As(err, &target) {
		if what != "" {
			what += ": "
		}
		t.Fatalf("%serror = %v, want %T", what, err, target)
	}
}

func TestQueueURLs(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := ctxT(t)

	t.Run("CreateQueueAndGetQueueUrlAgree", func(t *testing.T) {
		created, err := tb.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("events")})
		if err != nil {
			t.Fatal(err)
		}
		want := tb.endpoint + "/000000000000/events"
		if got := aws.ToString(created.QueueUrl); got != want {
			t.Fatalf("CreateQueue URL = %q, want %q", got, want)
		}
		got, err := tb.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("events")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(got.QueueUrl) != want {
			t.Fatalf("GetQueueUrl = %q, want %q", aws.ToString(got.QueueUrl), want)
		}
		if url, ok := tb.srv.QueueURL("events"); !ok || url != want {
			t.Fatalf("QueueURL = %q, %v", url, ok)
		}
	})

	t.Run("CreateQueueIsIdempotentButRefusesOtherAttributes", func(t *testing.T) {
		in := &sqs.CreateQueueInput{QueueName: aws.String("idem"), Attributes: map[string]string{"VisibilityTimeout": "45"}}
		if _, err := tb.client.CreateQueue(ctx, in); err != nil {
			t.Fatal(err)
		}
		if _, err := tb.client.CreateQueue(ctx, in); err != nil {
			t.Fatalf("same attributes again: %v", err)
		}
		in.Attributes["VisibilityTimeout"] = "46"
		_, err := tb.client.CreateQueue(ctx, in)
		requireErrorType[types.QueueNameExists](t, err, "different attributes")
	})

	t.Run("GoAPIQueueAndAWSFormURLResolve", func(t *testing.T) {
		url := tb.srv.CreateQueue("go-made", nil)
		if url != tb.endpoint+"/000000000000/go-made" {
			t.Fatalf("CreateQueue = %q", url)
		}
		awsURL := "https://sqs." + testRegion + ".amazonaws.com/123456789012/go-made"
		id := send(t, tb.client, awsURL, "via the AWS URL")
		m := receiveOne(t, tb.client, url)
		if aws.ToString(m.MessageId) != id || aws.ToString(m.Body) != "via the AWS URL" {
			t.Fatalf("received %q %q, want %q", aws.ToString(m.MessageId), aws.ToString(m.Body), id)
		}
	})

	t.Run("ListQueuesFiltersByPrefixAndPages", func(t *testing.T) {
		for _, n := range []string{"list-a", "list-b", "list-c"} {
			tb.srv.CreateQueue(n, nil)
		}
		var urls []string
		var token *string
		for pages := 0; ; pages++ {
			out, err := tb.client.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("list-"), MaxResults: aws.Int32(2), NextToken: token})
			if err != nil {
				t.Fatal(err)
			}
			urls = append(urls, out.QueueUrls...)
			if token = out.NextToken; token == nil {
				break
			}
			if pages > 3 {
				t.Fatal("ListQueues does not end")
			}
		}
		want := []string{tb.endpoint + "/000000000000/list-a", tb.endpoint + "/000000000000/list-b", tb.endpoint + "/000000000000/list-c"}
		if fmt.Sprint(urls) != fmt.Sprint(want) {
			t.Fatalf("ListQueues = %v, want %v", urls, want)
		}
	})

	t.Run("DeletedQueueDoesNotExist", func(t *testing.T) {
		url := tb.srv.CreateQueue("doomed", nil)
		if _, err := tb.client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
			t.Fatal(err)
		}
		_, err := tb.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("doomed")})
		requireErrorType[types.QueueDoesNotExist](t, err, "")
	})
}

func TestSendReceiveDeleteRoundTrip(t *testing.T) {
	t.Parallel()
	tb, ctx, url := setupQueue(t, "jobs", nil)
	body := `{"key":"a/b.txt","size":1024} – ünïcode ✓`

	before := time.Now()
	sent, err := tb.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:    aws.String(url),
		MessageBody: aws.String(body),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"task":   {DataType: aws.String("String"), StringValue: aws.String("t1")},
			"weight": {DataType: aws.String("Number"), StringValue: aws.String("42")},
			"raw":    {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
		},
	})
	if err != nil {
		t.Fatal(err) // the SDK has checked MD5OfMessageBody
	}
	if aws.ToString(sent.MD5OfMessageAttributes) == "" {
		t.Error("SendMessage returned no MD5OfMessageAttributes")
	}

	out, err := tb.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(url),
		MaxNumberOfMessages:         10,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount, types.MessageSystemAttributeNameSentTimestamp},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		t.Fatal(err) // the SDK has checked MD5OfBody
	}
	if len(out.Messages) != 1 {
		t.Fatalf("received %d messages, want 1", len(out.Messages))
	}
	m := out.Messages[0]
	if aws.ToString(m.MessageId) != aws.ToString(sent.MessageId) || aws.ToString(m.Body) != body {
		t.Fatalf("received %q %q", aws.ToString(m.MessageId), aws.ToString(m.Body))
	}
	if got := m.Attributes["ApproximateReceiveCount"]; got != "1" {
		t.Errorf("ApproximateReceiveCount = %q, want 1", got)
	}
	ms, err := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64)
	if sentAt := time.UnixMilli(ms); err != nil || sentAt.Before(before.Add(-time.Second)) || sentAt.After(time.Now()) {
		t.Errorf("SentTimestamp = %q", m.Attributes["SentTimestamp"])
	}
	if _, ok := m.Attributes["SenderId"]; ok {
		t.Error("SenderId returned though not asked for")
	}
	if len(m.MessageAttributes) != 3 || aws.ToString(m.MessageAttributes["task"].StringValue) != "t1" ||
		!bytes.Equal(m.MessageAttributes["raw"].BinaryValue, []byte{0, 1, 2}) {
		t.Errorf("message attributes = %+v", m.MessageAttributes)
	}
	if aws.ToString(m.MD5OfMessageAttributes) != aws.ToString(sent.MD5OfMessageAttributes) {
		t.Errorf("MD5OfMessageAttributes on receive %q != on send %q", aws.ToString(m.MD5OfMessageAttributes), aws.ToString(sent.MD5OfMessageAttributes))
	}
	if st := tb.srv.Stats(url); st.InFlight != 1 || st.Visible != 0 || st.Received != 1 {
		t.Errorf("stats after receive = %+v", st)
	}
	if again := receive(t, tb.client, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); len(again) != 0 {
		t.Fatalf("an in-flight message was received again: %v", again)
	}

	if _, err := tb.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	st := tb.srv.Stats(url)
	if st != (sqsemu.QueueStats{Sent: 1, Received: 1, Deleted: 1}) {
		t.Fatalf("stats after delete = %+v", st)
	}
	if msgs := tb.srv.Messages(url); len(msgs) != 0 {
		t.Fatalf("messages left: %+v", msgs)
	}
}

func TestSendMessageBatch(t *testing.T) {
	t.Parallel()
	tb, ctx, url := setupQueue(t, "batch", nil)
	entries := func(prefix string, n int) []types.SendMessageBatchRequestEntry {
		var out []types.SendMessageBatchRequestEntry
		for i := range n {
			out = append(out, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprintf("e%d", i)), MessageBody: aws.String(fmt.Sprintf("%s-%d", prefix, i))})
		}
		return out
	}

	t.Run("InjectedEntryFailuresArePartial", func(t *testing.T) {
		tb.srv.InjectFault(sqsemu.Fault{Op: "SendMessageBatch", FailEntries: 2, Times: 1})
		out, err := tb.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries("first", 5)})
		if err != nil {
			t.Fatal(err) // includes the SDK's MD5 check of every successful entry
		}
		if len(out.Failed) != 2 || len(out.Successful) != 3 {
			t.Fatalf("failed %d, successful %d; want 2 and 3", len(out.Failed), len(out.Successful))
		}
		for i, f := range out.Failed {
			if aws.ToString(f.Id) != fmt.Sprintf("e%d", i) || aws.ToString(f.Code) != "InternalError" || f.SenderFault {
				t.Errorf("failed entry %d = %+v", i, f)
			}
		}
		for _, s := range out.Successful {
			if aws.ToString(s.MessageId) == "" || aws.ToString(s.MD5OfMessageBody) == "" {
				t.Errorf("successful entry %+v", s)
			}
		}
		var bodies []string
		for _, m := range tb.srv.Messages(url) {
			bodies = append(bodies, m.Body)
		}
		if want := "[first-2 first-3 first-4]"; fmt.Sprint(bodies) != want {
			t.Fatalf("queued bodies = %v, want %s", bodies, want)
		}
	})

	t.Run("NextBatchSucceedsWhenTheFaultIsUsedUp", func(t *testing.T) {
		out, err := tb.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries("second", 10)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Failed) != 0 || len(out.Successful) != 10 {
			t.Fatalf("failed %v, successful %d", out.Failed, len(out.Successful))
		}
		if st := tb.srv.Stats(url); st.Sent != 13 || st.Visible != 13 {
			t.Fatalf("stats = %+v, want 13 sent and visible", st)
		}
	})

	t.Run("InvalidEntryFailsAloneWithSenderFault", func(t *testing.T) {
		in := entries("third", 2)
		in[1].MessageBody = aws.String("bad \x00 byte")
		out, err := tb.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: in})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Successful) != 1 || len(out.Failed) != 1 || aws.ToString(out.Failed[0].Code) != "InvalidMessageContents" || !out.Failed[0].SenderFault {
			t.Fatalf("successful %d, failed %+v", len(out.Successful), out.Failed)
		}
	})

	t.Run("BadBatchesAreRefusedWhole", func(t *testing.T) {
		_, err := tb.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries("x", 11)})
		requireErrorType[types.TooManyEntriesInBatchRequest](t, err, "11 entries")
		dup := entries("x", 2)
		dup[1].Id = dup[0].Id
		_, err = tb.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: dup})
		requireErrorType[types.BatchEntryIdsNotDistinct](t, err, "duplicate IDs")
	})
}

func TestLongPolling(t *testing.T) {
	t.Parallel()

	// Each case polls a queue of its own once, after prepare, and checks
	// what came back and how long the poll took.
	for _, c := range []struct {
		name    string
		attrs   map[string]string
		prepare func(t *testing.T, tb *testBundle, url string)
		in      sqs.ReceiveMessageInput
		check   func(msgs []types.Message) bool
		lo, hi  time.Duration
	}{{
		// About 0.3 s, far less than 10 s.
		name: "ReturnsEarlyWhenAMessageArrives",
		prepare: func(t *testing.T, tb *testBundle, url string) {
			go func() {
				time.Sleep(300 * time.Millisecond)
				if _, err := tb.srv.SendMessage(url, "late arrival"); err != nil {
					t.Error(err)
				}
			}()
		},
		in:    sqs.ReceiveMessageInput{WaitTimeSeconds: 10, MaxNumberOfMessages: 10},
		check: func(msgs []types.Message) bool { return len(msgs) == 1 && aws.ToString(msgs[0].Body) == "late arrival" },
		lo:    250 * time.Millisecond, hi: 5 * time.Second,
	}, {
		name:  "WaitsTheFullTimeWhenNothingArrives",
		in:    sqs.ReceiveMessageInput{WaitTimeSeconds: 1},
		check: func(msgs []types.Message) bool { return len(msgs) == 0 },
		lo:    900 * time.Millisecond, hi: 5 * time.Second,
	}, {
		name:  "QueueDefaultWaitApplies",
		attrs: map[string]string{"ReceiveMessageWaitTimeSeconds": "1"},
		check: func(msgs []types.Message) bool { return len(msgs) == 0 },
		lo:    900 * time.Millisecond, hi: 5 * time.Second,
	}, {
		// About 1 s.
		name: "ReturnsWhenAVisibilityTimeoutEnds",
		prepare: func(t *testing.T, tb *testBundle, url string) {
			send(t, tb.client, url, "comes back")
			if first := receive(t, tb.client, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), VisibilityTimeout: 1}); len(first) != 1 {
				t.Fatalf("first receive got %d", len(first))
			}
		},
		in: sqs.ReceiveMessageInput{WaitTimeSeconds: 10},
		check: func(msgs []types.Message) bool {
			return len(msgs) == 1 && msgs[0].Attributes["ApproximateReceiveCount"] == "2"
		},
		lo: 500 * time.Millisecond, hi: 5 * time.Second,
	}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			url := tb.srv.CreateQueue("poll", c.attrs)
			if c.prepare != nil {
				c.prepare(t, tb, url)
			}
			in := c.in
			in.QueueUrl = aws.String(url)
			start := time.Now()
			msgs := receive(t, tb.client, &in)
			elapsed := time.Since(start)
			if !c.check(msgs) {
				t.Fatalf("received %+v", msgs)
			}
			if elapsed < c.lo || elapsed > c.hi {
				t.Fatalf("long poll took %v, want between %v and %v", elapsed, c.lo, c.hi)
			}
		})
	}

	t.Run("EndsWithTheRequestContext", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		url := tb.srv.CreateQueue("cancel", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := tb.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want context.DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Fatalf("cancelled receive returned after %v", elapsed)
		}
		// The abandoned poll took nothing: a message sent now is there.
		send(t, tb.client, url, "still here")
		if m := receiveOne(t, tb.client, url); aws.ToString(m.Body) != "still here" {
			t.Fatalf("body %q", aws.ToString(m.Body))
		}
	})

	t.Run("EndsWhenTheServerCloses", func(t *testing.T) {
		t.Parallel()
		srv := sqsemu.New(sqsemu.Options{})
		endpoint, err := srv.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := srv.CreateQueue("closing", nil)
		client := newClient(t, endpoint, "any", "any", testRegion, noRetries)
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20})
			done <- err
		}()
		time.Sleep(200 * time.Millisecond)
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done: //nolint:errcheck // only that it ended matters here
		case <-time.After(10 * time.Second):
			t.Fatal("long poll still running 10 s after Close")
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Fatalf("long poll ended %v after start, want soon after Close", elapsed)
		}
	})
}

func TestVisibilityTimeout(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	tb := setup(t, func(o *sqsemu.Options) { o.Now = clock.Now })
	ctx := ctxT(t)
	url := tb.srv.CreateQueue("vis", map[string]string{"VisibilityTimeout": "30"})
	id := send(t, tb.client, url, "work")

	first := receiveOne(t, tb.client, url)
	clock.Advance(29 * time.Second)
	if msgs := receive(t, tb.client, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); len(msgs) != 0 {
		t.Fatalf("message visible before its timeout: %v", msgs)
	}
	clock.Advance(2 * time.Second)
	second := receiveOne(t, tb.client, url)
	if aws.ToString(second.MessageId) != id || second.Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("second receive: id %q, count %q", aws.ToString(second.MessageId), second.Attributes["ApproximateReceiveCount"])
	}
	if aws.ToString(second.ReceiptHandle) == aws.ToString(first.ReceiptHandle) {
		t.Fatal("two receives returned the same receipt handle")
	}
	if second.Attributes["ApproximateFirstReceiveTimestamp"] != first.Attributes["ApproximateFirstReceiveTimestamp"] {
		t.Errorf("ApproximateFirstReceiveTimestamp changed: %q -> %q", first.Attributes["ApproximateFirstReceiveTimestamp"], second.Attributes["ApproximateFirstReceiveTimestamp"])
	}

	t.Run("StaleHandleDeleteSucceedsWithoutDeleting", func(t *testing.T) {
		if _, err := tb.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: first.ReceiptHandle}); err != nil {
			t.Fatalf("DeleteMessage with a stale handle: %v", err)
		}
		if st := tb.srv.Stats(url); st.InFlight != 1 || st.Deleted != 0 || st.StaleDeletes != 1 {
			t.Fatalf("stats = %+v, want the message still in flight", st)
		}
	})

	t.Run("StaleHandleCannotChangeVisibility", func(t *testing.T) {
		_, err := tb.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 0})
		requireAPIError(t, err, 400, "InvalidParameterValue")
	})

	t.Run("LatestHandleDeletes", func(t *testing.T) {
		if _, err := tb.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: second.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
		if _, err := tb.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: second.ReceiptHandle}); err != nil {
			t.Fatalf("deleting a deleted message: %v", err)
		}
		clock.Advance(time.Minute)
		if st := tb.srv.Stats(url); st.Deleted != 1 || st.Visible+st.InFlight != 0 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

func TestChangeMessageVisibility(t *testing.T) {
	t.Parallel()
	tb, ctx, url := setupQueue(t, "cmv", map[string]string{"VisibilityTimeout": "600"})
	send(t, tb.client, url, "release me")
	m := receiveOne(t, tb.client, url)

	t.Run("ZeroReleasesAtOnce", func(t *testing.T) {
		if _, err := tb.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
		if st := tb.srv.Stats(url); st.Visible != 1 || st.InFlight != 0 {
			t.Fatalf("stats after release = %+v", st)
		}
	})

	t.Run("ReleasedMessageIsNotInFlight", func(t *testing.T) {
		_, err := tb.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 10})
		requireErrorType[types.MessageNotInflight](t, err, "")
	})

	again := receiveOne(t, tb.client, url)
	if again.Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("ApproximateReceiveCount = %q, want 2", again.Attributes["ApproximateReceiveCount"])
	}

	t.Run("BatchExtendsAndReportsBadHandles", func(t *testing.T) {
		out, err := tb.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
			{Id: aws.String("good"), ReceiptHandle: again.ReceiptHandle, VisibilityTimeout: 0},
			{Id: aws.String("bad"), ReceiptHandle: aws.String("not-a-handle"), VisibilityTimeout: 0},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Successful) != 1 || aws.ToString(out.Successful[0].Id) != "good" ||
			len(out.Failed) != 1 || aws.ToString(out.Failed[0].Code) != "ReceiptHandleIsInvalid" {
			t.Fatalf("successful %+v, failed %+v", out.Successful, out.Failed)
		}
		if st := tb.srv.Stats(url); st.Visible != 1 {
			t.Fatalf("stats = %+v, want the message released", st)
		}
	})

	t.Run("OutOfRangeIsRefused", func(t *testing.T) {
		m := receiveOne(t, tb.client, url)
		_, err := tb.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 43201})
		requireAPIError(t, err, 400, "InvalidParameterValue")
	})
}

func TestRedriveToDeadLetterQueue(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	tb := setup(t, func(o *sqsemu.Options) { o.Now = clock.Now })
	ctx := ctxT(t)
	dlq, err := tb.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := tb.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	dlqARN := attrs.Attributes["QueueArn"]
	if want := "arn:aws:sqs:" + testRegion + ":000000000000:jobs-dlq"; dlqARN != want || tb.srv.QueueARN("jobs-dlq") != want {
		t.Fatalf("QueueArn = %q, want %q", dlqARN, want)
	}
	src, err := tb.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs"), Attributes: map[string]string{
		"VisibilityTimeout": "10",
		"RedrivePolicy":     `{"deadLetterTargetArn":"` + dlqARN + `","maxReceiveCount":"2"}`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	srcURL := aws.ToString(src.QueueUrl)
	id := send(t, tb.client, srcURL, "malformed")

	for i := 1; i <= 2; i++ {
		m := receiveOne(t, tb.client, srcURL)
		if got := m.Attributes["ApproximateReceiveCount"]; got != strconv.Itoa(i) {
			t.Fatalf("receive %d: ApproximateReceiveCount = %q", i, got)
		}
		clock.Advance(11 * time.Second) // left for the redrive policy
	}
	if msgs := receive(t, tb.client, &sqs.ReceiveMessageInput{QueueUrl: aws.String(srcURL)}); len(msgs) != 0 {
		t.Fatalf("message received a third time from the source: %v", msgs)
	}
	if st := tb.srv.Stats(srcURL); st.DeadLettered != 1 || st.Visible+st.InFlight != 0 || st.Received != 2 {
		t.Fatalf("source stats = %+v", st)
	}
	m := receiveOne(t, tb.client, aws.ToString(dlq.QueueUrl))
	if aws.ToString(m.MessageId) != id || aws.ToString(m.Body) != "malformed" {
		t.Fatalf("dead letter = %q %q, want %q", aws.ToString(m.MessageId), aws.ToString(m.Body), id)
	}
	if got := m.Attributes["DeadLetterQueueSourceArn"]; got != tb.srv.QueueARN("jobs") {
		t.Errorf("DeadLetterQueueSourceArn = %q", got)
	}

	t.Run("RedrivePolicyIsReadBack", func(t *testing.T) {
		out, err := tb.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: src.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy}})
		if err != nil {
			t.Fatal(err)
		}
		var rp struct {
			Target string `json:"deadLetterTargetArn"`
			Max    int    `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(out.Attributes["RedrivePolicy"]), &rp); err != nil || rp.Target != dlqARN || rp.Max != 2 {
			t.Fatalf("RedrivePolicy = %q (%v)", out.Attributes["RedrivePolicy"], err)
		}
		list, err := tb.client.ListDeadLetterSourceQueues(ctx, &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: dlq.QueueUrl})
		if err != nil || len(list.QueueUrls) != 1 || list.QueueUrls[0] != srcURL {
			t.Fatalf("ListDeadLetterSourceQueues = %v, %v", list, err)
		}
	})

	t.Run("ReleasedAfterLastReceiveGoesToTheDLQAtOnce", func(t *testing.T) {
		send(t, tb.client, srcURL, "released")
		receiveOne(t, tb.client, srcURL)
		clock.Advance(11 * time.Second)
		last := receiveOne(t, tb.client, srcURL)
		if _, err := tb.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(srcURL), ReceiptHandle: last.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
		if st := tb.srv.Stats(srcURL); st.DeadLettered != 2 || st.Visible != 0 {
			t.Fatalf("source stats = %+v", st)
		}
	})

	t.Run("MissingDeadLetterTargetIsRefused", func(t *testing.T) {
		_, err := tb.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orphan"), Attributes: map[string]string{
			"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:` + testRegion + `:000000000000:nope","maxReceiveCount":3}`,
		}})
		requireErrorType[types.InvalidAttributeValue](t, err, "")
	})
}

func TestDeleteMessageBatch(t *testing.T) {
	t.Parallel()
	tb, ctx, url := setupQueue(t, "del", nil)
	for i := range 3 {
		send(t, tb.client, url, fmt.Sprint("m", i))
	}
	msgs := receive(t, tb.client, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if len(msgs) != 3 {
		t.Fatalf("received %d, want 3", len(msgs))
	}

	t.Run("OneBadHandleFailsAlone", func(t *testing.T) {
		out, err := tb.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.DeleteMessageBatchRequestEntry{
			{Id: aws.String("a"), ReceiptHandle: msgs[0].ReceiptHandle},
			{Id: aws.String("bad"), ReceiptHandle: aws.String("AQEBgarbage==")},
			{Id: aws.String("b"), ReceiptHandle: msgs[1].ReceiptHandle},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Successful) != 2 || len(out.Failed) != 1 {
			t.Fatalf("successful %+v, failed %+v", out.Successful, out.Failed)
		}
		f := out.Failed[0]
		if aws.ToString(f.Id) != "bad" || aws.ToString(f.Code) != "ReceiptHandleIsInvalid" || !f.SenderFault || aws.ToString(f.Message) == "" {
			t.Fatalf("failed entry = %+v", f)
		}
		if st := tb.srv.Stats(url); st.Deleted != 2 || st.InFlight != 1 {
			t.Fatalf("stats = %+v", st)
		}
	})

	t.Run("InjectedEntryFailureKeepsTheMessage", func(t *testing.T) {
		tb.srv.InjectFault(sqsemu.Fault{Op: "DeleteMessageBatch", FailEntries: 1, Times: 1})
		out, err := tb.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.DeleteMessageBatchRequestEntry{
			{Id: aws.String("c"), ReceiptHandle: msgs[2].ReceiptHandle},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Failed) != 1 || aws.ToString(out.Failed[0].Code) != "InternalError" || out.Failed[0].SenderFault {
			t.Fatalf("failed = %+v", out.Failed)
		}
		if st := tb.srv.Stats(url); st.Deleted != 2 || st.InFlight != 1 {
			t.Fatalf("stats = %+v, want the message kept", st)
		}
		// The retry the caller makes succeeds.
		out, err = tb.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.DeleteMessageBatchRequestEntry{
			{Id: aws.String("c"), ReceiptHandle: msgs[2].ReceiptHandle},
		}})
		if err != nil || len(out.Successful) != 1 {
			t.Fatalf("retry: %+v, %v", out, err)
		}
		if st := tb.srv.Stats(url); st.Deleted != 3 || st.InFlight != 0 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

func TestGetQueueAttributes(t *testing.T) {
	t.Parallel()
	tb, ctx, url := setupQueue(t, "counts", map[string]string{"VisibilityTimeout": "120", "MessageRetentionPeriod": "3600"})
	for i := range 3 {
		send(t, tb.client, url, fmt.Sprint("visible ", i))
	}
	if _, err := tb.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("later"), DelaySeconds: 900}); err != nil {
		t.Fatal(err)
	}
	receiveOne(t, tb.client, url)

	t.Run("SelectedNames", func(t *testing.T) {
		out, err := tb.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
			types.QueueAttributeNameVisibilityTimeout,
		}})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"ApproximateNumberOfMessages":           "2",
			"ApproximateNumberOfMessagesNotVisible": "1",
			"ApproximateNumberOfMessagesDelayed":    "1",
			"VisibilityTimeout":                     "120",
		}
		if fmt.Sprint(out.Attributes) != fmt.Sprint(want) {
			t.Fatalf("attributes = %v, want %v", out.Attributes, want)
		}
	})

	t.Run("All", func(t *testing.T) {
		out, err := tb.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		a := out.Attributes
		if a["QueueArn"] != tb.srv.QueueARN("counts") || a["MessageRetentionPeriod"] != "3600" || a["ApproximateNumberOfMessages"] != "2" ||
			a["MaximumMessageSize"] != "262144" || a["DelaySeconds"] != "0" || a["CreatedTimestamp"] == "" {
			t.Fatalf("attributes = %v", a)
		}
	})

	t.Run("UnknownNameIsRefused", func(t *testing.T) {
		_, err := tb.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"Colour"}})
		requireErrorType[types.InvalidAttributeName](t, err, "")
	})

	t.Run("SetQueueAttributesApplies", func(t *testing.T) {
		if _, err := tb.client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"VisibilityTimeout": "7"}}); err != nil {
			t.Fatal(err)
		}
		out, err := tb.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout}})
		if err != nil || out.Attributes["VisibilityTimeout"] != "7" {
			t.Fatalf("VisibilityTimeout = %v, %v", out.Attributes, err)
		}
	})

	t.Run("PurgeEmptiesTheQueue", func(t *testing.T) {
		if _, err := tb.client.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
			t.Fatal(err)
		}
		if st := tb.srv.Stats(url); st.Visible+st.InFlight+st.Delayed != 0 || st.Purged != 4 {
			t.Fatalf("stats after purge = %+v", st)
		}
	})
}

func TestRetention(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	tb := setup(t, func(o *sqsemu.Options) { o.Now = clock.Now })
	url := tb.srv.CreateQueue("short", map[string]string{"MessageRetentionPeriod": "60"})
	send(t, tb.client, url, "old")
	clock.Advance(30 * time.Second)
	send(t, tb.client, url, "new")
	clock.Advance(31 * time.Second)
	msgs := receive(t, tb.client, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if len(msgs) != 1 || aws.ToString(msgs[0].Body) != "new" {
		t.Fatalf("received %v, want only the message within retention", msgs)
	}
	if st := tb.srv.Stats(url); st.Expired != 1 {
		t.Fatalf("stats = %+v, want 1 expired", st)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	url := tb.srv.CreateQueue("auth", nil)

	t.Run("BadSecretIsSignatureDoesNotMatch", func(t *testing.T) {
		c := newClient(t, tb.endpoint, testAK, "wrong-secret", testRegion)
		_, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")})
		requireAPIError(t, err, 403, "SignatureDoesNotMatch")
		if st := tb.srv.Stats(url); st.Sent != 0 {
			t.Fatalf("a badly signed message was queued: %+v", st)
		}
	})

	t.Run("UnknownKeyIsInvalidClientTokenId", func(t *testing.T) {
		c := newClient(t, tb.endpoint, "AKIAUNKNOWN", testSK, testRegion)
		_, err := c.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
		requireAPIError(t, err, 403, "InvalidClientTokenId")
	})

	t.Run("OtherRegionIsRefusedWhenOneIsConfigured", func(t *testing.T) {
		c := newClient(t, tb.endpoint, testAK, testSK, "us-west-2")
		_, err := c.GetQueueUrl(ctxT(t), &sqs.GetQueueUrlInput{QueueName: aws.String("auth")})
		requireAPIError(t, err, 403, "SignatureDoesNotMatch")
	})

	t.Run("UnsignedRequestIsRefused", func(t *testing.T) {
		resp := rawPost(t, tb.endpoint, "AmazonSQS.GetQueueUrl", `{"QueueName":"auth"}`)
		if resp.status != 403 || resp.header.Get("x-amzn-query-error") != "MissingAuthenticationToken;Sender" {
			t.Fatalf("unsigned request: %d %v %s", resp.status, resp.header, resp.body)
		}
	})

	t.Run("AnyCredentialsWhenNoneAreConfigured", func(t *testing.T) {
		srv, endpoint := startUnsigned(t)
		u := srv.CreateQueue("open", nil)
		c := newClient(t, endpoint, "whoever", "whatever", "ap-southeast-1")
		send(t, c, u, "hello")
		m := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: aws.String(u)})
		if len(m) != 1 || m[0].Attributes["SenderId"] != "whoever" {
			t.Fatalf("received %+v", m)
		}
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tb, ctx, url := setupQueue(t, "errs", nil)

	t.Run("UnknownQueueIsQueueDoesNotExist", func(t *testing.T) {
		_, err := tb.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(tb.endpoint + "/000000000000/missing")})
		requireErrorType[types.QueueDoesNotExist](t, err, "")
		// As against real SQS, the code is the query-compatible one.
		requireAPIError(t, err, 400, "AWS.SimpleQueueService.NonExistentQueue")
		_, err = tb.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("missing")})
		requireErrorType[types.QueueDoesNotExist](t, err, "GetQueueUrl")
	})

	t.Run("OutOfRangeParametersAreInvalidParameterValue", func(t *testing.T) {
		_, err := tb.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 11})
		requireAPIError(t, err, 400, "InvalidParameterValue")
		_, err = tb.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 21})
		requireAPIError(t, err, 400, "InvalidParameterValue")
	})

	t.Run("MalformedReceiptHandleIsInvalid", func(t *testing.T) {
		_, err := tb.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("nonsense")})
		requireErrorType[types.ReceiptHandleIsInvalid](t, err, "")
	})

	t.Run("FIFOIsRefused", func(t *testing.T) {
		_, err := tb.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q.fifo"), Attributes: map[string]string{"FifoQueue": "true"}})
		requireAPIError(t, err, 400, "InvalidParameterValue")
	})

	t.Run("UnimplementedOperationIsUnsupportedOperation", func(t *testing.T) {
		_, err := tb.client.TagQueue(ctx, &sqs.TagQueueInput{QueueUrl: aws.String(url), Tags: map[string]string{"a": "b"}})
		requireErrorType[types.UnsupportedOperation](t, err, "")
	})

	t.Run("WireFormatIsAWSJSON", func(t *testing.T) {
		_, endpoint := startUnsigned(t)
		resp := rawPost(t, endpoint, "AmazonSQS.GetQueueUrl", `{"QueueName":"missing"}`)
		var doc map[string]string
		if err := json.Unmarshal(resp.body, &doc); err != nil {
			t.Fatalf("error body %q: %v", resp.body, err)
		}
		if resp.status != 400 || doc["__type"] != "com.amazonaws.sqs#QueueDoesNotExist" || doc["message"] == "" ||
			resp.header.Get("x-amzn-query-error") != "AWS.SimpleQueueService.NonExistentQueue;Sender" ||
			resp.header.Get("Content-Type") != "application/x-amz-json-1.0" || resp.header.Get("x-amzn-RequestId") == "" {
			t.Fatalf("answer %d %v %s", resp.status, resp.header, resp.body)
		}
		// The query protocol is refused with a clear message.
		req, _ := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader("Action=ListQueues&Version=2012-11-05"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 400 || !strings.Contains(string(body), "JSON 1.0") {
			t.Fatalf("query protocol answer %d %s", res.StatusCode, body)
		}
	})
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tb, ctx, url := setupQueue(t, "faulty", nil)
	send(t, tb.client, url, "payload")

	t.Run("SDKRetriesAServerError", func(t *testing.T) {
		before := tb.srv.Requests()["ReceiveMessage"]
		tb.srv.InjectFault(sqsemu.Fault{Op: "ReceiveMessage", Status: 500, Times: 1})
		m := receiveOne(t, tb.client, url)
		if aws.ToString(m.Body) != "payload" {
			t.Fatalf("body %q", aws.ToString(m.Body))
		}
		if got := tb.srv.Requests()["ReceiveMessage"] - before; got != 2 {
			t.Fatalf("ReceiveMessage requests = %d, want 2 (one failed, one retried)", got)
		}
		if _, err := tb.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ServerErrorReachesACallerWithoutRetries", func(t *testing.T) {
		c := newClient(t, tb.endpoint, testAK, testSK, testRegion, noRetries)
		tb.srv.InjectFault(sqsemu.Fault{Op: "ReceiveMessage", Queue: "faulty", Status: 503, Code: "ServiceUnavailable", Times: 1})
		_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
		requireAPIError(t, err, 503, "ServiceUnavailable")
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorFault() != smithy.FaultServer {
			t.Errorf("fault = %v, want server", ae.ErrorFault())
		}
	})

	t.Run("ModeledCodeGivesTheTypedError", func(t *testing.T) {
		c := newClient(t, tb.endpoint, testAK, testSK, testRegion, noRetries)
		tb.srv.InjectFault(sqsemu.Fault{Op: "SendMessage", Status: 403, Code: "OverLimit", Times: 1})
		_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")})
		requireErrorType[types.OverLimit](t, err, "")
	})

	t.Run("LatencyDelaysAndOtherQueuesAreUntouched", func(t *testing.T) {
		other := tb.srv.CreateQueue("healthy", nil)
		tb.srv.InjectFault(sqsemu.Fault{Op: "SendMessage", Queue: "faulty", Latency: 300 * time.Millisecond, Times: 1})
		start := time.Now()
		send(t, tb.client, other, "fast")
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("send to another queue took %v", d)
		}
		start = time.Now()
		send(t, tb.client, url, "slow")
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("send with injected latency took %v, want >= 300ms", d)
		}
	})

	t.Run("ClearFaultsRemovesThem", func(t *testing.T) {
		tb.srv.InjectFault(sqsemu.Fault{Op: "GetQueueUrl", Status: 500})
		tb.srv.ClearFaults()
		if _, err := tb.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("faulty")}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConcurrentConsumersReceiveEachMessageOnce(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	url := tb.srv.CreateQueue("shared", map[string]string{"VisibilityTimeout": "300"})
	const n = 200
	for i := 0; i < n; i += 10 {
		var entries []types.SendMessageBatchRequestEntry
		for j := i; j < i+10; j++ {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("m", j)), MessageBody: aws.String(fmt.Sprint(j))})
		}
		if _, err := tb.client.SendMessageBatch(ctxT(t), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				out, err := tb.client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
				if err != nil {
					t.Error(err)
					return
				}
				if len(out.Messages) == 0 {
					return
				}
				var del []types.DeleteMessageBatchRequestEntry
				mu.Lock()
				for i, m := range out.Messages {
					seen[aws.ToString(m.Body)]++
					del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
				}
				mu.Unlock()
				if _, err := tb.client.DeleteMessageBatch(context.Background(), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: del}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("received %d distinct messages, want %d", len(seen), n)
	}
	for body, c := range seen {
		if c != 1 {
			t.Errorf("message %s received %d times", body, c)
		}
	}
	if st := tb.srv.Stats(url); st.Deleted != n || st.Visible+st.InFlight != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestGoAPI(t *testing.T) {
	t.Parallel()
	srv := sqsemu.New(sqsemu.Options{})
	t.Cleanup(func() { _ = srv.Close() })

	t.Run("WorksWithoutStart", func(t *testing.T) {
		url := srv.CreateQueue("plain", nil)
		id, err := srv.SendMessage(url, "hello")
		if err != nil || id == "" {
			t.Fatalf("SendMessage = %q, %v", id, err)
		}
		msgs := srv.Messages("plain")
		if len(msgs) != 1 || msgs[0].ID != id || msgs[0].Body != "hello" || msgs[0].InFlight {
			t.Fatalf("Messages = %+v", msgs)
		}
	})

	t.Run("UnknownQueueIsAnError", func(t *testing.T) {
		_, err := srv.SendMessage("http://localhost/000000000000/nope", "x")
		if !errors.Is(err, sqsemu.ErrQueueDoesNotExist) {
			t.Fatalf("error = %v, want ErrQueueDoesNotExist", err)
		}
		if st := srv.Stats("nope"); st != (sqsemu.QueueStats{}) {
			t.Fatalf("Stats of an unknown queue = %+v", st)
		}
	})

	t.Run("InvalidAttributesPanic", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("CreateQueue with an invalid attribute did not panic")
			}
		}()
		srv.CreateQueue("bad", map[string]string{"VisibilityTimeout": "-1"})
	})

	t.Run("ServesAsAnHTTPHandler", func(t *testing.T) {
		srv.CreateQueue("handler", nil)
		req, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(`{"QueueName":"handler"}`))
		req.Host = "sqs.test:1234"
		req.Header.Set("X-Amz-Target", "AmazonSQS.GetQueueUrl")
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		rec := &recorder{header: http.Header{}}
		srv.ServeHTTP(rec, req)
		if rec.status != 200 || !strings.Contains(rec.body.String(), `"QueueUrl":"http://sqs.test:1234/000000000000/handler"`) {
			t.Fatalf("answer %d %s", rec.status, rec.body.String())
		}
	})
}

// recorder is a minimal http.ResponseWriter.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) { r.status = code }

type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// rawPost sends an unsigned AWS JSON 1.0 request.
func rawPost(t *testing.T, endpoint, target, body string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", target)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: res.StatusCode, header: res.Header, body: b}
}

// TestWireAnswers pins the exact answers (status and body) of the
// operations that share the decode/check/look-up path, batch runner and
// paging: the order in which input, queue and entry errors are reported,
// and each output's members (queueUrls, [] and omitted ones). Q/ stands for
// the queue URL prefix.
func TestWireAnswers(t *testing.T) {
	t.Parallel()
	_, endpoint := startUnsigned(t)
	prefix := endpoint + "/000000000000/"
	// In order: each row sees the queues the rows before it left.
	for _, c := range []struct {
		op, in string
		status int
		want   string
	}{
		{"CreateQueue", `{"QueueName":"w"}`, 200, `{"QueueUrl":"Q/w"}`},
		{"CreateQueue", `{"QueueName":"w","Attributes":{"VisibilityTimeout":"5"}}`, 400, `{"__type":"com.amazonaws.sqs#QueueNameExists","message":"A queue already exists with the same name and a different value for attribute VisibilityTimeout"}`},
		{"GetQueueUrl", `{"QueueName":"w","Attributes":5}`, 200, `{"QueueUrl":"Q/w"}`},
		{"GetQueueUrl", `{}`, 400, `{"__type":"com.amazonaws.sqs#MissingParameter","message":"The request must contain the parameter QueueName."}`},
		{"ListQueues", `{"QueueNamePrefix":"none"}`, 200, `{}`},
		{"ListQueues", `{"MaxResults":0}`, 400, `{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":"Value 0 for parameter MaxResults is invalid. Reason: must be between 1 and 1000."}`},
		{"ListDeadLetterSourceQueues", `{"QueueUrl":"Q/w"}`, 200, `{"queueUrls":[]}`},
		{"ListDeadLetterSourceQueues", `{"QueueUrl":"Q/missing","MaxResults":0}`, 400, `{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}`},
		{"SendMessage", `{"QueueUrl":"Q/missing"}`, 400, `{"__type":"com.amazonaws.sqs#MissingParameter","message":"The request must contain the parameter MessageBody."}`},
		{"SendMessageBatch", `{"QueueUrl":"Q/missing","Entries":[]}`, 400, `{"__type":"com.amazonaws.sqs#EmptyBatchRequest","message":"There should be at least one entry in the request."}`},
		{"SendMessageBatch", `{"QueueUrl":"Q/w","Entries":[{"Id":"a","MessageBody":""}]}`, 200, `{"Successful":[],"Failed":[{"Id":"a","Code":"MissingParameter","Message":"The request must contain the parameter MessageBody.","SenderFault":true}]}`},
		{"DeleteMessageBatch", `{"QueueUrl":"Q/w","Entries":[{"Id":"a","ReceiptHandle":""}]}`, 200, `{"Successful":[],"Failed":[{"Id":"a","Code":"MissingParameter","Message":"The request must contain the parameter ReceiptHandle.","SenderFault":true}]}`},
		{"ChangeMessageVisibility", `{"QueueUrl":"Q/missing"}`, 400, `{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}`},
		{"GetQueueAttributes", `{"QueueUrl":"Q/missing","AttributeNames":["Nope"]}`, 400, `{"__type":"com.amazonaws.sqs#InvalidAttributeName","message":"Unknown Attribute Nope."}`},
		{"SetQueueAttributes", `{"QueueUrl":"Q/missing","Attributes":{"QueueArn":"x"}}`, 400, `{"__type":"com.amazonaws.sqs#InvalidAttributeName","message":"Unknown Attribute QueueArn."}`},
		{"DeleteMessage", `{"QueueUrl":"Q/missing"}`, 400, `{"__type":"com.amazonaws.sqs#MissingParameter","message":"The request must contain the parameter ReceiptHandle."}`},
		{"PurgeQueue", `{"QueueUrl":"bad"}`, 404, `{"__type":"com.amazonaws.sqs#InvalidAddress","message":"The address bad is not valid for this endpoint."}`},
		{"DeleteQueue", `{"QueueUrl":"Q/w"}`, 200, `{}`},
		{"DeleteQueue", `{}`, 400, `{"__type":"com.amazonaws.sqs#MissingParameter","message":"The request must contain the parameter QueueUrl."}`},
	} {
		resp := rawPost(t, endpoint, "AmazonSQS."+c.op, strings.ReplaceAll(c.in, "Q/", prefix))
		if got := strings.ReplaceAll(string(resp.body), prefix, "Q/"); resp.status != c.status || got != c.want {
			t.Errorf("%s %s = %d %s, want %d %s", c.op, c.in, resp.status, got, c.status, c.want)
		}
	}
}
