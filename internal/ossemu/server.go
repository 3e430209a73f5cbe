// Package ossemu owns an in-memory Aliyun OSS emulator that speaks the OSS wire protocol to the real aliyun-oss-go-sdk client, and the S3 API (SigV4) that OSS also answers to S3 clients such as aws-sdk-go-v2 and rclone.
package ossemu

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oss2s3/oss2s3/internal/faultset"
	"github.com/oss2s3/oss2s3/internal/httpbed"
)

// Options configures a Server.
type Options struct {
	// Credentials maps AccessKeyID to AccessKeySecret. When it is non-empty
	// every request must be signed by one of them (header signatures V1, V2
	// and V4, and presigned URLs V1, V2 and V4), otherwise the request fails
	// with 403 (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch,
	// RequestTimeTooSkewed). When it is nil or empty signatures are NOT
	// checked and anonymous requests are served.
	//
	// STS: an x-oss-security-token header (or security-token query
	// parameter) is accepted without further check; it is covered by the
	// signature like every x-oss-* header.
	//
	// The same keys sign S3 API requests (AWS Signature Version 4 in the
	// Authorization header or a presigned URL; SigV2 is refused). Their
	// token (x-amz-security-token) is not checked either.
	Credentials map[string]string

	// Region, e.g. "cn-hangzhou", is the region OSS V4 signatures must be
	// scoped to and the region written into event records. Empty accepts
	// any OSS V4 region and records "cn-hangzhou". S3 SigV4 signatures may
	// name any region: S3 clients default to us-east-1 and the like.
	Region string

	// Logger receives one debug record per request and webhook failures.
	// Nil discards.
	Logger *slog.Logger

	// MinPartSize is the smallest size CompleteMultipartUpload accepts for
	// every part but the last. Zero means OSS's 100 KiB; negative disables
	// the check.
	MinPartSize int64

	// RestoreDelay is how long RestoreObject takes before an archived object
	// can be read. Zero completes the restore at once (the first HEAD after
	// RestoreObject already reports ongoing-request="false").
	RestoreDelay time.Duration

	// WebhookRetries is how many times a failed webhook delivery is tried
	// again, the delay doubling from 50ms up to 2s, as a trigger's retries
	// outlast an outage of the receiver (e.g. a JetStream leader election).
	// Zero means 3.
	WebhookRetries int

	// Now replaces time.Now (object times, signature time checks, restores).
	// Nil uses time.Now.
	Now func() time.Time
}

// Server is an in-memory OSS endpoint. It implements http.Handler; Start
// serves it on a listener of its own.
type Server struct {
	opts   Options
	log    *slog.Logger
	region string

	mu      sync.Mutex
	buckets map[string]*bucket

	reqSeq     atomic.Uint64
	countMu    sync.Mutex
	requests   map[string]int
	s3Requests map[string]int

	// synthCRC caches the CRC64 of synthetic content by (size, seed).
	synthMu  sync.Mutex
	synthCRC map[[2]uint64]uint64

	faults faultset.Set[Fault]
	hooks  *webhooks
	keys   keyring

	http httpbed.Server
}

var _ http.Handler = (*Server)(nil)

// New returns a server with no buckets. It starts the webhook delivery
// goroutine; Close stops it.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	region := opts.Region
	if region == "" {
		region = "cn-hangzhou"
	}
	opts.Credentials = maps.Clone(opts.Credentials)
	s := &Server{
		opts:       opts,
		log:        log,
		region:     region,
		buckets:    make(map[string]*bucket),
		requests:   make(map[string]int),
		s3Requests: make(map[string]int),
		synthCRC:   make(map[[2]uint64]uint64),
		keys:       keyring{m: opts.Credentials, check: len(opts.Credentials) > 0},
	}
	s.hooks = newWebhooks(log, opts.WebhookRetries)
	return s
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in a goroutine. It
// returns the endpoint to give the OSS client, e.g. "http://127.0.0.1:34567".
func (s *Server) Start(addr string) (string, error) {
	return s.http.Start("ossemu", addr, s, s.log)
}

// Close stops the listener (if Start was called), closes open connections
// and stops webhook delivery: deliveries still queued are abandoned and
// reported by WebhookErrors. Call WaitWebhooks first to have them delivered.
// Close is idempotent.
func (s *Server) Close() error { return s.http.Close(nil, s.hooks.close) }

// CreateBucket creates the bucket if it does not exist yet.
func (s *Server) CreateBucket(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.createBucketLocked(name)
}

func (s *Server) createBucketLocked(name string) *bucket {
	if b, ok := s.buckets[name]; ok {
		return b
	}
	b := newBucket(name, s.now())
	s.buckets[name] = b
	return b
}

// SetRequesterPays makes bucket a requester-pays bucket of another
// account, as the credentials the emulator knows see it: an OSS request
// without x-oss-request-payer: requester (header or query parameter,
// signed like any x-oss- header) is refused 403 AccessDenied.
func (s *Server) SetRequesterPays(bucket string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.createBucketLocked(bucket).requesterPays = on
}

// refusesPayer reports whether req is to a requester-pays bucket and does
// not say the requester pays.
func (s *Server) refusesPayer(req *request) bool {
	if req.api != apiOSS || req.bucket == "" {
		return false
	}
	s.mu.Lock()
	b := s.buckets[req.bucket]
	s.mu.Unlock()
	if b == nil || !b.requesterPays {
		return false
	}
	payer := req.r.Header.Get("x-oss-request-payer")
	if payer == "" {
		payer = req.r.URL.Query().Get("x-oss-request-payer")
	}
	return !strings.EqualFold(payer, "requester")
}

// Requests returns how many requests each operation received (e.g.
// "GetObject": 3), whatever their outcome and whichever API (OSS or S3)
// they came through; S3Requests tells the S3 ones apart. Operation names
// are OSS's: ListBuckets, PutBucket, DeleteBucket, HeadBucket,
// GetBucketInfo, GetBucketLocation, ListObjects, ListObjectsV2,
// ListMultipartUploads, DeleteMultipleObjects, PutObject, CopyObject,
// AppendObject, GetObject, HeadObject, GetObjectMeta (HEAD ?objectMeta,
// used by IsObjectExist), DeleteObject, RestoreObject, PutSymlink,
// GetSymlink, PutObjectTagging, GetObjectTagging, DeleteObjectTagging,
// InitiateMultipartUpload, UploadPart, CompleteMultipartUpload,
// AbortMultipartUpload, ListParts. Requests the emulator does not
// implement are counted under their name if known (UploadPartCopy) or
// "Unknown", and answered 501 NotImplemented.
func (s *Server) Requests() map[string]int {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	return maps.Clone(s.requests)
}

// S3Requests returns the part of Requests that came through the S3 API
// (SigV4-signed requests), under the same operation names.
func (s *Server) S3Requests() map[string]int {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	return maps.Clone(s.s3Requests)
}

// ResetRequests sets every request count back to zero.
func (s *Server) ResetRequests() {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	clear(s.requests)
	clear(s.s3Requests)
}

func (s *Server) count(api, op string) {
	s.countMu.Lock()
	s.requests[op]++
	if api == apiS3 {
		s.s3Requests[op]++
	}
	s.countMu.Unlock()
}

// The APIs a request may come through.
const (
	apiOSS = "OSS"
	apiS3  = "S3"
)

// request is one parsed request: what is addressed and by which operation.
type request struct {
	r      *http.Request
	id     string
	api    string // apiOSS or apiS3
	op     string
	bucket string
	key    string
	query  url.Values
	// keyErr is set when the path could not be decoded.
	keyErr error
	// cutBodyAfter comes from an injected fault; GetObject honours it.
	cutBodyAfter int64
	// outOfOrder swaps the first two entries of a listing (a fault).
	outOfOrder bool
	// sig is the verified SigV4 signature of an S3 request, nil when
	// signatures are not checked; streaming uploads chain chunk signatures
	// from it.
	sig *sigV4
}

// ServeHTTP serves one OSS request, or one S3 request: a request signed
// with AWS Signature Version 4 (or carrying other S3-only markers, see
// isS3Request) is answered in S3's dialect.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	req := &request{r: r, id: s.newRequestID(), api: apiOSS}
	h := w.Header()
	h.Set("x-oss-request-id", req.id)
	h.Set("Server", "AliyunOSS")

	req.bucket, req.key, req.keyErr = s.parseTarget(r)
	req.query = parseQuery(r.URL.RawQuery)
	if isS3Request(r, req.query) {
		req.api = apiS3
		h.Set("x-amz-request-id", req.id)
		h.Set("x-amz-id-2", base64.StdEncoding.EncodeToString([]byte(req.id)))
		req.op = routeS3(r.Method, req.bucket, req.key, req.query, r.Header)
	} else {
		req.op = route(r.Method, req.bucket, req.key, req.query, r.Header)
	}
	s.count(req.api, req.op)
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		defer func() {
			s.log.Debug("oss request", "api", req.api, "op", req.op, "method", r.Method, "bucket", req.bucket, "key", req.key,
				"status", w.status, "bytes", w.written, "duration", time.Since(start), "request_id", req.id)
		}()
	}

	if req.keyErr != nil {
		s.writeError(w, req, errInvalidURI(req.keyErr))
		return
	}
	var authErr *ossError
	if req.api == apiS3 {
		authErr = s.authenticateS3(req)
	} else {
		authErr = s.authenticate(req)
	}
	if authErr != nil {
		s.writeError(w, req, authErr)
		return
	}
	if s.refusesPayer(req) {
		s.writeError(w, req, errAccessDenied("Access denied for requester pay bucket."))
		return
	}
	f, err := takeFaults(r.Context(), &s.faults, faultTarget{api: req.api, op: req.op, bucket: req.bucket, key: req.key, rangeHeader: r.Header.Get("Range")})
	if err != nil {
		// The client went away during an injected latency.
		return
	}
	if f.Status != 0 {
		s.writeError(w, req, &ossError{status: f.Status, code: f.Code, message: "Injected fault."})
		return
	}
	req.cutBodyAfter = f.cutBodyAfter
	req.outOfOrder = f.outOfOrder
	var e *ossError
	if req.api == apiS3 {
		e = s.dispatchS3(w, req)
	} else {
		e = s.dispatch(w, req)
	}
	if e != nil {
		s.writeError(w, req, e)
	}
}

// opHandler answers one operation.
type opHandler func(s *Server, w http.ResponseWriter, q *request) *ossError

// ossHandlers answer the OSS API's operations, by route's names.
var ossHandlers = map[string]opHandler{
	"ListBuckets":             (*Server).listBuckets,
	"PutBucket":               (*Server).putBucket,
	"DeleteBucket":            (*Server).deleteBucket,
	"GetBucketInfo":           (*Server).getBucketInfo,
	"GetBucketLocation":       (*Server).getBucketLocation,
	"GetBucketStat":           (*Server).getBucketStat,
	"ListObjects":             (*Server).listObjects,
	"ListObjectsV2":           (*Server).listObjectsV2,
	"ListMultipartUploads":    (*Server).listMultipartUploads,
	"DeleteMultipleObjects":   (*Server).deleteMultipleObjects,
	"PutObject":               (*Server).putObject,
	"CopyObject":              (*Server).copyObject,
	"AppendObject":            (*Server).appendObject,
	"GetObject":               func(s *Server, w http.ResponseWriter, q *request) *ossError { return s.getObject(w, q, false) },
	"HeadObject":              func(s *Server, w http.ResponseWriter, q *request) *ossError { return s.getObject(w, q, true) },
	"GetObjectMeta":           (*Server).getObjectMeta,
	"DeleteObject":            (*Server).deleteObject,
	"RestoreObject":           (*Server).restoreObject,
	"PutObjectTagging":        (*Server).putObjectTagging,
	"GetObjectTagging":        (*Server).getObjectTagging,
	"DeleteObjectTagging":     (*Server).deleteObjectTagging,
	"InitiateMultipartUpload": (*Server).initiateMultipartUpload,
	"UploadPart":              (*Server).uploadPart,
	"CompleteMultipartUpload": (*Server).completeMultipartUpload,
	"AbortMultipartUpload":    (*Server).abortMultipartUpload,
	"ListParts":               (*Server).listParts,
	"HeadBucket":              (*Server).headBucket,
	"PutSymlink":              (*Server).putSymlink,
	"GetSymlink":              (*Server).getSymlink,
}

func (s *Server) dispatch(w http.ResponseWriter, q *request) *ossError {
	if h := ossHandlers[q.op]; h != nil {
		return h(s, w, q)
	}
	return errNotImplemented(q.r.Method, q.query)
}

// route names the operation an OSS request asks for (see routes).
// Sub-resources the emulator does not implement (acl, cors, ...) route to
// "Unknown" so that, e.g., PUT ?acl never overwrites the object with an ACL
// document. OSS lets through parameters that are not sub-resources and the
// harmless ones, and "response-*" stands for any response-* override.
func route(method, bucket, key string, q url.Values, h http.Header) string {
	allowed := func(names []string) bool {
		for name := range q {
			if !isSubResource(name) || harmlessParams[name] {
				continue
			}
			ok := false
			for _, n := range names {
				if name == n || (n == "response-*" && strings.HasPrefix(name, "response-")) {
					ok = true
					break
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}
	return routes.match(true, method, bucket, key, q, h.Get("x-oss-copy-source") != "", allowed)
}

// harmlessParams are signed query parameters that any operation accepts.
var harmlessParams = map[string]bool{"security-token": true, "x-oss-traffic-limit": true, "x-oss-request-payer": true}

// parseTarget finds bucket and key. Path style is /bucket/key; the key is
// path-unescaped from the raw path because the SDK sends '/' inside keys as
// %2F. A host whose first label names an existing bucket (bucket.host:port)
// is taken as virtual-hosted style, where the whole path is the key.
func (s *Server) parseTarget(r *http.Request) (bucket, key string, err error) {
	raw := r.URL.EscapedPath()
	if r.RequestURI != "" && !strings.HasPrefix(r.RequestURI, "*") {
		// RequestURI is exactly what the client sent; EscapedPath may have
		// been re-encoded by net/url.
		if p, _, _ := strings.Cut(r.RequestURI, "?"); strings.HasPrefix(p, "/") {
			raw = p
		}
	}
	raw = strings.TrimPrefix(raw, "/")
	if vb := s.virtualHostBucket(r.Host); vb != "" {
		key, err = url.PathUnescape(raw)
		return vb, key, err
	}
	b, k, _ := strings.Cut(raw, "/")
	if bucket, err = url.PathUnescape(b); err != nil {
		return "", "", err
	}
	key, err = url.PathUnescape(k)
	return bucket, key, err
}

func (s *Server) virtualHostBucket(host string) string {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return ""
	}
	first, _, ok := strings.Cut(h, ".")
	if !ok {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.buckets[first]; exists {
		return first
	}
	return ""
}

// parseQuery decodes a query string the way OSS does: %XX escapes, and '+'
// as a space. Unlike url.ParseQuery it keeps going past malformed pairs.
func parseQuery(raw string) url.Values {
	v := url.Values{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, val, _ := strings.Cut(pair, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			dk = k
		}
		dv, err := url.QueryUnescape(val)
		if err != nil {
			dv = val
		}
		v[dk] = append(v[dk], dv)
	}
	return v
}

func (s *Server) newRequestID() string {
	return fmt.Sprintf("%08X%016X", uint32(time.Now().Unix()), s.reqSeq.Add(1))
}

// ossError is an OSS error response.
type ossError struct {
	status  int
	code    string
	message string
	extra   errorExtra
	header  map[string]string
}

func (e *ossError) Error() string { return e.code + ": " + e.message }

type errorExtra struct {
	BucketName        string `xml:"BucketName,omitempty"`
	Key               string `xml:"Key,omitempty"`
	UploadID          string `xml:"UploadId,omitempty"`
	PartNumber        string `xml:"PartNumber,omitempty"`
	ETag              string `xml:"ETag,omitempty"`
	OSSAccessKeyID    string `xml:"OSSAccessKeyId,omitempty"`
	SignatureProvided string `xml:"SignatureProvided,omitempty"`
	StringToSign      string `xml:"StringToSign,omitempty"`
	CanonicalRequest  string `xml:"CanonicalRequest,omitempty"`
	RequestTime       string `xml:"RequestTime,omitempty"`
	ServerTime        string `xml:"ServerTime,omitempty"`
	Header            string `xml:"Header,omitempty"`
	Method            string `xml:"Method,omitempty"`
	ResourceType      string `xml:"ResourceType,omitempty"`
}

type errorXML struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
	HostID    string   `xml:"HostId"`
	errorExtra
	EC string `xml:"EC"`
}

// emulatorEC is the error-center code on every error: the emulator does not
// mimic OSS's per-error EC values.
const emulatorEC = "0000-00000000"

func (s *Server) writeError(w http.ResponseWriter, q *request, e *ossError) {
	if q.api == apiS3 {
		s.writeS3Error(w, q, e)
		return
	}
	hostID := q.r.Host
	doc := errorXML{Code: e.code, Message: e.message, RequestID: q.id, HostID: hostID, errorExtra: e.extra, EC: emulatorEC}
	body, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		body = []byte("<Error><Code>InternalError</Code></Error>")
	}
	body = append([]byte(xml.Header), body...)
	h := w.Header()
	for k, v := range e.header {
		h.Set(k, v)
	}
	h.Set("x-oss-ec", emulatorEC)
	if q.r.Method == http.MethodHead {
		// A HEAD response has no body: newer OSS puts the document in x-oss-err.
		h.Set("x-oss-err", base64.StdEncoding.EncodeToString(body))
		w.WriteHeader(e.status)
		return
	}
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// writeXML answers 200 with an XML document.
func writeXML(w http.ResponseWriter, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body = append([]byte(xml.Header), body...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// statusWriter records the status and size of a response for the log.
type statusWriter struct {
	http.ResponseWriter
	status  int
	written int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Common errors.

func errNoSuchBucket(name string) *ossError {
	return &ossError{status: 404, code: "NoSuchBucket", message: "The specified bucket does not exist.", extra: errorExtra{BucketName: name}}
}

func errNoSuchKey(key string) *ossError {
	return &ossError{status: 404, code: "NoSuchKey", message: "The specified key does not exist.", extra: errorExtra{Key: key}}
}

func errNoSuchUpload(id string) *ossError {
	return &ossError{status: 404, code: "NoSuchUpload", message: "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.", extra: errorExtra{UploadID: id}}
}

func errInvalidArgument(msg string) *ossError {
	return &ossError{status: 400, code: "InvalidArgument", message: msg}
}

func errMalformedXML(err error) *ossError {
	return &ossError{status: 400, code: "MalformedXML", message: "The XML you provided was not well-formed or did not validate against our published schema: " + err.Error()}
}

func errInvalidURI(err error) *ossError {
	return &ossError{status: 400, code: "InvalidURI", message: "Could not parse the specified URI: " + err.Error()}
}

func errNotImplemented(method string, q url.Values) *ossError {
	var subs []string
	for k := range q {
		if isSubResource(k) {
			subs = append(subs, k)
		}
	}
	return &ossError{status: 501, code: "NotImplemented", message: fmt.Sprintf("The emulator does not implement %s with sub-resources %v.", method, subs), extra: errorExtra{Method: method}}
}
