package sqsemu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/internal/sigv4"
)

// AWS Signature Version 4 in the Authorization header, checked against
// Options.Credentials. The credential scope must be
// <day>/<region>/sqs/aws4_request; the region must be Options.Region when
// that is set, any region otherwise. The payload hash is the SHA-256 of the
// body (or the x-amz-content-sha256 header when a client sends one). The
// request time may be off by at most 15 minutes from the wall clock (not
// Options.Now: clients sign with the real time even when a test drives the
// emulator's clock). A session token (x-amz-security-token) is accepted
// without further check, as long as the signature covers it.
//
// Errors are those SQS answers over the JSON protocol: an unknown access
// key is 403 InvalidClientTokenId (shape UnrecognizedClientException), a
// wrong signature, service, region or an expired one is 403
// SignatureDoesNotMatch (shape InvalidSignatureException), no signature at
// all is 403 MissingAuthenticationToken.

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	v4TimeFormat   = "20060102T150405Z"
	v4DayFormat    = "20060102"
	maxSkew        = 15 * time.Minute
)

// authenticate checks the signature of r, whose body is body. It returns
// the access key that signed (or "" when signatures are not checked).
func (s *Server) authenticate(r *http.Request, body []byte) (string, *apiError) {
	if len(s.opts.Credentials) == 0 {
		return accessKeyOf(r.Header.Get("Authorization")), nil
	}
	fields, e := parseAuthorization(r)
	if e != nil {
		return "", e
	}
	sc, e := s.credentialScope(fields["Credential"])
	if e != nil {
		return "", e
	}
	amzDate, e := requestTime(r, sc.day)
	if e != nil {
		return "", e
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !containsString(signed, "host") {
		return "", errSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	payload, e := payloadHash(r, body)
	if e != nil {
		return "", e
	}
	if sc.verify(r, signed, fields["SignedHeaders"], fields["Signature"], amzDate, payload) {
		return sc.accessKey, nil
	}
	return "", errSignature("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
}

// parseAuthorization returns the fields of r's SigV4 Authorization header
// (Credential, SignedHeaders, Signature), each of them present.
func parseAuthorization(r *http.Request) (map[string]string, *apiError) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		if r.URL.Query().Has("X-Amz-Signature") {
			return nil, errSignature("The emulator accepts only signatures in the Authorization header.")
		}
		return nil, errMissingAuthentication()
	}
	rest, ok := strings.CutPrefix(auth, sigV4Algorithm+" ")
	if !ok {
		return nil, errIncompleteSignature("Authorization header requires the " + sigV4Algorithm + " algorithm.")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			return nil, errIncompleteSignature("Authorization header requires '" + k + "' parameter.")
		}
	}
	return fields, nil
}

// sigScope is a checked credential scope, with the secret of its key.
type sigScope struct {
	accessKey, secret    string
	day, region, service string
}

// credentialScope checks the Credential field,
// <access key>/<day>/<region>/sqs/aws4_request: a known key, SQS and the
// emulator's region.
func (s *Server) credentialScope(credential string) (sigScope, *apiError) {
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return sigScope{}, errIncompleteSignature("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term.")
	}
	sc := sigScope{accessKey: scope[0], day: scope[1], region: scope[2], service: scope[3]}
	secret, ok := s.opts.Credentials[sc.accessKey]
	if !ok || sc.accessKey == "" {
		return sigScope{}, errInvalidClientTokenID()
	}
	sc.secret = secret
	if sc.service != "sqs" {
		return sigScope{}, errSignature("Credential should be scoped to correct service: 'sqs'.")
	}
	if s.opts.Region != "" && sc.region != s.opts.Region {
		return sigScope{}, errSignature("Credential should be scoped to a valid region, not '" + sc.region + "'.")
	}
	return sc, nil
}

// requestTime returns the signing time of r (X-Amz-Date, else Date) in the
// SigV4 format, once checked against the wall clock and the scope's day.
func requestTime(r *http.Request, day string) (string, *apiError) {
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		if t, err := http.ParseTime(r.Header.Get("Date")); err == nil {
			amzDate = t.UTC().Format(v4TimeFormat)
		}
	}
	t, err := time.Parse(v4TimeFormat, amzDate)
	if err != nil {
		return "", errIncompleteSignature("Authorization requires a valid X-Amz-Date or Date header.")
	}
	now := time.Now().UTC()
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return "", errSignature("Signature expired: " + amzDate + " is now earlier than " +
			now.Add(-maxSkew).Format(v4TimeFormat) + " (" + now.Format(v4TimeFormat) + " - 15 min.)")
	}
	if t.Format(v4DayFormat) != day {
		return "", errSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" + day + "' != '" + t.Format(v4DayFormat) + "'.")
	}
	return amzDate, nil
}

// payloadHash is the payload hash the signature covers: the SHA-256 of the
// body, or UNSIGNED-PAYLOAD when x-amz-content-sha256 says so. A
// x-amz-content-sha256 that is another hash must be the body's.
func payloadHash(r *http.Request, body []byte) (string, *apiError) {
	bodySum := sha256.Sum256(body)
	payload := hex.EncodeToString(bodySum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h == "UNSIGNED-PAYLOAD" {
		payload = h
	} else if h != "" && h != payload {
		return "", errSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return payload, nil
}

// verify reports whether signature is the SigV4 signature of r under sc,
// with any of the canonical URIs a client may have signed.
func (sc sigScope) verify(r *http.Request, signed []string, signedHeaders, signature, amzDate, payload string) bool {
	headers := sigv4.CanonicalHeaders(r, signed)
	query := sigv4.CanonicalQuery(r.URL.Query())
	credScope := sc.day + "/" + sc.region + "/" + sc.service + "/aws4_request"
	key := hmacSHA256([]byte("AWS4"+sc.secret), sc.day)
	key = hmacSHA256(key, sc.region)
	key = hmacSHA256(key, sc.service)
	key = hmacSHA256(key, "aws4_request")
	for _, uri := range canonicalURIs(r) {
		canonical := r.Method + "\n" + uri + "\n" + query + "\n" + headers + "\n" + signedHeaders + "\n" + payload
		sum := sha256.Sum256([]byte(canonical))
		sts := sigV4Algorithm + "\n" + amzDate + "\n" + credScope + "\n" + hex.EncodeToString(sum[:])
		want := hex.EncodeToString(hmacSHA256(key, sts))
		if hmac.Equal([]byte(want), []byte(signature)) {
			return true
		}
	}
	return false
}

// accessKeyOf extracts the access key of an unchecked Authorization header,
// for the SenderId attribute.
func accessKeyOf(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	ak, _, _ := strings.Cut(cred, "/")
	return ak
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalURIs are the paths a client may have signed: the path as sent,
// then the path escaped once more (SigV4 for services other than S3 escapes
// the already escaped path).
func canonicalURIs(r *http.Request) []string {
	raw := r.URL.EscapedPath()
	if p, _, _ := strings.Cut(r.RequestURI, "?"); strings.HasPrefix(p, "/") {
		raw = p
	}
	if raw == "" {
		raw = "/"
	}
	out := []string{raw}
	if enc := sigv4.URIEncode(raw, false); enc != raw {
		out = append(out, enc)
	}
	if dec, err := url.PathUnescape(raw); err == nil {
		if enc := sigv4.URIEncode(dec, false); enc != raw && !containsString(out, enc) {
			out = append(out, enc)
		}
	}
	return out
}
