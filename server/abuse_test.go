package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/signcert"
	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

// The abuse suite: the hostile requests of issue 14 and the earlier
// bad-input table, sent over HTTP to a running gateway (the real program,
// a process of its own, so that its memory can be measured), with what
// each must leave behind: the status, nothing queued, memory and /metrics
// within bounds, and certificate downloads within bounds.

const (
	abuseEBKey     = "abuse-eventbridge-key-0123456789"
	abuseMNSToken  = "abuse-mns-path-token-0123456789"
	abuseAdmin     = "abuse-admin-token-0123456789"
	abuseRouted    = "routed/"
	abuseCertHold  = time.Second
	abuseMaxFetchs = mns.DefaultMaxFetches
)

// certServer stands in for mns-cert.oss-<region>.aliyuncs.com: it serves
// the signing certificate at /cert.pem and, for any other path, waits
// abuseCertHold and answers 404, counting downloads and the most at once.
type certServer struct {
	*httptest.Server
	key                   *rsa.PrivateKey
	total, inFlight, most atomic.Int32
	caFile                string
}

func newCertServer(t *testing.T) *certServer {
	t.Helper()
	key, certPEM := signcert.New(t, "mns abuse test")
	cs := &certServer{key: key}
	cs.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.total.Add(1)
		n := cs.inFlight.Add(1)
		defer cs.inFlight.Add(-1)
		for m := cs.most.Load(); n > m && !cs.most.CompareAndSwap(m, n); m = cs.most.Load() {
		}
		if r.URL.Path == "/cert.pem" {
			_, _ = w.Write(certPEM)
			return
		}
		select {
		case <-time.After(abuseCertHold):
		case <-r.Context().Done():
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(cs.Close)
	// The gateway trusts this server's certificate as it would a public
	// CA's: through SSL_CERT_FILE.
	cs.caFile = filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cs.Certificate().Raw})
	if err := os.WriteFile(cs.caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return cs
}

// abuseBed is a gateway-only oss2s3 process with every endpoint on.
type abuseBed struct {
	*bed
	proc  *child
	certs *certServer
	base  string
}

func startAbuseBed(t *testing.T) *abuseBed {
	t.Helper()
	b := newFakeBed(t, 0)
	certs := newCertServer(t)
	b.queueConfig = "  duplicate_window: 1s\n"
	b.extraConfig = fmt.Sprintf(`mns:
  enabled: true
  cert_host_pattern: '127\.0\.0\.1:[0-9]+'
  path_tokens: [%q]
eventbridge:
  api_key_header: x-api-key
  api_keys: [%q]
admin:
  tokens: [%q]
`, abuseMNSToken, abuseEBKey, abuseAdmin)
	b.childEnv = []string{"SSL_CERT_FILE=" + certs.caFile, "GOMAXPROCS=2"}
	b.writeConfig(t, 0)
	// The task takes one prefix of the bucket, so that the hostile
	// requests' records, elsewhere, are unrouted if they ever get through.
	cfg, err := os.ReadFile(b.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("      bucket: "+e2eSrc+"\n"), []byte("      bucket: "+e2eSrc+"\n      prefixes: ["+abuseRouted+"]\n"), 1)
	if err := os.WriteFile(b.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	proc := startChild(t, b)
	return &abuseBed{bed: b, proc: proc, certs: certs, base: "http://" + b.addr}
}

// send makes one request and returns its status and body.
func (a *abuseBed) send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body)
}

func (a *abuseBed) ossReq(t *testing.T, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.base+"/v1/events/oss", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(signature.Header, signature.Sign(e2eSecret, time.Now(), body))
	return req
}

func (a *abuseBed) ebReq(t *testing.T, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.base+"/v1/events/eventbridge", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	req.Header.Set("x-api-key", abuseEBKey)
	return req
}

// mnsReq is an MNS push (SIMPLIFIED) to path, signed by the test key with
// the certificate at certPath of the certificate server.
func (a *abuseBed) mnsReq(t *testing.T, path string, body []byte, certPath string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(body)
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:]))))
	req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	req.Header.Set("x-mns-request-id", fmt.Sprintf("%X", time.Now().UnixNano()))
	req.Header.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(a.certs.URL+certPath)))
	digest := sha1.Sum([]byte(mns.StringToSign(req.Method, path, req.Header)))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.certs.key, crypto.SHA1, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", base64.StdEncoding.EncodeToString(sig))
	return req
}

// metrics is the gateway's /metrics text.
func (a *abuseBed) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(a.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// metric is the value of the first series of /metrics text that starts
// with prefix.
func metric(t *testing.T, text, prefix string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("/metrics has no %s", prefix)
	return 0
}

// queued is the number of jobs in the work queue.
func (a *abuseBed) queued(t *testing.T) int {
	t.Helper()
	return int(metric(t, a.metrics(t), `oss2s3_queue_jobs{task="e2e"}`))
}

// memory is the process's resident set and its peak, in bytes, from
// /proc (Linux only).
func (a *abuseBed) memory(t *testing.T) (rss, peak int64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", a.proc.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// tinyRecords is a document of about size bytes of element, the events.
func tinyRecords(element string, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	for b.Len() < size-len(element)-3 {
		if b.Len() > len(`{"events":[`) {
			b.WriteByte(',')
		}
		b.WriteString(element)
	}
	b.WriteString("]}")
	return b.Bytes()
}

func tinyBatch(element string, size int) []byte {
	doc := tinyRecords(element, size+len(`{"events":`)+1)
	return doc[len(`{"events":`) : len(doc)-1]
}

func recordJSON(bucket, key, etag string) ossevent.Record {
	return ossevent.NewRecord("ObjectCreated:PutObject", "cn-hangzhou", bucket, key, etag, 5, "text/plain", time.Now())
}

func documentOf(records ...ossevent.Record) []byte {
	b, _ := json.Marshal(ossevent.Document{Events: records})
	return b
}

func TestAbuseAgainstARunningGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts oss2s3 as a process and sends it megabytes")
	}
	t.Parallel()
	a := startAbuseBed(t)

	t.Run("HostileRequestsAreRefusedAndQueueNothing", func(t *testing.T) {
		a.hostileRequests(t)
		if n := a.queued(t); n != 0 {
			t.Fatalf("%d jobs queued by hostile requests", n)
		}
	})
	t.Run("InventedMethodsAddNoSeriesAndMetricsStaySmall", a.inventedMethods)
	t.Run("ForgedAddressesAreNotLogged", a.forgedAddresses)
	t.Run("BigBodiesOfTinyRecordsCostLittleMemory", a.bigBodies)
	t.Run("CertificateDownloadsAreBounded", a.certificateDownloads)
	t.Run("AReplayWithinTheToleranceIsADuplicate", a.replay)
}

// rawExchange writes a raw request on a new connection and returns the
// status line of the answer.
func (a *abuseBed) rawExchange(t *testing.T, raw string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", a.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to %q: %v", raw[:min(len(raw), 60)], err)
	}
	return strings.TrimSpace(line)
}

// endless is a body that never ends: a request with it can only be cut
// off by the gateway.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func (a *abuseBed) hostileRequests(t *testing.T) {
	good := documentOf(recordJSON(e2eSrc, abuseRouted+"a", "A1"))
	unrouted := func(key string) []byte { return documentOf(recordJSON("some-other-bucket", key, "A1")) }
	with := func(r *http.Request, f func(*http.Request)) *http.Request { f(r); return r }
	signed := func(body []byte, at time.Time) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set(signature.Header, signature.Sign(e2eSecret, at, body)) }
	}
	many := func(n int) []byte {
		var rs []ossevent.Record
		for i := range n {
			rs = append(rs, recordJSON(e2eSrc, fmt.Sprintf("%s%d", abuseRouted, i), "A1"))
		}
		return documentOf(rs...)
	}
	event := func(key string) map[string]any {
		return map[string]any{"specversion": "1.0", "id": "id-" + key, "source": "acs.oss", "type": "oss:ObjectCreated:PutObject",
			"data": recordJSON(e2eSrc, key, "A1")}
	}
	events := func(n int) []byte {
		var evs []any
		for i := range n {
			evs = append(evs, event(fmt.Sprintf("%s%d", abuseRouted, i)))
		}
		b, _ := json.Marshal(evs)
		return b
	}
	mnsBody := []byte(base64.StdEncoding.EncodeToString(good))
	get := func(path string, header ...string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, a.base+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	fetchesBefore := a.certs.total.Load()
	cases := []struct {
		name   string
		req    *http.Request
		status int
		reason string
	}{
		// Signatures.
		{"Unsigned", with(a.ossReq(t, good), func(r *http.Request) { r.Header.Del(signature.Header) }), 401, "missing X-Oss2s3-Signature"},
		{"WrongSecret", with(a.ossReq(t, good), func(r *http.Request) {
			r.Header.Set(signature.Header, signature.Sign("not-the-secret-0123456789", time.Now(), good))
		}), 401, "does not match"},
		{"SignedSixMinutesAgo", with(a.ossReq(t, good), signed(good, time.Now().Add(-6*time.Minute))), 401, "tolerance"},
		{"SignedSixMinutesAhead", with(a.ossReq(t, good), signed(good, time.Now().Add(6*time.Minute))), 401, "tolerance"},
		{"MalformedSignature", with(a.ossReq(t, good), func(r *http.Request) { r.Header.Set(signature.Header, "t=now,v1=zz") }), 401, "malformed"},
		{"EmptyV1", with(a.ossReq(t, good), func(r *http.Request) { r.Header.Set(signature.Header, "t=1,v1=") }), 401, "malformed"},
		{"BodyChangedAfterSigning", with(a.ossReq(t, good), func(r *http.Request) {
			r.Body = io.NopCloser(bytes.NewReader(bytes.Replace(good, []byte(abuseRouted+"a"), []byte(abuseRouted+"b"), 1)))
		}), 401, "does not match"},
		// Bodies.
		{"TwoMiBBody", a.ossReq(t, bytes.Repeat([]byte(" "), 2<<20)), 413, "larger than"},
		{"NeverEndingBody", with(a.ossReq(t, nil), func(r *http.Request) { r.Body = io.NopCloser(endless{}); r.ContentLength = -1 }), 413, "larger than"},
		{"NotJSON", a.ossReq(t, []byte("hello")), 400, "not an OSS event document"},
		{"WrongContentType", with(a.ossReq(t, good), func(r *http.Request) { r.Header.Set("Content-Type", "application/xml") }), 415, "content type"},
		{"DeepNesting", a.ossReq(t, []byte(`{"events":[{"x":`+strings.Repeat("[", 10001)+strings.Repeat("]", 10001)+`}]}`)), 400, "exceeded max depth"},
		{"DuplicateKeyMember", a.ossReq(t, []byte(`{"events":[{"eventName":"ObjectCreated:PutObject","oss":{"bucket":{"name":"`+e2eSrc+`"},"object":{"key":"routed/a","key":"routed/b"}}}]}`)), 400, "given twice"},
		{"InvalidUTF8", a.ossReq(t, []byte("{\"events\":[{\"eventName\":\"x\",\"oss\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"routed/\xff\"}}}]}")), 400, "UTF-8"},
		{"LoneSurrogate", a.ossReq(t, []byte(`{"events":[{"eventName":"x","oss":{"bucket":{"name":"b"},"object":{"key":"routed/\ud800"}}}]}`)), 400, "surrogate"},
		{"ZerosForRecords", a.ossReq(t, []byte(`{"events":[0,0,0,0]}`)), 400, "cannot unmarshal number"},
		{"OneRecordTooMany", a.ossReq(t, many(101)), 413, "more than 100"},
		{"KeyOver1023Bytes", a.ossReq(t, documentOf(recordJSON(e2eSrc, abuseRouted+strings.Repeat("k", 1024), "A1"))), 400, "more than OSS allows"},
		// Harmless rather than refused: a CRLF in a key is a key like any
		// other (never a header), here of a bucket no task takes.
		{"CRLFInAKey", a.ossReq(t, unrouted("a\r\nX-Injected: 1")), 202, ""},
		// EventBridge.
		{"EventBridgeNoKey", with(a.ebReq(t, events(1)), func(r *http.Request) { r.Header.Del("x-api-key") }), 401, "missing credentials"},
		{"EventBridgeWrongKey", with(a.ebReq(t, events(1)), func(r *http.Request) { r.Header.Set("x-api-key", abuseEBKey+"x") }), 401, "do not match"},
		{"EventBridgeWrongBasicAuth", with(a.ebReq(t, events(1)), func(r *http.Request) { r.Header.Del("x-api-key"); r.SetBasicAuth("eventbridge", abuseEBKey) }), 401, "do not match"},
		{"EventBridgeEmptyObjects", a.ebReq(t, []byte(`[{},{},{}]`)), 400, "batch[0]"},
		{"EventBridgeOneEventTooMany", a.ebReq(t, events(101)), 413, "more than 100"},
		// MNS: the path token first, then the signature; no download for
		// either.
		{"MNSWithoutThePathToken", a.mnsReq(t, "/v1/events/mns", mnsBody, "/cert.pem"), 403, "path token"},
		{"MNSWrongPathToken", a.mnsReq(t, "/v1/events/mns/guess", mnsBody, "/cert.pem"), 403, "path token"},
		{"MNSTokenOfAnotherLength", a.mnsReq(t, "/v1/events/mns/"+abuseMNSToken+"x", mnsBody, "/cert.pem"), 403, "path token"},
		{"MNSUnsigned", with(a.mnsReq(t, "/v1/events/mns/"+abuseMNSToken, mnsBody, "/cert.pem"), func(r *http.Request) { r.Header.Del("Authorization") }), 403, "missing MNS signature"},
		{"MNSCertificateFromAnotherHost", with(a.mnsReq(t, "/v1/events/mns/"+abuseMNSToken, mnsBody, "/cert.pem"), func(r *http.Request) {
			r.Header.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte("https://mns-cert.oss-anything-i-like.aliyuncs.com/x.pem")))
		}), 403, "not allowed"},
		{"MNSCertificateOverHTTP", with(a.mnsReq(t, "/v1/events/mns/"+abuseMNSToken, mnsBody, "/cert.pem"), func(r *http.Request) {
			r.Header.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(strings.Replace(a.certs.URL, "https", "http", 1)+"/cert.pem")))
		}), 403, "not allowed"},
		// Admin.
		{"AdminNoToken", get("/v1/dlq"), 401, "missing Authorization"},
		{"AdminWrongToken", get("/v1/dlq", "Authorization", "Bearer "+abuseAdmin[:len(abuseAdmin)-1]+"x"), 401, "not accepted"},
		{"AdminTokenOfAnotherLength", get("/v1/dlq", "Authorization", "Bearer "+abuseAdmin+"x"), 401, "not accepted"},
		// Routing. (Unknown paths under /v1 are the admin group's: 401
		// without the admin token, whatever the path.)
		{"UnknownPath", get("/nowhere/../../etc/passwd"), 404, ""},
		{"UnknownPathUnderV1", get("/v1/events/oss/../../../etc/passwd"), 401, "admin token"},
		{"WrongMethod", with(get("/healthz"), func(r *http.Request) { r.Method = http.MethodDelete }), 405, ""},
	}
	for _, c := range cases {
		status, body := a.send(t, c.req)
		if status != c.status || !strings.Contains(body, c.reason) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, status, body[:min(len(body), 300)], c.status, c.reason)
		}
	}
	if n := a.certs.total.Load() - fetchesBefore; n != 0 {
		t.Errorf("%d certificate downloads for requests that never needed one", n)
	}
	// Below net/http: smuggling and malformed framing.
	for _, c := range []struct{ name, raw, want string }{
		// Both framings: net/http reads it as chunked (RFC 9112 6.3), an
		// empty body, unsigned.
		{"ContentLengthAndChunked", "POST /v1/events/oss HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "401"},
		{"ChunkedTwice", "POST /v1/events/oss HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", "501"},
		{"TwoContentLengths", "POST /v1/events/oss HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", "400"},
		{"BadChunkSize", "POST /v1/events/oss HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n" +
			signature.Header + ": t=1,v1=00\r\n\r\nzz\r\n", "400"},
		{"HugeHeader", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", "431"},
		{"NoHost", "GET /healthz HTTP/1.1\r\n\r\n", "400"},
	} {
		if line := a.rawExchange(t, c.raw); !strings.Contains(line, " "+c.want+" ") {
			t.Errorf("%s: %q, want %s", c.name, line, c.want)
		}
	}
}

func (a *abuseBed) inventedMethods(t *testing.T) {
	series := func(text string) int { return strings.Count(text, "\noss2s3_http_requests_total{") }
	warm, _ := http.NewRequest("INVENTED", a.base+"/v1/events/oss", nil)
	a.send(t, warm)
	before := a.metrics(t)
	for i := range 1000 {
		method := fmt.Sprintf("M%04d%s", i, strings.Repeat("X", 2000))
		req, err := http.NewRequest(method, fmt.Sprintf("%s/v1/events/oss/%d", a.base, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		a.send(t, req)
	}
	after := a.metrics(t)
	if series(after) != series(before) {
		t.Fatalf("%d HTTP request series after 1000 invented methods, %d before", series(after), series(before))
	}
	t.Logf("/metrics: %d bytes before 1000 invented methods, %d after", len(before), len(after))
	if len(after) > len(before)+4<<10 || len(after) > 256<<10 {
		t.Fatalf("/metrics grew from %d to %d bytes", len(before), len(after))
	}
	if strings.Contains(after, "M0001") {
		t.Fatal("/metrics names a method a client invented")
	}
}

func (a *abuseBed) forgedAddresses(t *testing.T) {
	body := documentOf(recordJSON(e2eSrc, abuseRouted+"forged", "A1"))
	req := a.ossReq(t, body)
	req.Header.Del(signature.Header)
	req.Header.Set("X-Forwarded-For", "203.0.113.66")
	req.Header.Set("X-Real-IP", "203.0.113.67")
	if status, _ := a.send(t, req); status != 401 {
		t.Fatalf("unsigned: %d", status)
	}
	if !testkit.Eventually(10*time.Second, 20*time.Millisecond, func() bool {
		return strings.Contains(a.proc.logs.String(), `"remote":"127.0.0.1"`)
	}) {
		t.Fatalf("no rejection logged with the peer's address:\n%s", a.proc.logs.String())
	}
	if logs := a.proc.logs.String(); strings.Contains(logs, "203.0.113.6") {
		t.Fatal("the logs name an address a client wrote in a header")
	}
}

// bigBodies is finding 2 of issue 14: a 1 MB signed body of tiny records
// raised the RSS by ~120 MB, and four at once took the process from 117
// MB to 565 MB. The bound is the body a few times over.
