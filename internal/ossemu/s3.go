package ossemu

// The S3 API, served on the same endpoint as OSS's (real OSS answers both):
// a request signed with AWS Signature Version 4 is routed here. It covers
// what S3 tools need to read a bucket (ListBuckets, ListObjects V1/V2,
// HeadBucket, GetBucketLocation, HeadObject, GetObject with ranges) and to
// write one (PutObject, DeleteObject, DeleteObjects, PutBucket,
// DeleteBucket, RestoreObject, and multipart uploads: Create, UploadPart,
// Complete, Abort, ListParts; the minimum part size is Options.MinPartSize,
// OSS's, not S3's 5 MiB). The multipart and multi-delete answers use OSS's
// XML documents, which S3 clients parse alike. Not implemented (501):
// CopyObject, UploadPartCopy, tagging, ACLs, versions. Objects, faults, webhooks and request counts are shared
// with the OSS API: an object written through one API is read through the
// other. Path-style (/bucket/key) and virtual-hosted style both work.

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

// isS3Request tells an S3 request from an OSS one: AWS authorization
// (SigV4, and SigV4a and SigV2, which authenticateS3 refuses), a presigned
// S3 URL, or (for anonymous requests, when signatures are not checked) an
// x-amz-date or x-amz-content-sha256 header, which OSS clients never send.
func isS3Request(r *http.Request, q url.Values) bool {
	auth := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(auth, "AWS4-"), strings.HasPrefix(auth, "AWS "):
		return true
	case auth != "":
		return false
	case q.Has("X-Amz-Algorithm"), q.Has("X-Amz-Credential"), q.Has("AWSAccessKeyId"):
		return true
	}
	return r.Header.Get("X-Amz-Content-Sha256") != "" || r.Header.Get("X-Amz-Date") != ""
}

// s3SubResources are S3's sub-resource query parameters: a request that
// carries one the route does not expect is not the plain operation.
var s3SubResources = setOf([]string{
	"accelerate", "acl", "analytics", "annotation", "attributes", "cors", "delete", "encryption",
	"intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
	"metadataConfiguration", "metrics", "notification", "object-lock", "ownershipControls",
	"partNumber", "policy", "policyStatus", "publicAccessBlock", "rename", "replication",
	"requestPayment", "restore", "retention", "select", "session", "tagging", "torrent",
	"uploadId", "uploads", "versionId", "versioning", "versions", "website",
})

// routeS3 names the operation of an S3 request with the names Requests
// uses for OSS (see routes). Any S3 sub-resource the rule does not name
// makes the request not the plain operation.
func routeS3(method, bucket, key string, q url.Values, h http.Header) string {
	only := func(names []string) bool {
		for name := range q {
			if s3SubResources[name] && !slices.Contains(names, name) {
				return false
			}
		}
		return true
	}
	return routes.match(false, method, bucket, key, q, h.Get("x-amz-copy-source") != "", only)
}

// s3Handlers answer the operations the S3 API implements: with its own
// documents where S3's differ from OSS's, with OSS's handlers for the rest.
// The operations missing (CopyObject, UploadPartCopy, tagging,
// ListMultipartUploads) answer 501.
var s3Handlers = withOSSHandlers(map[string]opHandler{
	"ListBuckets":       (*Server).listBucketsS3,
	"GetBucketLocation": (*Server).getBucketLocationS3,
	"HeadBucket": func(s *Server, w http.ResponseWriter, q *request) *ossError {
		w.Header().Set("x-amz-bucket-region", s.region)
		return s.headBucket(w, q)
	},
	"ListObjectsV2": func(s *Server, w http.ResponseWriter, q *request) *ossError { return s.listObjectsS3(w, q, true) },
	"ListObjects":   func(s *Server, w http.ResponseWriter, q *request) *ossError { return s.listObjectsS3(w, q, false) },
	"PutObject":     (*Server).putObjectS3,
	"InitiateMultipartUpload": func(s *Server, w http.ResponseWriter, q *request) *ossError {
		if e := translateS3WriteHeader(q); e != nil {
			return e
		}
		return s.initiateMultipartUpload(w, q)
	},
}, "PutBucket", "DeleteBucket", "GetObject", "HeadObject", "DeleteObject", "RestoreObject", "DeleteMultipleObjects",
	"UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload", "ListParts")

// withOSSHandlers adds OSS's handlers of ops to m.
func withOSSHandlers(m map[string]opHandler, ops ...string) map[string]opHandler {
	for _, op := range ops {
		m[op] = ossHandlers[op]
	}
	return m
}

func (s *Server) dispatchS3(w http.ResponseWriter, q *request) *ossError {
	if q.r.Method == http.MethodPut || q.r.Method == http.MethodPost {
		// Every body is checked against its signed hash or checksums.
		if e := s.prepareS3Body(q); e != nil {
			return e
		}
	}
	if h := s3Handlers[q.op]; h != nil {
		return h(s, w, q)
	}
	return &ossError{status: 501, code: "NotImplemented", message: fmt.Sprintf("The emulator's S3 API does not implement %s (%s).", q.op, q.r.Method)}
}

// S3 storage classes for OSS's. S3 has no Cold Archive tiers: both map to
// DEEP_ARCHIVE.
var s3Classes = map[string]string{
	"Standard": "STANDARD", "IA": "STANDARD_IA", "Archive": "GLACIER",
	"ColdArchive": "DEEP_ARCHIVE", "DeepColdArchive": "DEEP_ARCHIVE",
}

func s3StorageClass(ossClass string) string {
	if c, ok := s3Classes[ossClass]; ok {
		return c
	}
	return "STANDARD"
}

// ossStorageClass maps an x-amz-storage-class value (or an OSS name) to
// the OSS storage class stored.
func ossStorageClass(v string) (string, bool) {
	switch strings.ToUpper(v) {
	case "STANDARD", "REDUCED_REDUNDANCY", "INTELLIGENT_TIERING":
		return "Standard", true
	case "STANDARD_IA", "ONEZONE_IA":
		return "IA", true
	case "GLACIER", "GLACIER_IR":
		return "Archive", true
	case "DEEP_ARCHIVE":
		return "ColdArchive", true
	}
	c, ok := storageClasses[strings.ToLower(v)]
	return c, ok
}

type s3ErrorXML struct {
	XMLName           xml.Name `xml:"Error"`
	Code              string   `xml:"Code"`
	Message           string   `xml:"Message"`
	Key               string   `xml:"Key,omitempty"`
	BucketName        string   `xml:"BucketName,omitempty"`
	UploadID          string   `xml:"UploadId,omitempty"`
	AWSAccessKeyID    string   `xml:"AWSAccessKeyId,omitempty"`
	SignatureProvided string   `xml:"SignatureProvided,omitempty"`
	StringToSign      string   `xml:"StringToSign,omitempty"`
	CanonicalRequest  string   `xml:"CanonicalRequest,omitempty"`
	RequestTime       string   `xml:"RequestTime,omitempty"`
	ServerTime        string   `xml:"ServerTime,omitempty"`
	Header            string   `xml:"Header,omitempty"`
	Method            string   `xml:"Method,omitempty"`
	RequestID         string   `xml:"RequestId"`
	HostID            string   `xml:"HostId"`
}

// writeS3Error answers an error in S3's format; a HEAD response has no body.
func (s *Server) writeS3Error(w http.ResponseWriter, q *request, e *ossError) {
	x := e.extra
	doc := s3ErrorXML{Code: e.code, Message: e.message, Key: x.Key, BucketName: x.BucketName, UploadID: x.UploadID,
		AWSAccessKeyID: x.OSSAccessKeyID, SignatureProvided: x.SignatureProvided, StringToSign: x.StringToSign,
		CanonicalRequest: x.CanonicalRequest, RequestTime: x.RequestTime, ServerTime: x.ServerTime, Header: x.Header,
		Method: x.Method, RequestID: q.id, HostID: base64.StdEncoding.EncodeToString([]byte(q.id))}
	h := w.Header()
	for k, v := range e.header {
		h.Set(k, v)
	}
	if q.r.Method == http.MethodHead {
		w.WriteHeader(e.status)
		return
	}
	body, err := xml.Marshal(doc)
	if err != nil {
		body = []byte("<Error><Code>InternalError</Code></Error>")
	}
	body = append([]byte(xml.Header), body...)
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

func (s *Server) listBucketsS3(w http.ResponseWriter, q *request) *ossError {
	prefix := q.query.Get("prefix")
	maxBuckets := 10000
	if v := q.query.Get("max-buckets"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return errInvalidArgument("max-buckets must be an integer from 1 to 10000.")
		}
		maxBuckets = n
	}
	after := ""
	if tok := q.query.Get("continuation-token"); tok != "" {
		var e *ossError
		if after, e = decodeToken(tok); e != nil {
			return e
		}
	}
	type bucketXML struct {
		Name         string `xml:"Name"`
		CreationDate string `xml:"CreationDate"`
		BucketRegion string `xml:"BucketRegion"`
	}
	type result struct {
		XMLName           xml.Name    `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
		Owner             ownerXML    `xml:"Owner"`
		Buckets           []bucketXML `xml:"Buckets>Bucket"`
		ContinuationToken string      `xml:"ContinuationToken,omitempty"`
		Prefix            string      `xml:"Prefix,omitempty"`
	}
	out := result{Owner: emulatorOwner, Prefix: prefix}
	s.mu.Lock()
	names := s.bucketNames(prefix, after)
	for i, n := range names {
		if i == maxBuckets {
			out.ContinuationToken = encodeToken(names[i-1])
			break
		}
		out.Buckets = append(out.Buckets, bucketXML{Name: n, CreationDate: isoTime(s.buckets[n].created), BucketRegion: s.region})
	}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, out)
	return nil
}

func (s *Server) getBucketLocationS3(w http.ResponseWriter, q *request) *ossError {
	return s.writeLocation(w, q, s3Namespace)
}

type s3ContentsXML struct {
	Key          string    `xml:"Key"`
	LastModified string    `xml:"LastModified"`
	ETag         string    `xml:"ETag"`
	Size         int64     `xml:"Size"`
	StorageClass string    `xml:"StorageClass"`
	Owner        *ownerXML `xml:"Owner,omitempty"`
}

type s3ListResult struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name    string   `xml:"Name"`
	Prefix  string   `xml:"Prefix"`
	// V1
	Marker     *string `xml:"Marker"`
	NextMarker string  `xml:"NextMarker,omitempty"`
	// V2
	ContinuationToken     string `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string `xml:"NextContinuationToken,omitempty"`
	StartAfter            string `xml:"StartAfter,omitempty"`
	KeyCount              *int   `xml:"KeyCount"`

	MaxKeys        int               `xml:"MaxKeys"`
	Delimiter      string            `xml:"Delimiter,omitempty"`
	EncodingType   string            `xml:"EncodingType,omitempty"`
	IsTruncated    bool              `xml:"IsTruncated"`
	Contents       []s3ContentsXML   `xml:"Contents"`
	CommonPrefixes []commonPrefixXML `xml:"CommonPrefixes"`
}

// listObjectsS3 serves ListObjectsV2 (v2) and ListObjects. As S3 does,
// max-keys defaults to 1000, larger values are clamped to 1000, and 0
// lists nothing; with encoding-type=url Key, Prefix, Delimiter,
// StartAfter, Marker and NextMarker are URL-encoded.
func (s *Server) listObjectsS3(w http.ResponseWriter, q *request, v2 bool) *ossError {
	v := q.query
	maxKeys := 1000
	if mk := v.Get("max-keys"); mk != "" {
		n, err := strconv.Atoi(mk)
		if err != nil || n < 0 {
			return errInvalidArgument("Provided max-keys not an integer or within integer range.")
		}
		maxKeys = min(n, 1000)
	}
	urlEnc := v.Get("encoding-type") == "url"
	if et := v.Get("encoding-type"); et != "" && !urlEnc {
		return errInvalidArgument("Invalid Encoding Method specified in Request.")
	}
	prefix, delimiter := v.Get("prefix"), v.Get("delimiter")
	out := s3ListResult{Name: q.bucket, Prefix: encodeIf(urlEnc, prefix), MaxKeys: maxKeys, Delimiter: encodeIf(urlEnc, delimiter)}
	if urlEnc {
		out.EncodingType = "url"
	}
	var after string
	if v2 {
		startAfter, token := v.Get("start-after"), v.Get("continuation-token")
		after = startAfter
		if token != "" {
			var e *ossError
			if after, e = decodeToken(token); e != nil {
				return e
			}
		}
		out.StartAfter, out.ContinuationToken = encodeIf(urlEnc, startAfter), token
	} else {
		after = v.Get("marker")
		m := encodeIf(urlEnc, after)
		out.Marker = &m
	}
	withOwner := !v2 || v.Get("fetch-owner") == "true"

	page, e := listPage(s, q, prefix, delimiter, after, maxKeys, urlEnc, func(o *object, key string) s3ContentsXML {
		c := s3ContentsXML{Key: key, LastModified: isoTime(o.info.LastModified),
			ETag: quote(o.info.ETag), Size: o.info.Size, StorageClass: s3StorageClass(o.info.StorageClass)}
		if withOwner {
			owner := emulatorOwner
			c.Owner = &owner
		}
		return c
	})
	if e != nil {
		return e
	}
	out.IsTruncated, out.Contents, out.CommonPrefixes = page.truncated, page.contents, page.prefixes
	if v2 {
		out.KeyCount = &page.n
	}
	if out.IsTruncated {
		if v2 {
			out.NextContinuationToken = encodeToken(page.last)
		} else {
			out.NextMarker = encodeIf(urlEnc, page.last)
		}
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

// s3WriteHeader translates an S3 write request's headers into the OSS
// headers objectMetaFromRequest reads: the content headers as they are
// (less the aws-chunked transfer coding), x-amz-meta-* as x-oss-meta-*,
// x-amz-storage-class mapped to OSS's classes, x-amz-tagging as
// x-oss-tagging.
func s3WriteHeader(h http.Header) (http.Header, *ossError) {
	out := http.Header{}
	for _, name := range contentHeaders {
		if v := h.Get(name); v != "" {
			out.Set(name, v)
		}
	}
	if ce := out.Get("Content-Encoding"); ce != "" {
		var kept []string
		for _, c := range strings.Split(ce, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "aws-chunked") {
				kept = append(kept, c)
			}
		}
		out.Del("Content-Encoding")
		if len(kept) > 0 {
			out.Set("Content-Encoding", strings.Join(kept, ","))
		}
	}
	for k, v := range h {
		if name, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-meta-"); ok && name != "" {
			out.Set("x-oss-meta-"+name, v[0])
		}
	}
	if sc := h.Get("x-amz-storage-class"); sc != "" {
		class, ok := ossStorageClass(sc)
		if !ok {
			return nil, &ossError{status: 400, code: "InvalidStorageClass", message: "The storage class you specified is not valid."}
		}
		out.Set("x-oss-storage-class", class)
	}
	if t := h.Get("x-amz-tagging"); t != "" {
		out.Set("x-oss-tagging", t)
	}
	return out, nil
}

// translateS3WriteHeader replaces the request's object headers by their
// OSS equivalents (see s3WriteHeader), so that the OSS handlers store them.
func translateS3WriteHeader(q *request) *ossError {
	oh, e := s3WriteHeader(q.r.Header)
	if e != nil {
		return e
	}
	for _, name := range contentHeaders {
		q.r.Header.Del(name)
	}
	for k, v := range oh {
		q.r.Header[k] = v
	}
	return nil
}

// putObjectS3 serves an S3 PutObject: a plain body (checked against
// x-amz-content-sha256 unless UNSIGNED-PAYLOAD) or an aws-chunked one
// (STREAMING-* payloads, chunk signatures checked), with Content-MD5 and
// x-amz-checksum-* (header or trailer) verified when sent. The object is
// stored as an OSS PutObject would store it.
func (s *Server) putObjectS3(w http.ResponseWriter, q *request) *ossError {
	if e := validKey(q.key); e != nil {
		return e
	}
	oh, e := s3WriteHeader(q.r.Header)
	if e != nil {
		return e
	}
	o, _, e := s.putBody(q, oh)
	if e != nil {
		return e
	}
	// S3 answers no Content-MD5 header (OSS does).
	return writtenOK(w, o.info.ETag, o.info.CRC64)
}
