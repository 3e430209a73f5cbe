package handlers_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/handlers/ingestsink"
	"github.com/oss2s3/oss2s3/internal/signcert"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest"
	"github.com/oss2s3/oss2s3/transfer/ingest/cloudevents"
	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

const (
	ebKey      = "eventbridge-api-key-0123456789"
	mnsToken   = "mns-path-token-0123456789"
	ebHeader   = "X-Api-Key"
	ebUser     = "eventbridge"
	ebPassword = "eventbridge-password-0123456789"
)

// gateway is the whole handler, every endpoint on, on a real JetStream, with
// a local "MNS certificate host" serving a test certificate.
type gateway struct {
	*bundle
	certURL string // of the test certificate, on an allowed host
	key     *rsa.PrivateKey
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	key, certPEM := signcert.New(t, "mns test")
	certHost := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(certPEM) }))
	t.Cleanup(certHost.Close)
	allowed, err := mns.HostPattern(`127\.0\.0\.1:[0-9]+`)
	if err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := transfer.OpenQueue(context.Background(), transfer.QueueConfig{DataDir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	tasks := []*transfer.Task{{Name: "photos", Source: transfer.SourceConfig{Bucket: "src", Prefixes: []string{"photos/"}}}}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, []string{"photos"})
	events := ingestsink.New(ingest.NewReceiver(ingest.NewIntake(q, transfer.NewRouter(tasks), m, log), ingest.Config{
		WebhookSecrets: []string{secret},
		WebhookSources: []ingest.WebhookSource{{Name: "fc-src2", Secrets: []string{sourceSecret}, Buckets: []string{"src2"}}},
		EventBridge:    cloudevents.Auth{Header: ebHeader, APIKeys: []string{ebKey}, BasicUsers: map[string][]string{ebUser: {ebPassword}}},
		MNS:            &mns.Verifier{AllowedHost: allowed, Client: certHost.Client()},
	}))
	h := handlers.New(log, m, reg, events, q, nil, handlers.Config{MaxBodyBytes: 1 << 20, MNSPathTokens: []string{mnsToken}})
	return &gateway{bundle: &bundle{q: q, handler: h}, certURL: certHost.URL + "/cert.pem", key: key}
}

func (g *gateway) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req)
	return rec
}

// ossReq is a signed POST /v1/events/oss.
func ossReq(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/events/oss", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Oss2s3-Signature", signSecret(secret, body))
	return r
}

func signSecret(s string, body []byte) string {
	return signAt(s, time.Now(), body)
}

func signAt(s string, t time.Time, body []byte) string {
	return signature.Sign(s, t, body)
}

// cloudEvent is an EventBridge CloudEvent carrying one OSS record.
func cloudEvent(key string) map[string]any {
	rec := record("ObjectCreated:PutObject", "src", key, "AA")
	return map[string]any{"specversion": "1.0", "id": "id-" + key, "source": "acs.oss", "type": "oss:ObjectCreated:PutObject",
		"subject": "acs:oss:cn-hangzhou:1234:src/" + key, "time": "2026-11-25T10:00:00Z", "datacontenttype": "application/json",
		"aliyunaccountid": "1234", "aliyunregionid": "cn-hangzhou", "data": rec}
}

func jsonOf(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func ebReq(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/events/eventbridge", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/cloudevents+json")
	r.Header.Set(ebHeader, ebKey)
	return r
}

// mnsReq is an MNS push of body (SIMPLIFIED format), signed with key by the
// certificate at certURL.
func (g *gateway) mnsReq(path string, body []byte, certURL string, key *rsa.PrivateKey) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	sum := md5.Sum(body)
	r.Header.Set("Content-Type", "text/plain")
	r.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:]))))
	r.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	r.Header.Set("x-mns-request-id", "5F0D8E8D3F4E9C0001")
	r.Header.Set("x-mns-version", "2015-06-06")
	r.Header.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(certURL)))
	digest := sha1.Sum([]byte(mns.StringToSign(r.Method, path, r.Header)))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, digest[:])
	r.Header.Set("Authorization", base64.StdEncoding.EncodeToString(sig))
	return r
}

func TestEveryEndpointAcceptsItsWellFormedRequest(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	if rec := g.do(ossReq(doc(record("ObjectCreated:PutObject", "src", "photos/a", "A1")))); rec.Code != 202 {
		t.Fatalf("oss: %d %s", rec.Code, rec.Body)
	}
	if rec := g.do(ebReq(jsonOf(cloudEvent("photos/b")))); rec.Code != 202 {
		t.Fatalf("eventbridge: %d %s", rec.Code, rec.Body)
	}
	basic := ebReq(jsonOf([]any{cloudEvent("photos/c"), cloudEvent("photos/d")}))
	basic.Header.Del(ebHeader)
	basic.SetBasicAuth(ebUser, ebPassword)
	basic.Header.Set("Content-Type", "application/cloudevents-batch+json")
	if rec := g.do(basic); rec.Code != 202 || !strings.Contains(rec.Body.String(), `"queued":2`) {
		t.Fatalf("eventbridge batch, basic auth: %d %s", rec.Code, rec.Body)
	}
	mnsBody := []byte(base64.StdEncoding.EncodeToString(doc(record("ObjectCreated:PutObject", "src", "photos/e", "E1"))))
	if rec := g.do(g.mnsReq("/v1/events/mns/"+mnsToken, mnsBody, g.certURL, g.key)); rec.Code != 204 {
		t.Fatalf("mns: %d %s", rec.Code, rec.Body)
	}
	if n := g.depth(t); n != 5 {
		t.Fatalf("stream holds %d jobs, want 5", n)
	}
	// The same object version reported by the function and by EventBridge
	// (and by MNS) is one job.
	g.do(ebReq(jsonOf(map[string]any{"specversion": "1.0", "id": "other-id", "source": "acs.oss", "type": "oss:ObjectCreated:PutObject",
		"data": record("ObjectCreated:PutObject", "src", "photos/a", "A1")})))
	if n := g.depth(t); n != 5 {
		t.Fatalf("stream holds %d jobs after the same event by another path, want 5", n)
	}
}

func TestReplayedRequestQueuesNothingNew(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	body := doc(record("ObjectCreated:PutObject", "src", "photos/a", "A1"))
	req := ossReq(body)
	sig := req.Header.Get("X-Oss2s3-Signature")
	if rec := g.do(req); rec.Code != 202 {
		t.Fatalf("first: %d %s", rec.Code, rec.Body)
	}
	replay := httptest.NewRequest(http.MethodPost, "/v1/events/oss", bytes.NewReader(body))
	replay.Header.Set("Content-Type", "application/json")
	replay.Header.Set("X-Oss2s3-Signature", sig)
	rec := g.do(replay)
	if rec.Code != 202 || !strings.Contains(rec.Body.String(), `"queued":0,"duplicate":1`) {
		t.Fatalf("replay: %d %s", rec.Code, rec.Body)
	}
	if n := g.depth(t); n != 1 {
		t.Fatalf("stream holds %d jobs after a replay, want 1", n)
	}
}

// TestBadInputAcrossEndpoints: every bad request gets its own status and
// reason, and the stream is unchanged afterwards.
func TestBadInputAcrossEndpoints(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	longKey := strings.Repeat("k", 1024)
	goodDoc := doc(record("ObjectCreated:PutObject", "src", "photos/a", "A1"))
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	mnsDoc := []byte(base64.StdEncoding.EncodeToString(goodDoc))
	with := func(r *http.Request, f func(*http.Request)) *http.Request { f(r); return r }

	cases := []struct {
		name   string
		req    *http.Request
		status int
		reason string
	}{
		// POST /v1/events/oss
		{"OSSEmptyBody", ossReq(nil), 400, "empty body"},
		{"OSSNotJSON", ossReq([]byte("hello")), 400, "not an OSS event document"},
		{"OSSWrongTypes", ossReq([]byte(`{"events":[{"eventName":7}]}`)), 400, "cannot unmarshal number"},
		{"OSSEventsNotAnArray", ossReq([]byte(`{"events":{"a":1}}`)), 400, "not an OSS event document"},
		{"OSSEmptyEvents", ossReq([]byte(`{"events":[]}`)), 400, `"events" is empty`},
		{"OSSMissingEvents", ossReq([]byte(`{"records":[]}`)), 400, `missing "events"`},
		{"OSSKeyOver1023Bytes", ossReq(doc(record("ObjectCreated:PutObject", "src", "photos/"+longKey, "A"))), 400, "more than OSS allows (1023)"},
		{"OSSInvalidUTF8", ossReq([]byte("{\"events\":[{\"eventName\":\"x\",\"oss\":{\"bucket\":{\"name\":\"src\"},\"object\":{\"key\":\"a\xff\"}}}]}")), 400, "not valid UTF-8"},
		{"OSSLoneSurrogate", ossReq([]byte(`{"events":[{"eventName":"x","oss":{"bucket":{"name":"src"},"object":{"key":"a\ud800"}}}]}`)), 400, "lone UTF-16 surrogate"},
		{"OSSMissingBucket", ossReq([]byte(`{"events":[{"eventName":"x","oss":{"object":{"key":"a"}}}]}`)), 400, "oss.bucket.name is missing"},
		{"OSSOneBadRecordOfTwo", ossReq(doc(record("ObjectCreated:PutObject", "src", "photos/a", "A"), record("ObjectCreated:PutObject", "src", "", "B"))), 400, "events[1]: oss.object.key is missing"},
		{"OSSUnsigned", with(ossReq(goodDoc), func(r *http.Request) { r.Header.Del("X-Oss2s3-Signature") }), 401, "missing X-Oss2s3-Signature"},
		{"OSSWrongSecret", with(ossReq(goodDoc), func(r *http.Request) { r.Header.Set("X-Oss2s3-Signature", signSecret("not-the-secret-0123", goodDoc)) }), 401, "does not match"},
		{"OSSStaleTimestamp", with(ossReq(goodDoc), func(r *http.Request) {
			r.Header.Set("X-Oss2s3-Signature", signAt(secret, time.Now().Add(-6*time.Minute), goodDoc))
		}), 401, "behind the gateway's clock (clock skew?); tolerance 5m0s"},
		{"OSSFutureTimestamp", with(ossReq(goodDoc), func(r *http.Request) {
			r.Header.Set("X-Oss2s3-Signature", signAt(secret, time.Now().Add(6*time.Minute), goodDoc))
		}), 401, "ahead of the gateway's clock (clock skew?); tolerance 5m0s"},
		{"OSSMalformedSignature", with(ossReq(goodDoc), func(r *http.Request) { r.Header.Set("X-Oss2s3-Signature", "v1=abc") }), 401, "malformed"},
		{"OSSWrongContentType", with(ossReq(goodDoc), func(r *http.Request) { r.Header.Set("Content-Type", "application/xml") }), 415, "want application/json"},
		{"OSS10MiBBody", ossReq(bytes.Repeat([]byte(" "), 10<<20)), 413, "larger than 1048576 bytes"},
		{"OSSSourceReportsAnotherBucket", with(ossReq(goodDoc), func(r *http.Request) { r.Header.Set("X-Oss2s3-Signature", signSecret(sourceSecret, goodDoc)) }), 403, `may not report bucket "src"`},

		// POST /v1/events/eventbridge
		{"EventBridgeNoCredentials", with(ebReq(jsonOf(cloudEvent("photos/a"))), func(r *http.Request) { r.Header.Del(ebHeader) }), 401, "missing credentials"},
		{"EventBridgeWrongAPIKey", with(ebReq(jsonOf(cloudEvent("photos/a"))), func(r *http.Request) { r.Header.Set(ebHeader, "wrong") }), 401, "do not match"},
		{"EventBridgeWrongPassword", with(ebReq(jsonOf(cloudEvent("photos/a"))), func(r *http.Request) {
			r.Header.Del(ebHeader)
			r.SetBasicAuth(ebUser, "wrong")
		}), 401, "do not match"},
		{"EventBridgeNotJSON", ebReq([]byte("<xml/>")), 400, "JSON"},
		{"EventBridgeWrongSpecVersion", ebReq(jsonOf(merge(cloudEvent("photos/a"), map[string]any{"specversion": "0.3"}))), 400, "specversion"},
		{"EventBridgeNotFromOSS", ebReq(jsonOf(merge(cloudEvent("photos/a"), map[string]any{"source": "acs.ecs"}))), 400, "acs.oss"},
		{"EventBridgeKeyOver1023Bytes", ebReq(jsonOf(cloudEvent("photos/" + longKey))), 400, "more than OSS allows"},
		{"EventBridgeBadEventInBatch", ebReq(jsonOf([]any{cloudEvent("photos/a"), merge(cloudEvent("photos/b"), map[string]any{"id": ""})})), 400, "[1]"},
		{"EventBridgeWrongContentType", with(ebReq(jsonOf(cloudEvent("photos/a"))), func(r *http.Request) { r.Header.Set("Content-Type", "text/csv") }), 415, "content type"},

		// POST /v1/events/mns
		{"MNSUnsigned", with(g.mnsReq("/v1/events/mns/"+mnsToken, mnsDoc, g.certURL, g.key), func(r *http.Request) { r.Header.Del("Authorization") }), 403, "missing MNS signature"},
		{"MNSSignedByAnotherKey", g.mnsReq("/v1/events/mns/"+mnsToken, mnsDoc, g.certURL, otherKey), 403, "does not verify"},
		{"MNSCertificateFromAHostNotAllowed", g.mnsReq("/v1/events/mns/"+mnsToken, mnsDoc, "https://evil.example.com/cert.pem", g.key), 403, "not allowed"},
		{"MNSWrongPathToken", g.mnsReq("/v1/events/mns/guess", mnsDoc, g.certURL, g.key), 403, "unknown MNS endpoint path token"},
		{"MNSBodyChangedAfterSigning", with(g.mnsReq("/v1/events/mns/"+mnsToken, mnsDoc, g.certURL, g.key), func(r *http.Request) {
			r.Body = io.NopCloser(bytes.NewReader(append([]byte("x"), mnsDoc...)))
		}), 403, "Content-MD5"},
		{"MNSNotAnOSSDocument", g.mnsReq("/v1/events/mns/"+mnsToken, []byte("hello"), g.certURL, g.key), 400, ""},
		{"MNSOversize", g.mnsReq("/v1/events/mns/"+mnsToken, bytes.Repeat([]byte("A"), 2<<20), g.certURL, g.key), 413, "larger than"},
	}
	if len(cases) < 30 {
		t.Fatalf("%d cases; the issue asks for at least 30", len(cases))
	}
	for _, tc := range cases {
		rec := g.do(tc.req)
		var e struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != tc.status || !strings.Contains(e.Error, tc.reason) || e.Error == "" {
			t.Errorf("%s: %d %q, want %d with a reason containing %q", tc.name, rec.Code, e.Error, tc.status, tc.reason)
		}
	}
	if n := g.depth(t); n != 0 {
		t.Fatalf("stream holds %d jobs after only bad requests", n)
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
