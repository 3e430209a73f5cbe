// Package mns owns the endpoint side of an Alibaba Cloud MNS (Simple Message
// Queue) topic HTTP push subscription: verifying the RSA-SHA1 signature MNS
// puts on every push (Verifier), and decoding the pushed body, in the XML,
// JSON or SIMPLIFIED format, into the OSS event document it carries
// (ParseNotification).
//
// It is a pure library: no routing. The gateway's handler calls Verify, then
// ParseNotification, and answers as MNS expects
// (https://www.alibabacloud.com/help/en/mns/httpendpoint): 204 within 5 s when
// the message is taken, 403 when the signature does not verify, 500 (MNS
// retries) for anything else.
//
// Verified against Alibaba Cloud's documentation and captured pushes:
//   - signature: https://help.aliyun.com/en/mns/developer-reference/topic-message-http-subscription-signature
//     and https://www.alibabacloud.com/help/doc-detail/27488.htm
//   - push request and body formats: https://www.alibabacloud.com/help/en/mns/httpendpoint
//     and https://www.alibabacloud.com/help/en/mns/developer-reference/notifycontentformat
//   - certificate URL prefixes: https://alibabacloud.com/help/en/mns/support/how-to-check-whether-the-url-of-a-public-key-certificate-is-provided-by-alibaba-cloud
//   - a real push (certificate, string to sign, signature) pinned in
//     rsa_internal_test.go, and the official Go SDK's endpoint example
//     (github.com/aliyun/aliyun-mns-go-sdk, example/http_authorization.go).
//
// A caveat the documentation does not mention: MNS signs with a 512-bit RSA
// key, which can be factored with modest means, after which pushes can be
// forged. The signature keeps out casual forgeries; an endpoint that matters
// should also carry a secret MNS repeats on every push, such as a random
// path segment in the subscription's endpoint URL.
package mns

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// Headers MNS sets on a push.
const (
	HeaderCertURL = "X-Mns-Signing-Cert-Url" // Base64 of the certificate URL
	HeaderDate    = "X-Mns-Date"             // stands in for Date when Date is absent
)

// Defaults used when the matching Verifier field is zero.
const (
	DefaultCacheTTL      = 24 * time.Hour
	DefaultFailureTTL    = time.Minute // a URL that could not be fetched is not tried again for this long
	DefaultMaxFetches    = 2           // certificate downloads at once
	DefaultMaxCerts      = 16
	DefaultFetchTimeout  = 3 * time.Second // MNS wants an answer within 5 s
	DefaultMaxCertBytes  = 64 << 10
	DefaultDateTolerance = 15 * time.Minute // MNS's own validity window for Date
	// DefaultMinRSABits is what MNS signs with: the certificate it serves
	// (pinned in rsa_internal_test.go, seen on a push in 2023) holds a
	// 512-bit key.
	DefaultMinRSABits = 512
)

// Errors returned by Verify, each wrapped with the detail. The gateway
// answers 403 for all of them except ErrCertFetch, which is our failure to
// reach Alibaba Cloud: answer 500 so that MNS pushes again later.
var (
	// ErrMissingSignature: no Authorization or x-mns-signing-cert-url header.
	ErrMissingSignature = errors.New("missing MNS signature")
	// ErrBadSignature: the signature is malformed or does not verify.
	ErrBadSignature = errors.New("MNS signature does not verify")
	// ErrCertHostNotAllowed: the certificate URL is not https on an allowed
	// host. Nothing was fetched.
	ErrCertHostNotAllowed = errors.New("MNS signing certificate URL not allowed")
	// ErrCertFetch: the certificate could not be downloaded.
	ErrCertFetch = errors.New("cannot fetch MNS signing certificate")
	// ErrBadCert: the downloaded certificate is unusable (not PEM/X.509,
	// not RSA, key too small, or outside its validity with CheckValidity).
	ErrBadCert = errors.New("unusable MNS signing certificate")
	// ErrStaleRequest: Date is missing, malformed or outside DateTolerance.
	ErrStaleRequest = errors.New("MNS request date missing or outside the allowed window")
	// ErrBodyMismatch: Content-MD5 is missing or does not match the body, so
	// the signature (which covers Content-MD5, not the body) does not
	// vouch for it.
	ErrBodyMismatch = errors.New("body does not match its signed Content-MD5")
)

// Regions are the Alibaba Cloud regions whose
// https://mns-cert.oss-<region>.aliyuncs.com/ DefaultAllowedHost accepts:
// the public-cloud regions OSS runs in (Alibaba Cloud's region tables,
// 2026), finance clouds included. A region added later needs
// mns.cert_host_pattern until this list has it.
var Regions = []string{
	"cn-hangzhou", "cn-shanghai", "cn-qingdao", "cn-beijing", "cn-zhangjiakou", "cn-huhehaote",
	"cn-wulanchabu", "cn-shenzhen", "cn-heyuan", "cn-guangzhou", "cn-chengdu", "cn-nanjing",
	"cn-fuzhou", "cn-wuhan-lr", "cn-hongkong",
	"cn-shanghai-finance-1", "cn-shenzhen-finance-1", "cn-beijing-finance-1",
	"ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
	"ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ap-southeast-8", "ap-south-1",
	"us-west-1", "us-east-1", "na-south-1", "eu-central-1", "eu-west-1", "me-east-1", "me-central-1",
}

// defaultHost matches the hosts Alibaba Cloud documents as serving MNS
// signing certificates: https://mns-cert.oss-<region>.aliyuncs.com/ for a
// region of Regions, and the older
// https://mnstest.oss-cn-hangzhou.aliyuncs.com/, which every captured push
// so far has used. Both are buckets Alibaba Cloud owns. Any other label
// ("mns-cert.oss-anything-i-like") is refused: it would let a request
// make the gateway fetch from a name nobody checked. An explicit port is
// refused too.
var defaultHost = regexp.MustCompile(`^(?:mns-cert\.oss-(?:` + strings.Join(Regions, "|") + `)|mnstest\.oss-cn-hangzhou)\.aliyuncs\.com$`)

// DefaultAllowedHost is the allow-list used when Verifier.AllowedHost is
// nil. host is the URL's host, with the port if the URL has one.
func DefaultAllowedHost(host string) bool { return defaultHost.MatchString(host) }

// HostPattern compiles a host allow-list from a regular expression matched
// against the whole host (with its port, if the URL has one): the pattern is
// anchored at both ends. The gateway reads it from configuration, e.g.
// `mns.cert_host_pattern: '127\.0\.0\.1:[0-9]+'` to let tests (and the OSS
// emulator) serve certificates from a local TLS server; empty means
// DefaultAllowedHost. The scheme must be https whatever the pattern.
func HostPattern(pattern string) (func(host string) bool, error) {
	if pattern == "" {
		return DefaultAllowedHost, nil
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return nil, fmt.Errorf("MNS certificate host pattern: %w", err)
	}
	return re.MatchString, nil
}

// Verifier checks the signature MNS puts on an HTTP push. The zero value is
// ready to use with the defaults; set fields before the first Verify and do
// not copy a Verifier after that (it holds the certificate cache).
type Verifier struct {
	// AllowedHost says whether a certificate may be fetched from host (the
	// URL's host, with its port if any). Nil: DefaultAllowedHost. Only https
	// URLs are ever fetched.
	AllowedHost func(host string) bool
	// Client fetches certificates. Nil: a client with Go's default
	// transport. Redirects are never followed.
	Client *http.Client
	// CacheTTL is how long a fetched certificate is reused. MNS gives a new
	// certificate a new URL, so the cache is keyed by URL.
	CacheTTL time.Duration
	// FailureTTL is how long a URL whose download failed answers with that
	// failure before it is tried again, so that requests naming a URL that
	// does not serve a certificate cost one download, not one each.
	FailureTTL time.Duration
	// MaxFetches bounds the certificate downloads in flight at once. A
	// request that would start one more waits for a slot as long as its
	// context allows, then fails with ErrCertFetch. MNS uses one
	// certificate, downloaded once a CacheTTL; many downloads at once are
	// requests naming URLs of their own choosing.
	MaxFetches int
	// MaxCerts bounds the cache; the entry closest to expiry is dropped.
	MaxCerts int
	// Now is the clock for Date and validity checks. Nil: time.Now.
	Now func() time.Time
	// FetchTimeout bounds one certificate download.
	FetchTimeout time.Duration
	// MaxCertBytes bounds the size of a downloaded certificate.
	MaxCertBytes int64
	// DateTolerance is how far Date may be from Now, either way, as Alibaba
	// Cloud recommends against replays. Negative disables the check.
	DateTolerance time.Duration
	// CheckValidity rejects certificates outside NotBefore..NotAfter. Off by
	// default: the certificate MNS signs with expired on 2016-07-01 and was
	// still in use in 2023.
	CheckValidity bool
	// MinRSABits is the smallest RSA key accepted (default 512, what MNS
	// uses). Keys below 1024 bits are verified by this package, because
	// crypto/rsa refuses them since Go 1.24 (GODEBUG rsa1024min).
	MinRSABits int
	// AllowMissingContentMD5 accepts a non-empty body without Content-MD5.
	// The signature then covers the headers only, not the body. Every push
	// Alibaba Cloud documents carries Content-MD5, so leave it off.
	AllowMissingContentMD5 bool

	mu      sync.Mutex
	cache   map[string]*certEntry
	fetches *semaphore.Weighted // made with the cache
}

type certEntry struct {
	ready   chan struct{} // closed when cert and err are set
	cert    *x509.Certificate
	err     error
	expires time.Time
}

// Verify checks an MNS push: method and path as received (pass
// r.Method and r.RequestURI), its headers and its body. It returns nil if
// the Authorization header is an RSA-SHA1 signature, by the certificate at
// the x-mns-signing-cert-url URL, of StringToSign(method, path, h), and the
// body matches the signed Content-MD5.
//
// Cheap checks run first, so that junk never causes a download: headers
// present, certificate URL allowed, Date fresh, Content-MD5 matching. Then
// the certificate is fetched (or taken from the cache) and the signature
// verified. When the path has a query and the signature does not verify,
// the path without the query is tried: Alibaba's samples disagree on whether
// the query is signed (Java's getRequestURI drops it, .NET's RawUrl keeps it),
// and the query is then not covered by the signature.
func (v *Verifier) Verify(ctx context.Context, method, path string, h http.Header, body []byte) error {
	sigB64 := h.Get("Authorization")
	if sigB64 == "" {
		return fmt.Errorf("%w: no Authorization header", ErrMissingSignature)
	}
	certB64 := h.Get(HeaderCertURL)
	if certB64 == "" {
		return fmt.Errorf("%w: no x-mns-signing-cert-url header", ErrMissingSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("%w: Authorization is not Base64", ErrBadSignature)
	}
	certURL, err := v.certURL(certB64)
	if err != nil {
		return err
	}
	if err := v.checkDate(h); err != nil {
		return err
	}
	if err := v.checkBody(h, body); err != nil {
		return err
	}
	cert, err := v.certificate(ctx, certURL)
	if err != nil {
		return err
	}
	// Checked on every use, not at download: a cached certificate can
	// expire.
	if v.CheckValidity {
		if now := v.now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
			return fmt.Errorf("%w: valid from %s to %s, not at %s", ErrBadCert,
				cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	pub := cert.PublicKey.(*rsa.PublicKey) // parseCert admits RSA only
	if err := verifyPKCS1v15SHA1(pub, []byte(StringToSign(method, path, h)), sig); err == nil {
		return nil
	}
	if p, _, hasQuery := strings.Cut(path, "?"); hasQuery {
		if verifyPKCS1v15SHA1(pub, []byte(StringToSign(method, p, h)), sig) == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: signature does not match the request", ErrBadSignature)
}

// StringToSign is what MNS signs for a push, per Alibaba Cloud's
// documentation:
//
//	METHOD + "\n" + Content-MD5 + "\n" + Content-Type + "\n" + Date + "\n"
//	+ CanonicalizedMNSHeaders + CanonicalizedResource
//
// where Date is the x-mns-date header when Date is absent,
// CanonicalizedMNSHeaders is every x-mns-* header, x-mns-signing-cert-url
// included, as "lower-case-name:value\n" sorted by name, and
// CanonicalizedResource is the request path. Absent headers count as "".
func StringToSign(method, path string, h http.Header) string {
	date := h.Get("Date")
	if date == "" {
		date = h.Get(HeaderDate)
	}
	var mnsHeaders []string
	for k, vs := range h {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-mns-") {
			mnsHeaders = append(mnsHeaders, lk+":"+strings.Join(vs, ","))
		}
	}
	sort.Strings(mnsHeaders)
	var b strings.Builder
	b.WriteString(strings.ToUpper(method) + "\n")
	b.WriteString(h.Get("Content-MD5") + "\n")
	b.WriteString(h.Get("Content-Type") + "\n")
	b.WriteString(date + "\n")
	for _, l := range mnsHeaders {
		b.WriteString(l + "\n")
	}
	b.WriteString(path)
	return b.String()
}

// certURL decodes the certificate URL and refuses it, before anything is
// fetched, unless it is https on an allowed host.
func (v *Verifier) certURL(b64 string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("%w: x-mns-signing-cert-url is not Base64", ErrBadSignature)
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a URL", ErrCertHostNotAllowed, raw)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("%w: scheme %q of %s (only https)", ErrCertHostNotAllowed, u.Scheme, u.Redacted())
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: %s has user information", ErrCertHostNotAllowed, u.Redacted())
	}
	allowed := v.AllowedHost
	if allowed == nil {
		allowed = DefaultAllowedHost
	}
	if u.Host == "" || !allowed(u.Host) {
		return "", fmt.Errorf("%w: host %q", ErrCertHostNotAllowed, u.Host)
	}
	return u.String(), nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// DateWindow is how far from now a push's Date may be for Verify to accept
// it, either way: a push is accepted again, if replayed, until its Date
// plus the window. 0 when Date is not checked (DateTolerance < 0).
func (v *Verifier) DateWindow() time.Duration {
	switch {
	case v.DateTolerance < 0:
		return 0
	case v.DateTolerance == 0:
		return DefaultDateTolerance
	}
	return v.DateTolerance
}

// SignedAt returns the Date (or x-mns-date) of a push, the time MNS signed
// it at.
func SignedAt(h http.Header) (time.Time, bool) {
	s := h.Get("Date")
	if s == "" {
		s = h.Get(HeaderDate)
	}
	t, err := http.ParseTime(s)
	return t, err == nil
}

func (v *Verifier) checkDate(h http.Header) error {
	tol := v.DateWindow()
	if tol == 0 {
		return nil
	}
	s := h.Get("Date")
	if s == "" {
		s = h.Get(HeaderDate)
	}
	if s == "" {
		return fmt.Errorf("%w: no Date header", ErrStaleRequest)
	}
	t, err := http.ParseTime(s)
	if err != nil {
		return fmt.Errorf("%w: Date %q is not an HTTP date", ErrStaleRequest, s)
	}
	if d := v.now().Sub(t); d > tol || d < -tol {
		return fmt.Errorf("%w: Date %q is %s away from now (allowed %s)", ErrStaleRequest, s, d.Round(time.Second), tol)
	}
	return nil
}

// checkBody binds the body to the signature through Content-MD5. MNS writes
// the MD5 in more than one way: upper-case hex in captured pushes
// ("4CCBAD7AF2D23C2D00DDECCA59323A8C"), Base64 of lower-case hex in the
// documentation's examples and the SDKs ("ZDgxNjY5ZjFl..."); RFC 1864's
// Base64 of the 16 bytes is accepted too.
func (v *Verifier) checkBody(h http.Header, body []byte) error {
	got := h.Get("Content-MD5")
	if got == "" {
		if len(body) == 0 || v.AllowMissingContentMD5 {
			return nil
		}
		return fmt.Errorf("%w: no Content-MD5 header", ErrBodyMismatch)
	}
	if !md5Matches(got, body) {
		return fmt.Errorf("%w: Content-MD5 %q", ErrBodyMismatch, got)
	}
	return nil
}

func md5Matches(header string, body []byte) bool {
	sum := md5.Sum(body)
	hexSum := hex.EncodeToString(sum[:])
	if strings.EqualFold(header, hexSum) {
		return true
	}
	dec, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return false
	}
	return bytes.Equal(dec, sum[:]) || strings.EqualFold(string(dec), hexSum)
}

// certificate returns the certificate from the cache, or fetches it.
// Concurrent requests for one URL share one download; a failed download
// is remembered for FailureTTL; at most MaxFetches downloads run at once.
func (v *Verifier) certificate(ctx context.Context, certURL string) (*x509.Certificate, error) {
	now := v.now()
	v.mu.Lock()
	if v.cache == nil {
		v.cache = make(map[string]*certEntry)
		v.fetches = semaphore.NewWeighted(int64(orDefault(v.MaxFetches, DefaultMaxFetches)))
	}
	if e, ok := v.cache[certURL]; ok {
		select {
		case <-e.ready:
			if now.Before(e.expires) {
				v.mu.Unlock()
				return e.cert, e.err
			}
		default:
			v.mu.Unlock()
			select {
			case <-e.ready:
				return e.cert, e.err
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %w", ErrCertFetch, ctx.Err())
			}
		}
	}
	v.evictLocked(now)
	e := &certEntry{ready: make(chan struct{})}
	v.cache[certURL] = e
	fetches := v.fetches
	v.mu.Unlock()

	var cert *x509.Certificate
	var err error
	acquired := fetches.Acquire(ctx, 1) == nil
	if acquired {
		cert, err = v.fetch(ctx, certURL)
		fetches.Release(1)
	} else {
		err = fmt.Errorf("%w: %d downloads in flight, none finished in time: %w", ErrCertFetch, orDefault(v.MaxFetches, DefaultMaxFetches), ctx.Err())
	}
	v.mu.Lock()
	e.cert, e.err = cert, err
	switch {
	case !acquired:
		// Nothing was learnt about the URL: the next request tries it.
		if v.cache[certURL] == e {
			delete(v.cache, certURL)
		}
	case err == nil:
		e.expires = now.Add(orDefault(v.CacheTTL, DefaultCacheTTL))
	default:
		// Remembered, so that a URL that serves no certificate costs one
		// download per FailureTTL however often requests name it.
		e.expires = v.now().Add(orDefault(v.FailureTTL, DefaultFailureTTL))
	}
	v.mu.Unlock()
	close(e.ready)
	return cert, err
}

func orDefault[T time.Duration | int](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// evictLocked makes room for one entry: it drops expired entries, then the
// completed entry that expires first. Downloads in flight are never dropped,
// so the cache may briefly hold more than MaxCerts while they finish.
func (v *Verifier) evictLocked(now time.Time) {
	max := v.MaxCerts
	if max <= 0 {
		max = DefaultMaxCerts
	}
	var oldest string
	var oldestAt time.Time
	for u, e := range v.cache {
		select {
		case <-e.ready:
		default:
			continue
		}
		if !now.Before(e.expires) {
			delete(v.cache, u)
			continue
		}
		if oldest == "" || e.expires.Before(oldestAt) {
			oldest, oldestAt = u, e.expires
		}
	}
	if len(v.cache) >= max && oldest != "" {
		delete(v.cache, oldest)
	}
}

// fetch downloads and parses the certificate. The download is detached from
// the caller's cancellation (other requests may be waiting for it) but not
// from FetchTimeout.
func (v *Verifier) fetch(ctx context.Context, certURL string) (*x509.Certificate, error) {
	timeout := v.FetchTimeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, certURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCertFetch, err)
	}
	client := http.Client{}
	if v.Client != nil {
		client = *v.Client
	}
	// A redirect could lead anywhere: the allow-list covers the first URL
	// only, so none is followed.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCertFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: %s", ErrCertFetch, certURL, resp.Status)
	}
	limit := v.MaxCertBytes
	if limit <= 0 {
		limit = DefaultMaxCertBytes
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrCertFetch, certURL, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: GET %s: larger than %d bytes", ErrCertFetch, certURL, limit)
	}
	return v.parseCert(data)
}

// parseCert takes the first PEM CERTIFICATE block (or DER, if the data is
// not PEM) and checks it holds a large enough RSA key. Nothing chains to a
// root: the certificate MNS uses is self-signed, so trust comes from
// fetching it over verified TLS from an allowed host.
func (v *Verifier) parseCert(data []byte) (*x509.Certificate, error) {
	der := data
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			der = b.Bytes
			break
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCert, err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: key is %T, want RSA", ErrBadCert, cert.PublicKey)
	}
	minBits := v.MinRSABits
	if minBits <= 0 {
		minBits = DefaultMinRSABits
	}
	if n := pub.N.BitLen(); n < minBits {
		return nil, fmt.Errorf("%w: %d-bit RSA key, want at least %d", ErrBadCert, n, minBits)
	}
	return cert, nil
}
