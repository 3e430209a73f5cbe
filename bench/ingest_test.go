package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

func TestParseIngestFlags(t *testing.T) {
	t.Parallel()
	o, err := parseIngestFlags([]string{"-duration", "3s", "-concurrency", "8, 64,8", "-runs", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 3*time.Second || o.warmup != 2*time.Second || o.runs != 1 || !slices.Equal(o.concurrency, []int{8, 64}) {
		t.Errorf("got %+v", o)
	}
	if d, err := parseIngestFlags(nil, io.Discard); err != nil || !slices.Equal(d.concurrency, []int{16, 32, 64}) || d.duration != 10*time.Second {
		t.Errorf("defaults: %+v, %v", d, err)
	}
	for _, bad := range [][]string{{"-concurrency", "0"}, {"-concurrency", "x"}, {"-runs", "0"}, {"-duration", "1ms"},
		{"-bare-batch", "0"}, {"-duplicate-window", "10ms"}, {"extra"}} {
		if _, err := parseIngestFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestIngestLine(t *testing.T) {
	t.Parallel()
	if got, want := ingestLine(12345.6, 7.891, 0.6549, 28.46), "ingest events_per_s=12346 p99_ms=7.89 ratio_vs_bare=0.65 gateway_cpu_us=28.5"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	t.Parallel()
	var xs []time.Duration
	for i := 1; i <= 1000; i++ {
		xs = append(xs, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 500, 0.99: 990, 0.999: 999, 1: 1000, 0: 1} {
		if got := percentile(xs, q); got != want {
			t.Errorf("p%v = %d, want %d", q, got, want)
		}
	}
	if percentile(nil, 0.99) != 0 || percentile([]time.Duration{7}, 0.99) != 7 {
		t.Error("empty or single")
	}
}

func TestAcceptedReason(t *testing.T) {
	t.Parallel()
	ok := `{"queued":1,"duplicate":0,"ignored":0,"unrouted":0}`
	for _, body := range []string{ok, ok + "\n", string(queuedOne)} {
		if r := acceptedReason(http.StatusAccepted, []byte(body), nil); r != "" {
			t.Errorf("accepted %q: %q", body, r)
		}
	}
	if r := acceptedReason(http.StatusOK, queuedOne, nil); r == "" {
		t.Error("the byte comparison skipped the status check")
	}
	for _, tc := range []struct {
		code int
		body string
	}{
		{http.StatusAccepted, `{"queued":0,"duplicate":1}`},
		{http.StatusAccepted, `{"unrouted":1}`},
		{http.StatusAccepted, `not json`},
		{http.StatusServiceUnavailable, `{"message":"work queue unavailable, retry later"}`},
		{http.StatusOK, ok},
	} {
		if r := acceptedReason(tc.code, []byte(tc.body), nil); r == "" {
			t.Errorf("%d %s counted as accepted", tc.code, tc.body)
		}
	}
}

func TestParseCounterMatchesLabels(t *testing.T) {
	t.Parallel()
	const text = `# TYPE oss2s3_events_received_total counter
oss2s3_events_received_total{result="duplicate",source="oss_webhook"} 3
oss2s3_events_received_total{result="queued",source="mns"} 5
oss2s3_events_received_total{result="queued",source="oss_webhook"} 123456
oss2s3_jobs_queued_total{task="bench"} 1.23456e+06
`
	v, ok, err := parseCounter(strings.NewReader(text), "oss2s3_events_received_total", map[string]string{"source": "oss_webhook", "result": "queued"})
	if err != nil || !ok || v != 123456 {
		t.Errorf("events: %v %v %v", v, ok, err)
	}
	v, ok, err = parseCounter(strings.NewReader(text), "oss2s3_jobs_queued_total", map[string]string{"task": "bench"})
	if err != nil || !ok || v != 1234560 {
		t.Errorf("jobs: %v %v %v", v, ok, err)
	}
	if _, ok, _ := parseCounter(strings.NewReader(text), "oss2s3_jobs_queued_total", map[string]string{"task": "other"}); ok {
		t.Error("other task found")
	}
}

func TestIngestYAMLIsGatewayOnly(t *testing.T) {
	t.Parallel()
	y := ingestYAML("127.0.0.1:1", "/d", "127.0.0.1:2", 100, 2*time.Minute)
	for _, want := range []string{"workers: {concurrency: 0}", "max_jobs: 100", "duplicate_window: 2m0s", "level: warn", "bucket: " + ingestBucket, `embedded_listen: "127.0.0.1:2"`} {
		if !strings.Contains(y, want) {
			t.Errorf("configuration lacks %q:\n%s", want, y)
		}
	}
}

func TestDocTemplateIsTheMarshalledRecord(t *testing.T) {
	t.Parallel()
	for i, tc := range []struct {
		key, etag string
		t         time.Time
	}{
		{"ingest/r/w000/000000000", "00000000000000000000000000000000", time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)},
		{"ingest/oss2s3-r1-c64/w063/123456789", "0000003F0000000000000000075BCD15", time.Date(2026, 1, 2, 3, 4, 5, 678_901_234, time.FixedZone("x", 3600))},
		{"k", "AB", time.Unix(1, 999_999_999)},
	} {
		want, err := json.Marshal(ossevent.Document{Events: []ossevent.Record{ossevent.NewRecord(ingestEvent, ossRegion, ingestBucket, tc.key, tc.etag, ingestSize, "text/plain", tc.t)}})
		if err != nil {
			t.Fatal(err)
		}
		if got := ingestDoc.append([]byte("prefix"), []byte(tc.key), []byte(tc.etag), tc.t); string(got) != "prefix"+string(want) {
			t.Errorf("%d: got\n%s\nwant\n%s", i, got[len("prefix"):], want)
		}
		if _, err := ossevent.Parse(want); err != nil {
			t.Errorf("%d: the gateway's parser refuses it: %v", i, err)
		}
	}
}

func TestAppendPadded(t *testing.T) {
	t.Parallel()
	if got := string(appendETag([]byte("x"), 63, 123456789)); got != "x0000003F0000000000000000075BCD15" {
		t.Errorf("hex: %s", got)
	}
	if got := string(appendKey(nil, "ingest/r/p001/", 42)); got != "ingest/r/p001/000000042" {
		t.Errorf("decimal: %s", got)
	}
}

// queuedOne, which the load generator compares answers with, is what the
// gateway answers for one new event.
func TestQueuedOneIsTheGatewaysBody(t *testing.T) {
	t.Parallel()
	var want strings.Builder
	if err := json.NewEncoder(&want).Encode(handlers.EventsAccepted{Queued: 1}); err != nil {
		t.Fatal(err)
	}
	if string(queuedOne) != want.String() {
		t.Fatalf("queuedOne %q, gateway %q", queuedOne, want.String())
	}
}

// TestServerMallocsReadsTheGatewaysMetrics: the allocation and GC counts of
// each run come from the series the gateway's registry serves.
func TestServerMallocsReadsTheGatewaysMetrics(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(promhttp.HandlerFor(metrics.NewRegistry(), promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	runtime.GC()
	n, gcs, err := serverMallocs(context.Background(), srv.URL)
	if err != nil || n <= 0 || gcs <= 0 {
		t.Fatalf("go_memstats_mallocs_total %v, go_gc_duration_seconds_count %v, %v", n, gcs, err)
	}
}
