// The costs a hostile client can make the gateway pay: big bodies,
// certificate downloads, replays (the cases of TestAbuseAgainstARunningGateway).

package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

func (a *abuseBed) bigBodies(t *testing.T) {
	const size = 1 << 20
	mnsZeros := []byte(base64.StdEncoding.EncodeToString(tinyRecords("0", size*3/4-8)))
	kinds := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"OSSZeros", func() *http.Request { return a.ossReq(t, tinyRecords("0", size)) }, 413},
		{"OSSTinyRecords", func() *http.Request {
			return a.ossReq(t, tinyRecords(`{"eventName":"ObjectCreated:PutObject","oss":{"bucket":{"name":"b"},"object":{"key":"k"}}}`, size))
		}, 413},
		{"OSSEmptyObjects", func() *http.Request { return a.ossReq(t, tinyRecords("{}", size)) }, 413},
		{"EventBridgeEmptyObjects", func() *http.Request { return a.ebReq(t, tinyBatch("{}", size)) }, 400},
		{"EventBridgeTinyEvents", func() *http.Request {
			return a.ebReq(t, tinyBatch(`{"specversion":"1.0","id":"i","source":"acs.oss","type":"oss:ObjectCreated:PutObject","data":{"oss":{"bucket":{"name":"b"},"object":{"key":"k"}}}}`, size))
		}, 413},
		{"MNSZeros", func() *http.Request { return a.mnsReq(t, "/v1/events/mns/"+abuseMNSToken, mnsZeros, "/cert.pem") }, 413},
	}
	// The figure of the issue: one body.
	text := a.metrics(t)
	allocBefore := metric(t, text, "go_memstats_alloc_bytes_total ")
	rss0, peak0 := a.memory(t)
	if status, body := a.send(t, kinds[0].req()); status != kinds[0].status {
		t.Fatalf("%s: %d %s", kinds[0].name, status, body)
	}
	rss1, peak1 := a.memory(t)
	alloc1 := metric(t, a.metrics(t), "go_memstats_alloc_bytes_total ") - allocBefore
	t.Logf("one 1 MiB body of zeros: RSS %d -> %d KiB (peak %d -> %d KiB, +%d KiB), %d KiB allocated (with a scrape of /metrics)",
		rss0>>10, rss1>>10, peak0>>10, peak1>>10, (peak1-peak0)>>10, int64(alloc1)>>10)

	// Then every kind, four at once, twice.
	sent := 0
	for range 2 {
		for _, k := range kinds {
			var wg sync.WaitGroup
			for range 4 {
				req := k.req()
				sent += int(req.ContentLength)
				wg.Go(func() {
					if status, body := a.send(t, req); status != k.status {
						t.Errorf("%s: %d %s, want %d", k.name, status, body[:min(len(body), 200)], k.status)
					}
				})
			}
			wg.Wait()
		}
	}
	rss2, peak2 := a.memory(t)
	alloc2 := metric(t, a.metrics(t), "go_memstats_alloc_bytes_total ") - allocBefore - alloc1
	t.Logf("%d bodies of about 1 MiB, four at once: RSS %d -> %d KiB (peak %d -> %d KiB, +%d KiB), %d KiB allocated, %.2f bytes per byte sent",
		2*4*len(kinds), rss1>>10, rss2>>10, peak1>>10, peak2>>10, (peak2-peak1)>>10, int64(alloc2)>>10, alloc2/float64(sent))
	if per := alloc2 / float64(sent); per > 3 {
		t.Errorf("the gateway allocated %.1f bytes per byte of body (%d KiB for %d KiB), want at most 3", per, int64(alloc2)>>10, sent>>10)
	}
	// Four bodies of 1 MiB at once, each read whole before it is refused,
	// and their garbage until the next collection: the peak may rise by
	// a few times 4 MiB, never by the hundreds of megabytes of before.
	// (The race detector's shadow memory counts too, about four times.)
	bound := int64(24 << 20)
	if raceEnabled {
		bound *= 4
	}
	if rise := peak2 - peak0; rise > bound {
		t.Errorf("the peak RSS rose by %d MiB, want at most %d MiB", rise>>20, bound>>20)
	}
	if n := a.queued(t); n != 0 {
		t.Fatalf("%d jobs queued", n)
	}
}

// certificateDownloads is finding 5: 20 requests naming 20 certificate
// URLs held 20 downloads open at once, a failing URL was downloaded again
// for every request, and the 500 told the client why.
func (a *abuseBed) certificateDownloads(t *testing.T) {
	body := []byte(base64.StdEncoding.EncodeToString(documentOf(recordJSON(e2eSrc, abuseRouted+"m", "A1"))))
	parallel := func(path string, certPath func(i int) string) []string {
		var mu sync.Mutex
		var answers []string
		var wg sync.WaitGroup
		for i := range 20 {
			req := a.mnsReq(t, path, body, certPath(i))
			wg.Go(func() {
				status, b := a.send(t, req)
				mu.Lock()
				answers = append(answers, fmt.Sprintf("%d %s", status, b))
				mu.Unlock()
			})
		}
		wg.Wait()
		return answers
	}
	before := a.certs.total.Load()
	for _, ans := range parallel("/v1/events/mns", func(i int) string { return fmt.Sprintf("/no-token/%d.pem", i) }) {
		if !strings.HasPrefix(ans, "403 ") {
			t.Errorf("without the path token: %s", ans)
		}
	}
	if n := a.certs.total.Load() - before; n != 0 {
		t.Fatalf("%d downloads for requests without the path token", n)
	}

	a.certs.most.Store(0)
	start := time.Now()
	for _, ans := range parallel("/v1/events/mns/"+abuseMNSToken, func(i int) string { return fmt.Sprintf("/slow/%d.pem", i) }) {
		if !strings.HasPrefix(ans, "500 ") || regexp.MustCompile(`127\.0\.0\.1|slow|dial|tcp`).MatchString(ans) {
			t.Errorf("a download that failed: %s, want a 500 that says nothing of it", ans)
		}
	}
	most, n := a.certs.most.Load(), a.certs.total.Load()-before
	t.Logf("20 requests naming 20 URLs: %d downloads, at most %d at once, %s", n, most, time.Since(start).Round(time.Millisecond))
	if most > abuseMaxFetchs {
		t.Errorf("%d downloads at once, want at most %d", most, abuseMaxFetchs)
	}

	before = a.certs.total.Load()
	for range 10 {
		req := a.mnsReq(t, "/v1/events/mns/"+abuseMNSToken, body, "/slow/0.pem")
		if status, b := a.send(t, req); status != 500 {
			t.Errorf("a URL that failed, again: %d %s", status, b)
		}
	}
	if n := a.certs.total.Load() - before; n > 0 {
		t.Errorf("%d downloads for 10 requests naming a URL that failed a moment ago, want none", n)
	}
	if n := a.queued(t); n != 0 {
		t.Fatalf("%d jobs queued", n)
	}
}

// replay is note 1 of issue 14: the signature tolerance (5 min) is longer
// than the duplicate window (2 min; 1 s for this gateway), so a request
// replayed in between was queued again.
func (a *abuseBed) replay(t *testing.T) {
	original := a.ossReq(t, documentOf(recordJSON(e2eSrc, abuseRouted+"replayed", "R1")))
	captured := original.Header.Get(signature.Header)
	body, _ := io.ReadAll(original.Body)
	original.Body = io.NopCloser(bytes.NewReader(body))
	if status, ans := a.send(t, original); status != 202 || !strings.Contains(ans, `"queued":1`) {
		t.Fatalf("original: %d %s", status, ans)
	}
	// Wait out JetStream's duplicate window: a probe document sent again,
	// signed anew each second, is stored anew once the window is over.
	probe := documentOf(recordJSON(e2eSrc, abuseRouted+"probe", "P1"))
	if status, ans := a.send(t, a.ossReq(t, probe)); status != 202 || !strings.Contains(ans, `"queued":1`) {
		t.Fatalf("probe: %d %s", status, ans)
	}
	var ans string
	if !testkit.Eventually(30*time.Second, 0, func() bool {
		time.Sleep(time.Second + 100*time.Millisecond) // a new second: a new signature
		_, ans = a.send(t, a.ossReq(t, probe))
		return strings.Contains(ans, `"queued":1`)
	}) {
		t.Fatalf("the duplicate window never ended: %s", ans)
	}
	replayed, _ := http.NewRequest(http.MethodPost, a.base+"/v1/events/oss", bytes.NewReader(body))
	replayed.Header.Set("Content-Type", "application/json")
	replayed.Header.Set(signature.Header, captured)
	if status, ans := a.send(t, replayed); status != 202 || !strings.Contains(ans, `"queued":0,"duplicate":1`) {
		t.Fatalf("replayed after the duplicate window: %d %s", status, ans)
	}
	if n := a.queued(t); n != 3 { // the original and the probe twice
		t.Fatalf("%d jobs queued, want 3", n)
	}
}
