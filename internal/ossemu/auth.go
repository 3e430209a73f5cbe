package ossemu

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The string-to-sign rules below mirror aliyun-oss-go-sdk v3.0.2
// (oss/auth.go getSignedStr/getSignedStrV4, oss/conn.go getSubResource,
// getResource, getResourceV4 and signURL) byte for byte.

// subResources are the query parameters that V1 signs (the SDK's
// signKeyList); every other query parameter is left out of a V1 signature.
// They are also what route treats as sub-resources.
var subResources = map[string]bool{}

func init() {
	for _, k := range []string{"acl", "uploads", "location", "cors",
		"logging", "website", "referer", "lifecycle",
		"delete", "append", "tagging", "objectMeta",
		"uploadId", "partNumber", "security-token",
		"position", "img", "style", "styleName",
		"replication", "replicationProgress",
		"replicationLocation", "cname", "bucketInfo",
		"comp", "qos", "live", "status", "vod",
		"startTime", "endTime", "symlink",
		"x-oss-process", "response-content-type", "x-oss-traffic-limit",
		"response-content-language", "response-expires",
		"response-cache-control", "response-content-disposition",
		"response-content-encoding", "udf", "udfName", "udfImage",
		"udfId", "udfImageDesc", "udfApplication",
		"udfApplicationLog", "restore", "callback", "callback-var", "qosInfo",
		"policy", "stat", "encryption", "versions", "versioning", "versionId", "requestPayment",
		"x-oss-request-payer", "sequential",
		"inventory", "inventoryId", "continuation-token", "asyncFetch",
		"worm", "wormId", "wormExtend", "withHashContext",
		"x-oss-enable-md5", "x-oss-enable-sha1", "x-oss-enable-sha256",
		"x-oss-hash-ctx", "x-oss-md5-ctx", "transferAcceleration",
		"regionList", "cloudboxes", "x-oss-ac-source-ip", "x-oss-ac-subnet-mask", "x-oss-ac-vpc-id", "x-oss-ac-forward-allow",
		"metaQuery", "resourceGroup", "rtc", "x-oss-async-process", "responseHeader",
	} {
		subResources[k] = true
	}
}

func isSubResource(name string) bool { return subResources[name] }

const (
	v4Algorithm    = "OSS4-HMAC-SHA256"
	v4Terminator   = "aliyun_v4_request"
	v4Product      = "oss"
	v4TimeFormat   = "20060102T150405Z"
	v4DayFormat    = "20060102"
	unsignedSHA256 = "UNSIGNED-PAYLOAD"
	// maxSkew is how far a signed request's time may be from the server's.
	maxSkew = 15 * time.Minute
)

// authenticate checks the request's signature against Options.Credentials.
// With no credentials configured every request passes.
func (s *Server) authenticate(q *request) *ossError {
	if !s.checksSignatures() {
		return nil
	}
	auth := q.r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(auth, v4Algorithm+" "):
		return s.checkV4Header(q, strings.TrimPrefix(auth, v4Algorithm+" "))
	case strings.HasPrefix(auth, "OSS2 "):
		return s.checkV2Header(q, strings.TrimPrefix(auth, "OSS2 "))
	case strings.HasPrefix(auth, "OSS "):
		return s.checkV1Header(q, strings.TrimPrefix(auth, "OSS "))
	case auth != "":
		return errAccessDenied("Authorization header is invalid.")
	}
	switch v := q.query.Get("x-oss-signature-version"); {
	case v == v4Algorithm:
		return s.checkV4Query(q)
	case v == "OSS2":
		return s.checkV2Query(q)
	case q.query.Has("OSSAccessKeyId"):
		return s.checkV1Query(q)
	}
	return errAccessDenied("You have no right to access this object because of bucket acl.")
}

func errAccessDenied(msg string) *ossError {
	return &ossError{status: 403, code: "AccessDenied", message: msg}
}

func errInvalidAccessKeyID(ak string) *ossError {
	return &ossError{status: 403, code: "InvalidAccessKeyId", message: "The OSS Access Key Id you provided does not exist in our records.", extra: errorExtra{OSSAccessKeyID: ak}}
}

func errSignature(ak, provided, stringToSign, canonical string) *ossError {
	return &ossError{status: 403, code: "SignatureDoesNotMatch",
		message: "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
		extra:   errorExtra{OSSAccessKeyID: ak, SignatureProvided: provided, StringToSign: stringToSign, CanonicalRequest: canonical}}
}

func (s *Server) secret(ak string) (string, *ossError) {
	if s.keyExpired(ak) {
		return "", &ossError{status: 403, code: "SecurityTokenExpired", message: "The security token you provided has expired.", extra: errorExtra{OSSAccessKeyID: ak}}
	}
	secret, ok := s.keySecret(ak)
	if !ok || ak == "" {
		return "", errInvalidAccessKeyID(ak)
	}
	return secret, nil
}

// checkSkew rejects a header-signed request whose time is more than 15
// minutes from the server's clock.
func (s *Server) checkSkew(h http.Header) *ossError {
	var t time.Time
	var err error
	if d := h.Get("x-oss-date"); d != "" {
		t, err = parseSignTime(d)
	} else if d := h.Get("Date"); d != "" {
		t, err = parseSignTime(d)
	} else {
		return errAccessDenied("OSS authentication requires a valid Date.")
	}
	if err != nil {
		return errAccessDenied("OSS authentication requires a valid Date.")
	}
	now := s.now()
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return &ossError{status: 403, code: "RequestTimeTooSkewed",
			message: "The difference between the request time and the current time is too large.",
			extra:   errorExtra{RequestTime: t.UTC().Format(http.TimeFormat), ServerTime: now.UTC().Format(http.TimeFormat)}}
	}
	return nil
}

func parseSignTime(v string) (time.Time, error) {
	if t, err := time.Parse(v4TimeFormat, v); err == nil {
		return t, nil
	}
	return http.ParseTime(v)
}

func (s *Server) checkExpires(expires time.Time) *ossError {
	if now := s.now(); now.After(expires) {
		return &ossError{status: 403, code: "AccessDenied", message: "Request has expired.",
			extra: errorExtra{ServerTime: now.UTC().Format(http.TimeFormat)}}
	}
	return nil
}

// --- V1: HMAC-SHA1 over VERB, Content-MD5, Content-Type, Date, x-oss-*
// headers and /bucket/key?signed-sub-resources (raw key, raw values).

func (s *Server) checkV1Header(q *request, cred string) *ossError {
	ak, sig, ok := strings.Cut(cred, ":")
	if !ok {
		return errAccessDenied("Authorization header is invalid.")
	}
	secret, err := s.secret(ak)
	if err != nil {
		return err
	}
	if err := s.checkSkew(q.r.Header); err != nil {
		return err
	}
	return verifyV1(q, ak, secret, sig, q.r.Header.Get("Date"), q.query)
}

// presignedKey checks a presigned URL's access key (the akParam query
// parameter) and expiry (expParam, Unix seconds), and gives the key's secret.
func (s *Server) presignedKey(q *request, akParam, expParam string) (ak, secret string, err *ossError) {
	ak = q.query.Get(akParam)
	if secret, err = s.secret(ak); err != nil {
		return "", "", err
	}
	exp, perr := strconv.ParseInt(q.query.Get(expParam), 10, 64)
	if perr != nil {
		return "", "", errAccessDenied(expParam + " is invalid.")
	}
	if err := s.checkExpires(time.Unix(exp, 0)); err != nil {
		return "", "", err
	}
	return ak, secret, nil
}

func (s *Server) checkV1Query(q *request) *ossError {
	ak, secret, err := s.presignedKey(q, "OSSAccessKeyId", "Expires")
	if err != nil {
		return err
	}
	return verifyV1(q, ak, secret, q.query.Get("Signature"), q.query.Get("Expires"), q.query)
}

func verifyV1(q *request, ak, secret, provided, date string, params url.Values) *ossError {
	sts := q.r.Method + "\n" + q.r.Header.Get("Content-MD5") + "\n" + q.r.Header.Get("Content-Type") + "\n" + date + "\n" +
		canonicalHeaders(q.r, nil, false) + resourceV1(q.bucket, q.key, params)
	want := base64.StdEncoding.EncodeToString(hmacSum(sha1.New, []byte(secret), sts))
	if !hmac.Equal([]byte(want), []byte(provided)) {
		return errSignature(ak, provided, sts, "")
	}
	return nil
}

func resourceV1(bucket, key string, params url.Values) string {
	var keys []string
	for k := range params {
		if isSubResource(k) {
			keys = append(keys, k)
		}
	}
	q := joinParams(keys, params.Get)
	res := "/"
	if bucket != "" {
		res = "/" + bucket + "/" + key
	}
	if q != "" {
		res += "?" + q
	}
	return res
}

// canonicalHeaders renders the signed headers as "name:value\n" sorted by
// name: every x-oss-* header, the additional headers, and (V4) Content-MD5
// and Content-Type. Like the SDK it uses each header's first value; V4
// trims spaces.
func canonicalHeaders(r *http.Request, additional map[string]bool, v4 bool) string {
	m := map[string]string{}
	for k, v := range r.Header {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, "x-oss-"),
			v4 && (lk == "content-md5" || lk == "content-type"),
			additional[lk]:
			val := v[0]
			if v4 {
				val = strings.Trim(val, " ")
			}
			m[lk] = val
		}
	}
	if additional["host"] {
		m["host"] = r.Host
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + ":" + m[k] + "\n")
	}
	return b.String()
}

// --- V2: HMAC-SHA256 like V1 but over every query parameter, URL-encoded,
// and the additional headers.

func (s *Server) checkV2Header(q *request, cred string) *ossError {
	fields := map[string]string{}
	for _, part := range strings.Split(cred, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), ":")
		fields[k] = v
	}
	ak := fields["AccessKeyId"]
	secret, err := s.secret(ak)
	if err != nil {
		return err
	}
	if err := s.checkSkew(q.r.Header); err != nil {
		return err
	}
	return verifyV2(q, ak, secret, fields["Signature"], q.r.Header.Get("Date"), fields["AdditionalHeaders"], q.query)
}

func (s *Server) checkV2Query(q *request) *ossError {
	ak, secret, err := s.presignedKey(q, "x-oss-access-key-id", "x-oss-expires")
	if err != nil {
		return err
	}
	params := cloneWithout(q.query, "x-oss-signature")
	return verifyV2(q, ak, secret, q.query.Get("x-oss-signature"), q.query.Get("x-oss-expires"), q.query.Get("x-oss-additional-headers"), params)
}

func verifyV2(q *request, ak, secret, provided, date, additionalList string, params url.Values) *ossError {
	additional := splitAdditional(additionalList)
	res := escapeSDK("/")
	if q.bucket != "" {
		res = escapeSDK("/"+q.bucket+"/") + escapeSDK(q.key)
	}
	if sub := subResourceAll(params); sub != "" {
		res += "?" + sub
	}
	sts := q.r.Method + "\n" + q.r.Header.Get("Content-MD5") + "\n" + q.r.Header.Get("Content-Type") + "\n" + date + "\n" +
		canonicalHeaders(q.r, setOf(additional), false) + strings.Join(additional, ";") + "\n" + res
	want := base64.StdEncoding.EncodeToString(hmacSum(sha256.New, []byte(secret), sts))
	if !hmac.Equal([]byte(want), []byte(provided)) {
		return errSignature(ak, provided, sts, "")
	}
	return nil
}

// --- V4: OSS4-HMAC-SHA256 over a canonical request, key chain
// "aliyun_v4"+secret -> day -> region -> "oss" -> "aliyun_v4_request".

func (s *Server) checkV4Header(q *request, cred string) *ossError {
	fields := map[string]string{}
	for _, part := range strings.Split(cred, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	ak, scope, _ := strings.Cut(fields["Credential"], "/")
	secret, err := s.secret(ak)
	if err != nil {
		return err
	}
	if err := s.checkSkew(q.r.Header); err != nil {
		return err
	}
	signDate := q.r.Header.Get("Date")
	if d := q.r.Header.Get("x-oss-date"); d != "" {
		signDate = d
	}
	payload := q.r.Header.Get("x-oss-content-sha256")
	if payload == "" {
		payload = unsignedSHA256
	}
	return s.verifyV4(q, ak, secret, scope, signDate, fields["AdditionalHeaders"], fields["Signature"], payload, q.query)
}

func (s *Server) checkV4Query(q *request) *ossError {
	ak, scope, _ := strings.Cut(q.query.Get("x-oss-credential"), "/")
	secret, err := s.secret(ak)
	if err != nil {
		return err
	}
	signDate := q.query.Get("x-oss-date")
	t, perr := time.Parse(v4TimeFormat, signDate)
	if perr != nil {
		return errAccessDenied("x-oss-date is invalid.")
	}
	exp, perr := strconv.ParseInt(q.query.Get("x-oss-expires"), 10, 64)
	if perr != nil {
		return errAccessDenied("x-oss-expires is invalid.")
	}
	if err := s.checkExpires(t.Add(time.Duration(exp) * time.Second)); err != nil {
		return err
	}
	params := cloneWithout(q.query, "x-oss-signature")
	return s.verifyV4(q, ak, secret, scope, signDate, q.query.Get("x-oss-additional-headers"), q.query.Get("x-oss-signature"), unsignedSHA256, params)
}

func (s *Server) verifyV4(q *request, ak, secret, scope, signDate, additionalList, provided, payload string, params url.Values) *ossError {
	parts := strings.Split(scope, "/")
	if len(parts) != 4 || parts[2] != v4Product || parts[3] != v4Terminator {
		return errAccessDenied("Invalid credential scope in Authorization: " + scope)
	}
	day, region := parts[0], parts[1]
	if s.opts.Region != "" && region != s.opts.Region {
		e := errSignature(ak, provided, "", "")
		e.message = "Invalid signing region in Authorization header: " + strconv.Quote(region) + ", this endpoint is " + strconv.Quote(s.opts.Region) + "."
		return e
	}
	if t, err := parseSignTime(signDate); err != nil || t.UTC().Format(v4DayFormat) != day {
		e := errSignature(ak, provided, "", "")
		e.message = "Invalid signing date in Authorization header."
		return e
	}
	additional := splitAdditional(additionalList)
	res := "/"
	if q.bucket != "" {
		res = "/" + q.bucket + "/"
		if q.key != "" {
			res += strings.ReplaceAll(escapeSDK(q.key), "%2F", "/")
		}
	}
	canonical := q.r.Method + "\n" + res + "\n" + subResourceAll(params) + "\n" +
		canonicalHeaders(q.r, setOf(additional), true) + "\n" + strings.Join(additional, ";") + "\n" + payload
	sum := sha256.Sum256([]byte(canonical))
	sts := v4Algorithm + "\n" + signDate + "\n" + day + "/" + region + "/" + v4Product + "/" + v4Terminator + "\n" + hex.EncodeToString(sum[:])
	key := hmacSum(sha256.New, []byte("aliyun_v4"+secret), day)
	key = hmacSum(sha256.New, key, region)
	key = hmacSum(sha256.New, key, v4Product)
	key = hmacSum(sha256.New, key, v4Terminator)
	want := hex.EncodeToString(hmacSum(sha256.New, key, sts))
	if !hmac.Equal([]byte(want), []byte(provided)) {
		return errSignature(ak, provided, sts, canonical)
	}
	return nil
}

// subResourceAll renders every query parameter as V2 and V4 sign them:
// names and values QueryEscape'd with '+' as %20, sorted by encoded name,
// "name" alone when the value is empty.
func subResourceAll(params url.Values) string {
	enc := make(map[string]string, len(params))
	keys := make([]string, 0, len(params))
	for k := range params {
		ek := url.QueryEscape(k)
		keys = append(keys, ek)
		enc[ek] = escapeSDK(params.Get(k))
	}
	return joinParams(keys, func(k string) string { return enc[k] })
}

// joinParams sorts keys and joins them as signatures render parameters:
// "name=value", or "name" alone when the value is empty, '&' between.
func joinParams(keys []string, value func(string) string) string {
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		if v := value(k); v != "" {
			b.WriteString("=" + v)
		}
	}
	return b.String()
}

// escapeSDK is the SDK's encoding of keys and parameter values:
// url.QueryEscape with spaces as %20 rather than '+'.
func escapeSDK(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func splitAdditional(list string) []string {
	if list == "" {
		return nil
	}
	var out []string
	for _, h := range strings.Split(list, ";") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			out = append(out, h)
		}
	}
	return out
}

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func cloneWithout(v url.Values, drop string) url.Values {
	out := make(url.Values, len(v))
	for k, vals := range v {
		if k != drop {
			out[k] = vals
		}
	}
	return out
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
