package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Verifier checks the SigV4 signature in a request's Authorization header
// the way AWS's JSON and query services do (Secrets Manager, STS): the
// credential scope <day>/<region>/<Service>/aws4_request, a known key, a
// request time within 15 minutes of the wall clock (clients sign with the
// real time even when a test drives an emulator's clock), the payload hash
// of the body. A session token (x-amz-security-token) is accepted unchecked
// as long as the signature covers it.
type Verifier struct {
	Service string
	// Region the scope must name; "" accepts any.
	Region string
	// Secret returns the secret access key of an access key.
	Secret func(accessKey string) (string, bool)
}

// Failure says why a signature was refused; each service names it its own way.
type Failure int

// The failures, in the order a request is checked.
const (
	MissingAuthentication Failure = iota + 1 // no Authorization header
	IncompleteSignature                      // a malformed header, scope or date
	UnknownKey                               // the access key is not Secret's
	BadSignature                             // wrong signature, service, region, payload or time
)

// Error is a refused signature.
type Error struct {
	Failure Failure
	Message string
}

func (e *Error) Error() string { return e.Message }

const (
	algorithm  = "AWS4-HMAC-SHA256"
	timeFormat = "20060102T150405Z"
	dayFormat  = "20060102"
	maxSkew    = 15 * time.Minute
)

// Verify checks r, whose body is body, and returns the access key that
// signed it.
func (v Verifier) Verify(r *http.Request, body []byte) (string, *Error) {
	fields, e := authorizationFields(r.Header.Get("Authorization"))
	if e != nil {
		return "", e
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return "", &Error{IncompleteSignature, "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term."}
	}
	ak, day, region, service := scope[0], scope[1], scope[2], scope[3]
	secret, ok := v.Secret(ak)
	if !ok || ak == "" {
		return "", &Error{UnknownKey, "The security token included in the request is invalid."}
	}
	if service != v.Service {
		return "", &Error{BadSignature, "Credential should be scoped to correct service: '" + v.Service + "'."}
	}
	if v.Region != "" && region != v.Region {
		return "", &Error{BadSignature, "Credential should be scoped to a valid region, not '" + region + "'."}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if e := checkTime(amzDate, day); e != nil {
		return "", e
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !slices.Contains(signed, "host") {
		return "", &Error{BadSignature, "'Host' must be a 'SignedHeader' in the AWS Authorization."}
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		return "", &Error{BadSignature, "The provided 'x-amz-content-sha256' header does not match what was computed."}
	}
	key := hmacSHA256([]byte("AWS4"+secret), day)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, "aws4_request")
	uri := r.URL.EscapedPath()
	if uri == "" {
		uri = "/"
	}
	canonical := r.Method + "\n" + URIEncode(uri, false) + "\n" + CanonicalQuery(r.URL.Query()) + "\n" +
		CanonicalHeaders(r, signed) + "\n" + fields["SignedHeaders"] + "\n" + payload
	csum := sha256.Sum256([]byte(canonical))
	sts := algorithm + "\n" + amzDate + "\n" + day + "/" + region + "/" + service + "/aws4_request\n" + hex.EncodeToString(csum[:])
	if !hmac.Equal([]byte(hex.EncodeToString(hmacSHA256(key, sts))), []byte(fields["Signature"])) {
		return "", &Error{BadSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return ak, nil
}

// authorizationFields returns Credential, SignedHeaders and Signature of
// an Authorization header, each of them present.
func authorizationFields(auth string) (map[string]string, *Error) {
	if auth == "" {
		return nil, &Error{MissingAuthentication, "Request is missing Authentication Token"}
	}
	rest, ok := strings.CutPrefix(auth, algorithm+" ")
	if !ok {
		return nil, &Error{IncompleteSignature, "Authorization header requires the " + algorithm + " algorithm."}
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = val
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			return nil, &Error{IncompleteSignature, "Authorization header requires '" + k + "' parameter."}
		}
	}
	return fields, nil
}

// checkTime checks X-Amz-Date against the wall clock and the scope's day.
func checkTime(amzDate, day string) *Error {
	t, err := time.Parse(timeFormat, amzDate)
	if err != nil {
		return &Error{IncompleteSignature, "Authorization requires a valid X-Amz-Date header."}
	}
	if d := time.Since(t); d > maxSkew || d < -maxSkew {
		return &Error{BadSignature, "Signature expired: " + amzDate + " is not within 15 minutes of the server's time."}
	}
	if t.Format(dayFormat) != day {
		return &Error{BadSignature, "Date in Credential scope does not match YYYYMMDD from X-Amz-Date."}
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
