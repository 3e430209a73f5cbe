package handlers_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer/ingest"
	"github.com/oss2s3/oss2s3/transfer/ingest/cloudevents"
	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// The endpoints fuzzed whole: each target signs (or authenticates) what it
// generates, so that fuzzing reaches past the signature check into
// parsing, routing and publishing, and checks what a sender may rely on
// whatever the body:
//   - no panic, no 5xx but a 503 when the queue failed;
//   - a 2xx only when every job the records make is in the queue;
//   - a 4xx changes nothing: no Publish;
//   - a 503 only when the queue failed (fail, from the fuzzer, makes the
//     next Publish store that many jobs and fail, as a full stream does);
//   - allocation bounded by a small multiple of the body.
// Seeds: the f.Add calls and testdata/fuzz/<target>. CI runs each for a
// few seconds (.ci/run).

// fuzzAllocBound is what one request may allocate: a fixed part (echo, the
// answer, signature and certificate checks) and a multiple of the body
// (EventBridge's encoding/json decoding is the most expensive, ~25 bytes
// allocated per byte of tiny events, most of it garbage at once).
func fuzzAllocBound(body []byte) uint64 { return 256<<10 + 40*uint64(len(body)) }

// allocated is what f allocates, as the process's counter sees it.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

type endpoint struct {
	source string
	// request makes the authenticated request for body.
	request func(g *memGateway, body []byte) *http.Request
	// records is what the handler should have queued from body.
	records func(body []byte, contentType string) ([]ossevent.Record, error)
	ok      int // the 2xx status
}

func fuzzEndpoint(f *testing.F, e endpoint, seeds [][]byte) {
	g := newMemGateway(f, nil)
	for _, s := range seeds {
		f.Add(s, uint8(255))
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, fail uint8) {
		// The queue starts empty each time, so that its own growth is not
		// charged to a request.
		g.mq.reset()
		failAt := -1
		if fail < 8 {
			failAt = int(fail % 3)
		}
		g.mq.failing(failAt)
		stored, calls := g.mq.state()
		req := e.request(g, body)
		rec := httptest.NewRecorder()
		n := allocated(func() { g.handler.ServeHTTP(rec, req) })
		g.mq.failing(-1)
		nowStored, nowCalls := g.mq.state()

		// The counter is the process's: another goroutine (the fuzzing
		// engine's) may allocate meanwhile. A request over the bound is
		// measured twice more, and the least counts.
		for range 2 {
			if n <= fuzzAllocBound(body) {
				break
			}
			again := e.request(g, body)
			n = min(n, allocated(func() { g.handler.ServeHTTP(httptest.NewRecorder(), again) }))
		}
		if n > fuzzAllocBound(body) {
			t.Fatalf("a request of %d bytes allocated %d bytes (bound %d)", len(body), n, fuzzAllocBound(body))
		}
		switch {
		case rec.Code == e.ok:
			records, err := e.records(body, req.Header.Get("Content-Type"))
			if err != nil {
				t.Fatalf("%d for a body the parser refuses (%v): %q", rec.Code, err, body)
			}
			jobs, _ := g.in.Jobs(e.source, records)
			for _, j := range jobs {
				if !g.mq.holds(j) {
					t.Fatalf("%d, yet the queue does not hold job %s", rec.Code, j.MsgID())
				}
			}
			if nowCalls > calls+1 {
				t.Fatalf("%d Publish calls for one request", nowCalls-calls)
			}
			if e.ok == http.StatusAccepted {
				var got handlers.EventsAccepted
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Queued+got.Duplicate != len(jobs) || got.Queued != nowStored-stored {
					t.Fatalf("202 %s for %d jobs, %d stored", rec.Body, len(jobs), nowStored-stored)
				}
			}
		case rec.Code == http.StatusServiceUnavailable:
			if failAt < 0 {
				t.Fatalf("503 with a working queue: %s", rec.Body)
			}
		case rec.Code >= 400 && rec.Code < 500:
			if nowStored != stored || nowCalls != calls {
				t.Fatalf("%d %s, yet %d jobs stored in %d Publish calls", rec.Code, rec.Body, nowStored-stored, nowCalls-calls)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%d without a reason: %s", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
}

// ossSeeds are documents of one and several records, routed or not, and
// the shapes issue 14 sent.
func ossSeeds() [][]byte {
	return [][]byte{
		doc(record("ObjectCreated:PutObject", "src", "photos/a", "A1")),
		doc(record("ObjectCreated:PutObject", "src", "photos/a", "A1"), record("ObjectRemoved:DeleteObject", "src", "photos/b", ""),
			record("ObjectCreated:UploadPart", "src", "photos/c", ""), record("ObjectCreated:PutObject", "src", "docs/d", "D1")),
		[]byte(`{"events":[0,0,0,0]}`),
		[]byte(`{"events":[{},null,{}]}`),
		[]byte(`{"events":[{"eventName":"ObjectCreated:PutObject","oss":{"bucket":{"name":"src"},"object":{"key":"photos/k","size":-1}}}]}`),
		[]byte(`{"events":[{"eventName":"x","oss":{"bucket":{"name":"src"},"object":{"key":"a","key":"b"}}}]}`),
		[]byte(`{"events":[` + string(bytes.Repeat([]byte(`{"eventName":"ObjectCreated:PutObject","oss":{"bucket":{"name":"src"},"object":{"key":"photos/x"}}},`), 100)) + `0]}`),
	}
}

func FuzzOSSEndpoint(f *testing.F) {
	fuzzEndpoint(f, endpoint{
		source: metrics.SourceOSSWebhook, ok: http.StatusAccepted,
		request: func(_ *memGateway, body []byte) *http.Request { return ossReq(body) },
		records: func(body []byte, _ string) ([]ossevent.Record, error) {
			doc, err := ossevent.ParseMax(body, ingest.DefaultMaxRecords)
			if err != nil {
				return nil, err
			}
			return doc.Events, nil
		},
	}, ossSeeds())
}

func FuzzEventBridgeEndpoint(f *testing.F) {
	fuzzEndpoint(f, endpoint{
		source: metrics.SourceEventBridge, ok: http.StatusAccepted,
		request: func(_ *memGateway, body []byte) *http.Request { return ebReq(body) },
		records: func(body []byte, _ string) ([]ossevent.Record, error) {
			evs, err := cloudevents.ParseBatchMax(body, ingest.DefaultMaxRecords)
			var rs []ossevent.Record
			for _, ev := range evs {
				rs = append(rs, ev.Record)
			}
			return rs, err
		},
	}, [][]byte{
		jsonOf(cloudEvent("photos/a")),
		jsonOf([]any{cloudEvent("photos/a"), cloudEvent("photos/b"), cloudEvent("docs/c")}),
		jsonOf([]any{cloudEvent("photos/a"), merge(cloudEvent("photos/b"), map[string]any{"id": ""})}),
		[]byte(`[{},{},{},0]`),
		[]byte(`[]`),
		[]byte(`{"specversion":"1.0","id":"i","source":"acs.oss","type":"oss:ObjectCreated:PutObject","data":{"oss":{"bucket":{"name":"src"},"object":{"key":"photos/k"}}}}`),
	})
}

func FuzzMNSEndpoint(f *testing.F) {
	fuzzEndpoint(f, endpoint{
		source: metrics.SourceMNS, ok: http.StatusNoContent,
		request: func(g *memGateway, body []byte) *http.Request {
			return g.mnsReq("/v1/events/mns/"+mnsToken, body, g.certURL, g.key)
		},
		records: func(body []byte, contentType string) ([]ossevent.Record, error) {
			doc, err := mns.ParseNotificationMax(body, contentType, ingest.DefaultMaxRecords)
			if err != nil {
				return nil, err
			}
			return doc.Events, nil
		},
	}, [][]byte{
		[]byte(base64.StdEncoding.EncodeToString(ossSeeds()[0])),
		ossSeeds()[1],
		[]byte(`<?xml version="1.0" encoding="utf-8"?><Notification xmlns="http://mns.aliyuncs.com/doc/v1/"><Message>` +
			base64.StdEncoding.EncodeToString(ossSeeds()[1]) + `</Message></Notification>`),
		[]byte(`{"TopicOwner":"1234","Message":"` + base64.StdEncoding.EncodeToString(ossSeeds()[0]) + `"}`),
		[]byte(base64.StdEncoding.EncodeToString([]byte(`{"events":[0,0,0]}`))),
		[]byte("hello"),
	})
}
