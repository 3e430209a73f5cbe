package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/oss2s3/oss2s3/internal/sqsemu"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

const sqsAK, sqsSK = "SQSTESTACCESSKEY", "sqs-test-secret"

// sqsBed is the SQS emulator with one queue, and the environment that
// points the function at it.
type sqsBed struct {
	srv *sqsemu.Server
	url string
	env map[string]string
}

func newSQSBed(t *testing.T, format string) *sqsBed {
	t.Helper()
	srv := sqsemu.New(sqsemu.Options{Credentials: map[string]string{sqsAK: sqsSK}, Region: "us-west-2"})
	endpoint, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	url := srv.CreateQueue("DTHS3Stack-S3TransferQueue", nil)
	return &sqsBed{srv: srv, url: url, env: map[string]string{
		"OSS2S3_MODE":           "sqs",
		"OSS2S3_SQS_QUEUE_URL":  url,
		"OSS2S3_SQS_REGION":     "us-west-2",
		"OSS2S3_SQS_ENDPOINT":   endpoint,
		"OSS2S3_SQS_FORMAT":     format,
		"AWS_ACCESS_KEY_ID":     sqsAK,
		"AWS_SECRET_ACCESS_KEY": sqsSK,
	}}
}

func (b *sqsBed) bodies() []string {
	var out []string
	for _, m := range b.srv.Messages(b.url) {
		out = append(out, m.Body)
	}
	return out
}

// document builds an OSS trigger document of n records about keys k0..kn-1,
// every third one a delete.
func document(t *testing.T, n int, key func(i int) string) string {
	t.Helper()
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	var doc ossevent.Document
	for i := range n {
		if i%3 == 2 {
			doc.Events = append(doc.Events, ossevent.NewRecord("ObjectRemoved:DeleteObject", "cn-hangzhou", "src", key(i), "", 0, "", now))
			continue
		}
		doc.Events = append(doc.Events, ossevent.NewRecord("ObjectCreated:PutObject", "cn-hangzhou", "src", key(i), "AA", int64(100+i), "text/plain", now))
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSQSMode(t *testing.T) {
	t.Parallel()

	t.Run("EventFormatSendsEveryRecordInBatchesOfTen", func(t *testing.T) {
		t.Parallel()
		b := newSQSBed(t, formatEvent)
		fn := startFunction(t, "", b.env)
		body := document(t, 23, func(i int) string { return fmt.Sprintf("dir/é %02d.txt", i) })

		status, res := fn.invoke(t, "req-sqs-event", body)
		if status != http.StatusOK || res.Records != 23 || res.Sent != 23 || res.Failed != 0 || res.Attempts != 1 {
			t.Fatalf("status = %d, response = %+v; want 200 with 23 sent in one round", status, res)
		}
		if n := b.srv.Requests()["SendMessageBatch"]; n != 3 {
			t.Errorf("%d SendMessageBatch calls, want 3 (10+10+3)", n)
		}
		want, err := ossevent.Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		got := b.bodies()
		if len(got) != 23 {
			t.Fatalf("queue holds %d messages, want 23", len(got))
		}
		for i, m := range got {
			doc, err := ossevent.Parse([]byte(m))
			if err != nil {
				t.Fatalf("message %d is not an OSS event document: %v\n%s", i, err, m)
			}
			if len(doc.Events) != 1 || doc.Events[0].OSS.Object.Key != want.Events[i].OSS.Object.Key || doc.Events[0].EventName != want.Events[i].EventName {
				t.Errorf("message %d = %s, want record %d (%s %s)", i, m, i, want.Events[i].EventName, want.Events[i].OSS.Object.Key)
			}
		}
	})

	t.Run("EventFormatKeepsTheRecordsMembers", func(t *testing.T) {
		t.Parallel()
		b := newSQSBed(t, formatEvent)
		fn := startFunction(t, "", b.env)
		if status, res := fn.invoke(t, "req-sqs-one", oneRecord); status != http.StatusOK || res.Sent != 1 {
			t.Fatalf("status = %d, response = %+v; want 200, 1 sent", status, res)
		}
		got := b.bodies()
		// The record, whitespace aside, member for member: ruleId,
		// requestParameters and the rest reach the consumer.
		var wantDoc, gotDoc any
		if err := json.Unmarshal([]byte(oneRecord), &wantDoc); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || json.Unmarshal([]byte(got[0]), &gotDoc) != nil || fmt.Sprint(gotDoc) != fmt.Sprint(wantDoc) {
			t.Errorf("queue holds %q, want the one record of %s", got, oneRecord)
		}
		if strings.ContainsAny(got[0], "\n ") {
			t.Errorf("message %q is not compact", got[0])
		}
	})

	t.Run("KeysWithCharactersSQSRefusesRawAreEscaped", func(t *testing.T) {
		t.Parallel()
		key := "odd/\uffff\ufffe.txt" // valid UTF-8 and valid in OSS keys; not in SQS bodies
		for _, format := range []string{formatEvent, formatDTH} {
			b := newSQSBed(t, format)
			fn := startFunction(t, "", b.env)
			if status, res := fn.invoke(t, "req-sqs-odd-"+format, document(t, 1, func(int) string { return key })); status != http.StatusOK || res.Sent != 1 {
				t.Fatalf("%s: status = %d, response = %+v; want 200, 1 sent", format, status, res)
			}
			got := b.bodies()
			var msg struct {
				Key    string            `json:"key"`
				Events []ossevent.Record `json:"events"`
			}
			if len(got) != 1 || json.Unmarshal([]byte(got[0]), &msg) != nil {
				t.Fatalf("%s: queue holds %q", format, got)
			}
			if msg.Key != key && (len(msg.Events) != 1 || msg.Events[0].OSS.Object.Key != key) {
				t.Errorf("%s: message %q does not carry the key %q", format, got[0], key)
			}
		}
	})

	t.Run("DTHFormatWritesWhatTheSeedWrote", func(t *testing.T) {
		t.Parallel()
		b := newSQSBed(t, formatDTH)
		fn := startFunction(t, "", b.env)
		keys := []string{`a/b.txt`, `dir/ü 中文 🙂.txt`, `gone.txt`, "q\"uote\\back\ttab\x7f"}
		body := document(t, 4, func(i int) string { return keys[i] })

		status, res := fn.invoke(t, "req-sqs-dth", body)
		// Record 2 is a delete: the dth format cannot carry it.
		if status != http.StatusOK || res.Sent != 3 || res.Skipped != 1 {
			t.Fatalf("status = %d, response = %+v; want 200, 3 sent, 1 skipped", status, res)
		}
		// What Python 3's json.dumps({'key': k, 'size': s}) prints for
		// these keys (python3 -c 'import json; print(json.dumps(...))').
		want := []string{
			`{"key": "a/b.txt", "size": 100}`,
			`{"key": "dir/\u00fc \u4e2d\u6587 \ud83d\ude42.txt", "size": 101}`,
			`{"key": "q\"uote\\back\ttab\u007f", "size": 103}`,
		}
		if got := b.bodies(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("queue holds\n%q\nwant\n%q", got, want)
		}
		if !strings.Contains(fn.logs.String(), "dth format carries only created or changed objects") {
			t.Errorf("skipped delete not logged:\n%s", fn.logs)
		}
	})

	t.Run("RetriesTheEntriesThatFailed", func(t *testing.T) {
		t.Parallel()
		b := newSQSBed(t, formatEvent)
		b.srv.InjectFault(sqsemu.Fault{Op: "SendMessageBatch", FailEntries: 4, Times: 1})
		fn := startFunction(t, "", b.env)
		body := document(t, 12, func(i int) string { return fmt.Sprintf("k%02d", i) })

		status, res := fn.invoke(t, "req-sqs-partial", body)
		if status != http.StatusOK || res.Sent != 12 || res.Attempts != 2 {
			t.Fatalf("status = %d, response = %+v; want 200, 12 sent after 2 rounds", status, res)
		}
		got := b.bodies()
		if len(got) != 12 {
			t.Fatalf("queue holds %d messages, want 12 (each record once)", len(got))
		}
		seen := map[string]int{}
		for _, m := range got {
			doc, err := ossevent.Parse([]byte(m))
			if err != nil {
				t.Fatal(err)
			}
			seen[doc.Events[0].OSS.Object.Key]++
		}
		for i := range 12 {
			if k := fmt.Sprintf("k%02d", i); seen[k] != 1 {
				t.Errorf("%s sent %d times, want once", k, seen[k])
			}
		}
		if !strings.Contains(fn.logs.String(), "sqs entries failed, retrying") {
			t.Errorf("retry not logged:\n%s", fn.logs)
		}
	})

	t.Run("RetriesAFailedRequest", func(t *testing.T) {
		t.Parallel()
		b := newSQSBed(t, formatDTH)
		b.srv.InjectFault(sqsemu.Fault{Op: "SendMessageBatch", Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Times: 2})
		fn := startFunction(t, "", b.env)

		status, res := fn.invoke(t, "req-sqs-503", oneRecord)
		if status != http.StatusOK || res.Sent != 1 || res.Attempts != 3 {
			t.Fatalf("status = %d, response = %+v; want 200 after 3 rounds", status, res)
		}
		if got := b.bodies(); len(got) != 1 || got[0] != `{"key": "a/b.txt", "size": 1024}` {
			t.Errorf("queue holds %q", got)
		}
	})

	t.Run("AnswersNon200WhenEntriesKeepFailing", func(t *testing.T) {
		t.Parallel()
		b := newSQSBed(t, formatEvent)
		b.srv.InjectFault(sqsemu.Fault{Op: "SendMessageBatch", FailEntries: 2})
		fn := startFunction(t, "", with(b.env, "OSS2S3_TIMEOUT", "1s"))
		body := document(t, 5, func(i int) string { return fmt.Sprintf("k%d", i) })

		start := time.Now()
		status, res := fn.invoke(t, "req-sqs-stuck", body)
		if status != http.StatusGatewayTimeout || res.Sent != 3 || res.Failed != 2 || res.Attempts < 2 {
			t.Fatalf("status = %d, response = %+v; want 504 with 3 sent, 2 failed after several rounds", status, res)
		}
		if took := time.Since(start); took > 2500*time.Millisecond { // retrying forever would never answer
			t.Errorf("answered after %v, want within about the 1s budget", took)
		}
		if !strings.Contains(res.Error, "2 message(s) unsent") {
			t.Errorf("error = %q, want it to count the unsent messages", res.Error)
		}
		if !strings.Contains(fn.logs.String(), `"msg":"event not delivered to SQS"`) || !strings.Contains(fn.logs.String(), `"request_id":"req-sqs-stuck"`) {
			t.Errorf("failure not logged with the request id:\n%s", fn.logs)
		}
	})

	t.Run("DoesNotRetryRefusedCredentials", func(t *testing.T) {
		t.Parallel()
		b := newSQSBed(t, formatEvent)
		fn := startFunction(t, "", with(b.env, "AWS_SECRET_ACCESS_KEY", "wrong"))

		status, res := fn.invoke(t, "req-sqs-403", oneRecord)
		if status != http.StatusBadGateway || res.Attempts != 1 || res.Failed != 1 {
			t.Fatalf("status = %d, response = %+v; want 502 after one round", status, res)
		}
		if !strings.Contains(res.Error, "SignatureDoesNotMatch") {
			t.Errorf("error = %q, want SQS's reason", res.Error)
		}
		if len(b.bodies()) != 0 {
			t.Errorf("queue holds %q, want nothing", b.bodies())
		}
	})

	t.Run("RejectsMalformedDocumentsWithoutSending", func(t *testing.T) {
		t.Parallel()
		b := newSQSBed(t, formatEvent)
		fn := startFunction(t, "", b.env)
		status, res := fn.invoke(t, "req-sqs-bad", `{"events":[{"eventName":"ObjectCreated:PutObject"}]}`)
		if status != http.StatusBadRequest || !strings.Contains(res.Error, "oss.bucket.name is missing") {
			t.Errorf("status = %d, response = %+v; want 400 naming the missing field", status, res)
		}
		if n := b.srv.Requests()["SendMessageBatch"]; n != 0 {
			t.Errorf("%d SendMessageBatch calls, want none", n)
		}
	})
}

func TestSQSConfiguration(t *testing.T) {
	t.Parallel()
	full := map[string]string{
		"OSS2S3_MODE": "sqs", "OSS2S3_SQS_QUEUE_URL": "https://sqs.us-west-2.amazonaws.com/123456789012/DTHS3Stack-S3TransferQueue-1TSF4ESFQEFKJ",
		"OSS2S3_SQS_FORMAT": "dth", "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK",
	}
	t.Run("ReadsTheRegionFromTheQueueURL", func(t *testing.T) {
		cfg, err := loadConfig([]string{"aliyun-fc"}, mapEnv(full), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.mode != modeSQS || cfg.sqs.region != "us-west-2" || cfg.sqs.format != formatDTH || cfg.sqs.accessKeyID != "AK" {
			t.Errorf("config = %+v", cfg)
		}
	})
	t.Run("KeepsTheSeedsEnvironment", func(t *testing.T) {
		// The seed function's variables, as its tutorial sets them.
		seed := map[string]string{
			"OSS2S3_MODE": "sqs", "OSS2S3_SQS_FORMAT": "dth",
			"ACCESS_KEY": "SEEDAK", "SECRET_KEY": "SEEDSK", "REGION_NAME": "eu-west-1",
			"QUEUE_URL": "https://sqs.us-west-2.amazonaws.com/123456789012/DTHS3Stack-S3TransferQueue-xxxx",
		}
		cfg, err := loadConfig([]string{"aliyun-fc"}, mapEnv(seed), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.sqs.queueURL != seed["QUEUE_URL"] || cfg.sqs.region != "eu-west-1" || cfg.sqs.accessKeyID != "SEEDAK" || cfg.sqs.secretKey != "SEEDSK" {
			t.Errorf("config = %+v", cfg.sqs)
		}
	})
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr []string
	}{
		{"RequiresEverything", map[string]string{"OSS2S3_MODE": "sqs"}, []string{"OSS2S3_SQS_QUEUE_URL is not set", "AWS_ACCESS_KEY_ID", "OSS2S3_SQS_FORMAT is not set"}},
		{"RejectsAnUnknownMode", map[string]string{"OSS2S3_MODE": "mns"}, []string{`OSS2S3_MODE "mns"`}},
		{"RejectsAnUnknownFormat", with(full, "OSS2S3_SQS_FORMAT", "json"), []string{`OSS2S3_SQS_FORMAT "json"`}},
		{"RejectsAQueueURLWithoutAQueue", with(full, "OSS2S3_SQS_QUEUE_URL", "https://sqs.us-west-2.amazonaws.com/"), []string{"not a queue URL"}},
		{"NeedsARegion", with(full, "OSS2S3_SQS_QUEUE_URL", "https://vpce-1.sqs.example.com/1/q"), []string{"OSS2S3_SQS_REGION is not set"}},
		{"RejectsABadEndpoint", with(full, "OSS2S3_SQS_ENDPOINT", "localhost:9324"), []string{"OSS2S3_SQS_ENDPOINT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig([]string{"aliyun-fc"}, mapEnv(tc.env), io.Discard)
			if err == nil {
				t.Fatal("configuration accepted, want an error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestBatches(t *testing.T) {
	t.Parallel()
	var es []entry
	for i := range 25 {
		es = append(es, entry{rec: i, body: "x"})
	}
	if got := batches(es); len(got) != 3 || len(got[0]) != 10 || len(got[2]) != 5 {
		t.Errorf("25 small entries: batches of %v, want 10, 10, 5", lens(got))
	}
	big := strings.Repeat("b", 100<<10)
	es = []entry{{rec: 0, body: big}, {rec: 1, body: big}, {rec: 2, body: big}, {rec: 3, body: "x"}}
	if got := batches(es); len(got) != 2 || len(got[0]) != 2 || len(got[1]) != 2 {
		t.Errorf("three 100 KiB entries and a small one: batches of %v, want 2, 2 (256 KiB a batch)", lens(got))
	}
}

func lens(bs [][]entry) []int {
	var out []int
	for _, b := range bs {
		out = append(out, len(b))
	}
	return out
}

func TestRetryableSQS(t *testing.T) {
	t.Parallel()
	answered := func(status int, err error) error {
		return &smithy.OperationError{ServiceID: "SQS", OperationName: "SendMessageBatch", Err: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}}
	}
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		// The budget ran out while a request was in flight: what the SDK
		// returns then (a response error without a status).
		"DeadlineInFlight": {answered(0, &smithy.CanceledError{Err: context.DeadlineExceeded}), true},
		"Refused":          {&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		"ServerError":      {answered(500, &smithy.GenericAPIError{Code: "InternalError"}), true},
		"Throttled":        {answered(403, &smithy.GenericAPIError{Code: "RequestThrottled"}), true},
		"BadSignature":     {answered(403, &smithy.GenericAPIError{Code: "SignatureDoesNotMatch"}), false},
		"NoSuchQueue":      {answered(400, &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue"}), false},
	} {
		if got := retryableSQS(tc.err); got != tc.want {
			t.Errorf("%s: retryableSQS(%v) = %v, want %v", name, tc.err, got, tc.want)
		}
	}
}
