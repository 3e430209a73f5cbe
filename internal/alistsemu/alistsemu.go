// Package alistsemu owns an in-memory Aliyun STS endpoint for tests:
// AssumeRole (Version 2015-04-01) as an RPC-style API over https, its
// HMAC-SHA1 signature, timestamp and nonce checked, and AssumeRoleWithOIDC
// (RRSA's, unsigned, its token checked), handing out
// short-lived STS keys a test makes the OSS emulator accept. The real
// github.com/aliyun/credentials-go client reaches it with STSEndpoint set
// to its host:port, once the process trusts CAPEM (the client speaks only
// https and uses the system roots: tests set SSL_CERT_FILE in TestMain).
//
// Where it departs from STS: only AssumeRole and AssumeRoleWithOIDC (one
// accepted token per provider, not a JWT checked against its issuer); a role exists when
// Options.Roles names it, its trust policy is only its external ID;
// Policy is ignored; tokens are opaque.
package alistsemu

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oss2s3/oss2s3/internal/faultset"
	"github.com/oss2s3/oss2s3/internal/httpbed"
	"github.com/oss2s3/oss2s3/internal/s3test"
)

// Options configures a Server.
type Options struct {
	// Credentials maps the access keys that may call AssumeRole (RAM
	// users) to their secrets.
	Credentials map[string]string
	// Roles maps the role ARNs that may be assumed
	// (acs:ram::1234567890123456:role/name) to the external ID their trust
	// policy requires ("" for none).
	Roles map[string]string
	// OIDC maps OIDC provider ARNs (acs:ram::...:oidc-provider/ack-rrsa-...)
	// to the one token each accepts in AssumeRoleWithOIDC (RRSA's projected
	// service account token), which is not signed.
	OIDC map[string]string
	// Issued, if set, is called with every set of keys handed out, before
	// the answer: a test makes the OSS emulator accept them.
	Issued func(Credentials)
	// Now stamps expirations. Nil uses time.Now. Signatures' timestamps
	// are checked against the wall clock.
	Now    func() time.Time
	Logger *slog.Logger
	// Certificate is served; nil makes one of a CA of the server's own
	// (CAPEM), which no client trusts unless told. TrustedCertificate
	// makes one the process trusts.
	Certificate *tls.Certificate
}

// Credentials are the keys of one assumed role session.
type Credentials struct {
	AccessKeyID, AccessKeySecret, SecurityToken string
	Expiration                                  time.Time
	RoleARN, SessionName, Caller                string
}

// Server is an in-memory Aliyun STS endpoint; it implements http.Handler.
type Server struct {
	opts  Options
	log   *slog.Logger
	caPEM []byte

	mu     sync.Mutex
	issued []Credentials
	nonces map[string]time.Time

	faults faultset.Set[Fault]
	http   httpbed.Server
}

var _ http.Handler = (*Server)(nil)

// New returns a server.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Credentials, opts.Roles, opts.OIDC = maps.Clone(opts.Credentials), maps.Clone(opts.Roles), maps.Clone(opts.OIDC)
	return &Server{opts: opts, log: opts.Logger, nonces: map[string]time.Time{}}
}

// Start serves https on addr (e.g. "127.0.0.1:0") and returns the
// host:port to give the client as its STS endpoint.
func (s *Server) Start(addr string) (string, error) {
	cert := s.opts.Certificate
	if cert == nil {
		caPEM, certPEM, keyPEM, err := s3test.NewCerts(time.Now())
		if err != nil {
			return "", err
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return "", err
		}
		s.caPEM, cert = caPEM, &c
	}
	endpoint, err := s.http.StartTLS("alistsemu", addr, s, s.log, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
	return strings.TrimPrefix(endpoint, "https://"), err
}

// TrustedCertificate makes a CA and a certificate for 127.0.0.1 signed by
// it, writes the CA into dir and points SSL_CERT_FILE at it, so that the
// https clients of this process that trust the system roots
// (credentials-go's) trust a server given the certificate. Call it from
// TestMain, before any https request: the system roots are read once.
func TrustedCertificate(dir string) (*tls.Certificate, error) {
	caPEM, certPEM, keyPEM, err := s3test.NewCerts(time.Now())
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "alistsemu-ca.pem")
	if err := os.WriteFile(file, caPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.Setenv("SSL_CERT_FILE", file); err != nil {
		return nil, err
	}
	return &cert, nil
}

// CAPEM is the CA of the certificate Start made (nil with
// Options.Certificate).
func (s *Server) CAPEM() []byte { return s.caPEM }

// Close stops the listener. It is idempotent.
func (s *Server) Close() error { return s.http.Close(nil, nil) }

// Issued returns every set of keys handed out, oldest first.
func (s *Server) Issued() []Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Credentials(nil), s.issued...)
}

// Fault is a failure injected on demand for AssumeRole requests.
type Fault struct {
	Skip   int
	Status int    // answered with Code (default "InternalError")
	Code   string // e.g. "Throttling.User"
	Times  int    // 0: every request until ClearFaults
}

// InjectFault adds f.
func (s *Server) InjectFault(f Fault) { s.faults.Add(f, f.Skip, f.Times) }

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

type apiError struct {
	status        int
	code, message string
}

// ServeHTTP serves one RPC request: its parameters in the query and the
// form body alike.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := strings.ToUpper(newID(16))
	out, e := s.serve(r)
	s.log.Debug("aliyun sts request", "error", e != nil)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	if e != nil {
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"RequestId": reqID, "HostId": "sts.aliyuncs.com", "Code": e.code, "Message": e.message})
		return
	}
	out["RequestId"] = reqID
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) serve(r *http.Request) (map[string]any, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return nil, &apiError{400, "InvalidParameter", "cannot read the body"}
	}
	params := r.URL.Query()
	if form, err := url.ParseQuery(string(body)); err == nil {
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	if params.Get("Action") == "AssumeRoleWithOIDC" {
		provider := params.Get("OIDCProviderArn")
		if want, ok := s.opts.OIDC[provider]; !ok || want == "" || params.Get("OIDCToken") != want {
			return nil, &apiError{400, "AuthenticationFail.OIDCToken.Invalid", "The OIDC token or its provider is not valid."}
		}
		params.Del("ExternalId") // a web identity names none
		return s.assumeRole(params, "oidc:"+provider)
	}
	caller, e := s.authenticate(r.Method, params)
	if e != nil {
		return nil, e
	}
	if params.Get("Action") != "AssumeRole" || params.Get("Version") != "2015-04-01" {
		return nil, &apiError{404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."}
	}
	var status int
	var code string
	s.faults.Take(func(f *Fault) bool { return f.Status != 0 }, func(f *Fault) {
		if status == 0 {
			status, code = f.Status, f.Code
		}
	})
	if status != 0 {
		if code == "" {
			code = "InternalError"
		}
		return nil, &apiError{status, code, "Injected fault."}
	}
	return s.assumeRole(params, caller)
}

// authenticate checks the RPC signature: Signature =
// base64(HMAC-SHA1(secret+"&", METHOD+"&%2F&"+pct(canonical query))), the
// canonical query being every other parameter, sorted, percent-encoded.
func (s *Server) authenticate(method string, params url.Values) (string, *apiError) {
	ak := params.Get("AccessKeyId")
	secret, ok := s.opts.Credentials[ak]
	if !ok || ak == "" {
		return "", &apiError{404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."}
	}
	if params.Get("SignatureMethod") != "HMAC-SHA1" || params.Get("SignatureVersion") != "1.0" {
		return "", &apiError{400, "InvalidSignatureMethod", "Specified signature method is not supported."}
	}
	t, err := time.Parse("2006-01-02T15:04:05Z", params.Get("Timestamp"))
	if err != nil {
		return "", &apiError{400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."}
	}
	if d := time.Since(t); d > 15*time.Minute || d < -15*time.Minute {
		return "", &apiError{400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."}
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	pairs := make([]string, 0, len(keys))
	for _, k := range keys {
		pairs = append(pairs, pct(k)+"="+pct(params.Get(k)))
	}
	stringToSign := method + "&%2F&" + pct(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(stringToSign))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(params.Get("Signature"))) {
		return "", &apiError{400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:" + stringToSign}
	}
	nonce := params.Get("SignatureNonce")
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, at := range s.nonces {
		if time.Since(at) > 15*time.Minute {
			delete(s.nonces, n)
		}
	}
	if _, used := s.nonces[nonce]; used || nonce == "" {
		return "", &apiError{400, "SignatureNonceUsed", "Specified signature nonce was used already."}
	}
	s.nonces[nonce] = time.Now()
	return ak, nil
}

// pct percent-encodes as Aliyun's RPC signature wants: RFC 3986, space as
// %20, * as %2A, ~ kept.
func pct(v string) string {
	e := url.QueryEscape(v)
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(e)
}

func (s *Server) assumeRole(params url.Values, caller string) (map[string]any, *apiError) {
	arn, session := params.Get("RoleArn"), params.Get("RoleSessionName")
	if arn == "" || session == "" {
		return nil, &apiError{400, "MissingParameter", "RoleArn and RoleSessionName are mandatory."}
	}
	wantExternal, ok := s.opts.Roles[arn]
	if strings.HasPrefix(caller, "oidc:") {
		wantExternal = ""
	}
	if !ok || params.Get("ExternalId") != wantExternal {
		return nil, &apiError{403, "NoPermission", "You are not authorized to do this action. You should be authorized by RAM."}
	}
	d := 3600
	if v := params.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || n > 43200 {
			return nil, &apiError{400, "InvalidParameter.DurationSeconds", "The parameter DurationSeconds is wrong."}
		}
		d = n
	}
	now := time.Now
	if s.opts.Now != nil {
		now = s.opts.Now
	}
	c := Credentials{AccessKeyID: "STS." + newID(12), AccessKeySecret: newID(16), SecurityToken: newID(32),
		Expiration: now().Add(time.Duration(d) * time.Second).UTC().Truncate(time.Second), RoleARN: arn, SessionName: session, Caller: caller}
	if s.opts.Issued != nil {
		s.opts.Issued(c)
	}
	s.mu.Lock()
	s.issued = append(s.issued, c)
	s.mu.Unlock()
	return map[string]any{
		"AssumedRoleUser": map[string]string{"Arn": strings.Replace(arn, ":role/", ":assumed-role/", 1) + "/" + session,
			"AssumedRoleId": fmt.Sprintf("3%015d:%s", len(s.Issued()), session)},
		"Credentials": map[string]string{"AccessKeyId": c.AccessKeyID, "AccessKeySecret": c.AccessKeySecret,
			"SecurityToken": c.SecurityToken, "Expiration": c.Expiration.Format("2006-01-02T15:04:05Z")},
	}, nil
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
