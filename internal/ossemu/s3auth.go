package ossemu

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/internal/sigv4"
)

// AWS Signature Version 4 for the S3 API, checked against
// Options.Credentials like OSS signatures. The credential scope must be
// <day>/<region>/s3/aws4_request; any region is accepted (the signature is
// verified with the region the client signed for), unlike OSS V4 whose
// region Options.Region pins. The canonical URI is the path exactly as
// sent (S3 clients sign the path they send, escaped once), or failing
// that the path re-encoded by SigV4's rules.

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	emptySHA256    = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	maxPresignSecs = 7 * 24 * 3600
)

// sigV4 is a verified SigV4 signature: what a streaming upload's chunk
// signatures chain from.
type sigV4 struct {
	key       []byte // the signing key
	date      string // x-amz-date, ISO 8601 basic
	scope     string // day/region/s3/aws4_request
	signature string
}

func (s *Server) authenticateS3(q *request) *ossError {
	if !s.checksSignatures() {
		return nil
	}
	auth := q.r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(auth, sigV4Algorithm+" "):
		return s.checkSigV4Header(q, strings.TrimPrefix(auth, sigV4Algorithm+" "))
	case auth != "":
		return errAccessDenied("The emulator's S3 API accepts only AWS Signature Version 4 (" + sigV4Algorithm + ").")
	case q.query.Has("X-Amz-Algorithm"):
		if q.query.Get("X-Amz-Algorithm") != sigV4Algorithm {
			return &ossError{status: 400, code: "AuthorizationQueryParametersError", message: "X-Amz-Algorithm only supports \"" + sigV4Algorithm + "\"."}
		}
		return s.checkSigV4Query(q)
	}
	return errAccessDenied("Anonymous access is denied.")
}

func errS3InvalidAccessKeyID(ak string) *ossError {
	return &ossError{status: 403, code: "InvalidAccessKeyId", message: "The AWS Access Key Id you provided does not exist in our records.", extra: errorExtra{OSSAccessKeyID: ak}}
}

func errAuthHeaderMalformed(msg string) *ossError {
	return &ossError{status: 400, code: "AuthorizationHeaderMalformed", message: "The authorization header is malformed; " + msg}
}

// credentialScope splits "AK/day/region/s3/aws4_request".
func credentialScope(cred string) (ak, day, region string, e *ossError) {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return "", "", "", errAuthHeaderMalformed("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	}
	if parts[3] != "s3" {
		return "", "", "", errAuthHeaderMalformed("incorrect service \"" + parts[3] + "\". This endpoint belongs to \"s3\".")
	}
	if parts[4] != "aws4_request" {
		return "", "", "", errAuthHeaderMalformed("incorrect terminal \"" + parts[4] + "\". This endpoint uses \"aws4_request\".")
	}
	return parts[0], parts[1], parts[2], nil
}

func (s *Server) checkSigV4Header(q *request, rest string) *ossError {
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	ak, day, region, e := credentialScope(fields["Credential"])
	if e != nil {
		return e
	}
	secret, ok := s.keySecret(ak)
	if !ok || ak == "" {
		return errS3InvalidAccessKeyID(ak)
	}
	amzDate := q.r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		if t, err := http.ParseTime(q.r.Header.Get("Date")); err == nil {
			amzDate = t.UTC().Format(v4TimeFormat)
		}
	}
	t, err := time.Parse(v4TimeFormat, amzDate)
	if err != nil {
		return errAccessDenied("AWS authentication requires a valid Date or x-amz-date header.")
	}
	now := s.now()
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return &ossError{status: 403, code: "RequestTimeTooSkewed", message: "The difference between the request time and the current time is too large.",
			extra: errorExtra{RequestTime: amzDate, ServerTime: now.UTC().Format(time.RFC3339)}}
	}
	if t.UTC().Format(v4DayFormat) != day {
		return errAuthHeaderMalformed("Invalid credential date \"" + day + "\". This date is not the same as X-Amz-Date: \"" + t.UTC().Format(v4DayFormat) + "\".")
	}
	payload := q.r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case payload == "" && (q.r.ContentLength > 0 || len(q.r.TransferEncoding) > 0):
		return &ossError{status: 400, code: "InvalidRequest", message: "Missing required header for this request: x-amz-content-sha256"}
	case payload == "":
		payload = emptySHA256
	case payload != unsignedSHA256 && !strings.HasPrefix(payload, "STREAMING-") && !isHexSHA256(payload):
		return &ossError{status: 400, code: "InvalidArgument", message: "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-*, or a valid sha256 value."}
	}
	sig, e := s.verifySigV4(q, ak, secret, amzDate, day, region, fields["SignedHeaders"], fields["Signature"], payload, q.query)
	if e != nil {
		return e
	}
	q.sig = sig
	return nil
}

func (s *Server) checkSigV4Query(q *request) *ossError {
	v := q.query
	ak, day, region, e := credentialScope(v.Get("X-Amz-Credential"))
	if e != nil {
		e.code = "AuthorizationQueryParametersError"
		return e
	}
	secret, ok := s.keySecret(ak)
	if !ok || ak == "" {
		return errS3InvalidAccessKeyID(ak)
	}
	amzDate := v.Get("X-Amz-Date")
	t, err := time.Parse(v4TimeFormat, amzDate)
	if err != nil {
		return &ossError{status: 400, code: "AuthorizationQueryParametersError", message: "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"."}
	}
	exp, err := strconv.Atoi(v.Get("X-Amz-Expires"))
	if err != nil || exp < 0 || exp > maxPresignSecs {
		return &ossError{status: 400, code: "AuthorizationQueryParametersError", message: "X-Amz-Expires must be a number of seconds from 0 to 604800."}
	}
	now := s.now()
	if now.After(t.Add(time.Duration(exp) * time.Second)) {
		return errAccessDenied("Request has expired")
	}
	if t.After(now.Add(maxSkew)) {
		return errAccessDenied("Request is not valid yet")
	}
	if t.UTC().Format(v4DayFormat) != day {
		return &ossError{status: 400, code: "AuthorizationQueryParametersError", message: "Invalid credential date. Date is not the same as X-Amz-Date."}
	}
	payload := v.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = unsignedSHA256
	}
	params := cloneWithout(v, "X-Amz-Signature")
	sig, e := s.verifySigV4(q, ak, secret, amzDate, day, region, v.Get("X-Amz-SignedHeaders"), v.Get("X-Amz-Signature"), payload, params)
	if e != nil {
		return e
	}
	q.sig = sig
	return nil
}

func (s *Server) verifySigV4(q *request, ak, secret, amzDate, day, region, signedHeaders, provided, payload string, params url.Values) (*sigV4, *ossError) {
	names := strings.Split(signedHeaders, ";")
	hasHost := false
	for _, n := range names {
		hasHost = hasHost || n == "host"
	}
	if !hasHost {
		return nil, errAccessDenied("SignedHeaders must include host.")
	}
	headers := sigv4.CanonicalHeaders(q.r, names)
	query := sigv4.CanonicalQuery(params)
	scope := day + "/" + region + "/s3/aws4_request"
	key := hmacSum(sha256.New, []byte("AWS4"+secret), day)
	key = hmacSum(sha256.New, key, region)
	key = hmacSum(sha256.New, key, "s3")
	key = hmacSum(sha256.New, key, "aws4_request")
	var firstCanonical, firstSTS string
	for i, uri := range canonicalURIs(q.r) {
		canonical := q.r.Method + "\n" + uri + "\n" + query + "\n" + headers + "\n" + signedHeaders + "\n" + payload
		sum := sha256.Sum256([]byte(canonical))
		sts := sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
		want := hex.EncodeToString(hmacSum(sha256.New, key, sts))
		if hmac.Equal([]byte(want), []byte(provided)) {
			return &sigV4{key: key, date: amzDate, scope: scope, signature: provided}, nil
		}
		if i == 0 {
			firstCanonical, firstSTS = canonical, sts
		}
	}
	e := errSignature(ak, provided, firstSTS, firstCanonical)
	e.message = "The request signature we calculated does not match the signature you provided. Check your key and signing method."
	return nil, e
}

// canonicalURIs are the paths a client may have signed: the path as sent,
// then the decoded path encoded by SigV4's rules.
func canonicalURIs(r *http.Request) []string {
	raw := r.URL.EscapedPath()
	if r.RequestURI != "" && !strings.HasPrefix(r.RequestURI, "*") {
		if p, _, _ := strings.Cut(r.RequestURI, "?"); strings.HasPrefix(p, "/") {
			raw = p
		}
	}
	if raw == "" {
		raw = "/"
	}
	out := []string{raw}
	if dec, err := url.PathUnescape(raw); err == nil {
		if enc := sigv4.URIEncode(dec, false); enc != raw {
			out = append(out, enc)
		}
	}
	return out
}

func isHexSHA256(v string) bool {
	if len(v) != 64 {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

// --- request bodies

// prepareS3Body replaces the request body with one that yields the
// object's bytes and fails (with the S3 error) when they do not match the
// signed payload hash, a chunk signature or a sent checksum, and sets
// ContentLength to the decoded length.
func (s *Server) prepareS3Body(q *request) *ossError {
	r := q.r
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if q.query.Has("X-Amz-Content-Sha256") {
		payload = q.query.Get("X-Amz-Content-Sha256")
	}
	var body io.Reader = r.Body
	length := r.ContentLength
	var chunked *chunkedReader
	switch {
	case strings.HasPrefix(payload, "STREAMING-"):
		if strings.Contains(payload, "ECDSA") {
			return &ossError{status: 501, code: "NotImplemented", message: "The emulator does not implement SigV4a (" + payload + ")."}
		}
		dl := r.Header.Get("X-Amz-Decoded-Content-Length")
		n, err := strconv.ParseInt(dl, 10, 64)
		if err != nil || n < 0 {
			return &ossError{status: 411, code: "MissingContentLength", message: "You must provide the x-amz-decoded-content-length header for an aws-chunked upload."}
		}
		length = n
		chunked = &chunkedReader{br: bufio.NewReaderSize(r.Body, 64<<10), trailer: http.Header{}}
		if strings.HasPrefix(payload, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") && q.sig != nil {
			chunked.sig, chunked.prevSig = q.sig, q.sig.signature
		}
		body = chunked
	case isHexSHA256(payload):
		body = &sha256Reader{r: body, want: payload}
	}
	if cs := newChecksumReader(body, r.Header, chunked); cs != nil {
		body = cs
	} else if e := checkTrailerNamed(r.Header); e != nil {
		return e
	}
	r.Body = io.NopCloser(body)
	r.ContentLength = length
	return nil
}

// sha256Reader fails at the end of the body if its SHA-256 is not want.
type sha256Reader struct {
	r    io.Reader
	h    hash.Hash
	want string
}

func (s *sha256Reader) Read(p []byte) (int, error) {
	if s.h == nil {
		s.h = sha256.New()
	}
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	if err == io.EOF && hex.EncodeToString(s.h.Sum(nil)) != s.want {
		return n, &ossError{status: 400, code: "XAmzContentSHA256Mismatch", message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	}
	return n, err
}

// checksumAlgorithms are the x-amz-checksum-* algorithms the emulator checks.
var checksumAlgorithms = map[string]func() hash.Hash{
	"x-amz-checksum-crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"x-amz-checksum-crc32c":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"x-amz-checksum-crc64nvme": func() hash.Hash { return crc64.New(crc64.MakeTable(0x9A6C9329AC4BC9B5)) },
	"x-amz-checksum-sha1":      sha1.New,
	"x-amz-checksum-sha256":    sha256.New,
}

// checksumReader fails at the end of the body if its checksum is not the
// one sent in a header or, for aws-chunked bodies, in the trailer.
type checksumReader struct {
	r       io.Reader
	name    string
	h       hash.Hash
	want    string
	chunked *chunkedReader // the trailer carries want when want is ""
}

func newChecksumReader(r io.Reader, h http.Header, chunked *chunkedReader) *checksumReader {
	for name, newHash := range checksumAlgorithms {
		if v := h.Get(name); v != "" {
			return &checksumReader{r: r, name: name, h: newHash(), want: v}
		}
	}
	if chunked == nil {
		return nil
	}
	for _, name := range strings.Split(h.Get("X-Amz-Trailer"), ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if newHash, ok := checksumAlgorithms[name]; ok {
			return &checksumReader{r: r, name: name, h: newHash(), chunked: chunked}
		}
	}
	return nil
}

func checkTrailerNamed(h http.Header) *ossError {
	if t := h.Get("X-Amz-Trailer"); t != "" {
		return &ossError{status: 400, code: "InvalidRequest", message: "x-amz-trailer " + strconv.Quote(t) + " needs an aws-chunked body with a supported x-amz-checksum-* trailer."}
	}
	return nil
}

func (c *checksumReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		want := c.want
		if want == "" && c.chunked != nil {
			want = c.chunked.trailer.Get(c.name)
		}
		if got := base64.StdEncoding.EncodeToString(c.h.Sum(nil)); want != got {
			return n, &ossError{status: 400, code: "BadDigest", message: fmt.Sprintf("The %s you specified (%q) did not match the calculated checksum (%q).", c.name, want, got)}
		}
	}
	return n, err
}

// chunkedReader decodes an aws-chunked body: "<hex size>[;chunk-signature=
// <sig>]\r\n<data>\r\n" chunks, a zero-size chunk, optional trailer lines
// and an empty line. With sig set every chunk signature (and a trailer
// signature) is checked, chained from the seed signature.
type chunkedReader struct {
	br       *bufio.Reader
	sig      *sigV4
	prevSig  string
	left     int64
	chunkSum hash.Hash
	chunkSig string
	trailer  http.Header
	done     bool
	err      error
}

func errIncompleteChunked(msg string) *ossError {
	return &ossError{status: 400, code: "IncompleteBody", message: "Malformed aws-chunked body: " + msg}
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		if e := c.next(); e != nil {
			c.err = e
			return 0, e
		}
	}
	n, err := c.br.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	if c.chunkSum != nil {
		c.chunkSum.Write(p[:n])
	}
	if err != nil {
		if err == io.EOF {
			err = errIncompleteChunked("the body ends inside a chunk")
		}
		c.err = err
		return n, err
	}
	if c.left == 0 {
		if e := c.endChunk(); e != nil {
			c.err = e
			return n, e
		}
	}
	return n, nil
}

func (c *chunkedReader) readLine() (string, *ossError) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return "", errIncompleteChunked("a chunk header or trailer is cut or too long")
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

func (c *chunkedReader) next() *ossError {
	line, e := c.readLine()
	if e != nil {
		return e
	}
	sizeHex, ext, _ := strings.Cut(line, ";")
	size, err := strconv.ParseInt(strings.TrimSpace(sizeHex), 16, 64)
	if err != nil || size < 0 {
		return errIncompleteChunked("bad chunk size " + strconv.Quote(sizeHex))
	}
	c.chunkSig = ""
	if v, ok := strings.CutPrefix(strings.TrimSpace(ext), "chunk-signature="); ok {
		c.chunkSig = v
	}
	if c.sig != nil {
		if c.chunkSig == "" {
			return errIncompleteChunked("a chunk has no chunk-signature")
		}
		c.chunkSum = sha256.New()
	}
	if size > 0 {
		c.left = size
		return nil
	}
	if e := c.verifyChunk(); e != nil {
		return e
	}
	var trailerLines strings.Builder
	for {
		line, e := c.readLine()
		if e != nil {
			return e
		}
		if line == "" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if name == "x-amz-trailer-signature" {
			if c.sig != nil {
				sum := sha256.Sum256([]byte(trailerLines.String()))
				sts := "AWS4-HMAC-SHA256-TRAILER\n" + c.sig.date + "\n" + c.sig.scope + "\n" + c.prevSig + "\n" + hex.EncodeToString(sum[:])
				if want := hex.EncodeToString(hmacSum(sha256.New, c.sig.key, sts)); !hmac.Equal([]byte(want), []byte(value)) {
					return &ossError{status: 403, code: "SignatureDoesNotMatch", message: "The trailer signature does not match."}
				}
			}
			continue
		}
		trailerLines.WriteString(name + ":" + value + "\n")
		c.trailer.Set(name, value)
	}
	c.done = true
	return nil
}

func (c *chunkedReader) endChunk() *ossError {
	var crlf [2]byte
	if _, err := io.ReadFull(c.br, crlf[:]); err != nil || crlf != [2]byte{'\r', '\n'} {
		return errIncompleteChunked("a chunk's data is not followed by CRLF")
	}
	return c.verifyChunk()
}

func (c *chunkedReader) verifyChunk() *ossError {
	if c.sig == nil {
		return nil
	}
	sum := c.chunkSum.Sum(nil)
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.sig.date + "\n" + c.sig.scope + "\n" + c.prevSig + "\n" + emptySHA256 + "\n" + hex.EncodeToString(sum)
	want := hex.EncodeToString(hmacSum(sha256.New, c.sig.key, sts))
	if !hmac.Equal([]byte(want), []byte(c.chunkSig)) {
		return &ossError{status: 403, code: "SignatureDoesNotMatch", message: "The chunk signature does not match."}
	}
	c.prevSig = c.chunkSig
	return nil
}
