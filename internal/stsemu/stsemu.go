// Package stsemu owns an in-memory AWS STS endpoint for tests: AssumeRole
// over the AWS Query protocol, its SigV4 signatures checked, and
// AssumeRoleWithWebIdentity (unsigned, as IRSA's), handing out
// short-lived keys a test can make another test bed accept. The real
// aws-sdk-go-v2 STS client (and stscreds) reaches it unchanged but for
// BaseEndpoint and credentials.
//
// Where it departs from STS: only AssumeRole and AssumeRoleWithWebIdentity
// (one accepted token, not a JWT checked against a provider); a role exists when
// Options.Roles names it, and its trust policy is only its external ID;
// session tokens are opaque and not checked by anyone.
package stsemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oss2s3/oss2s3/internal/faultset"
	"github.com/oss2s3/oss2s3/internal/httpbed"
	"github.com/oss2s3/oss2s3/internal/sigv4"
)

// Options configures a Server.
type Options struct {
	// Credentials maps the access keys that may call STS to their
	// secrets; every request must carry a SigV4 signature for service
	// "sts" by one of them.
	Credentials map[string]string
	// Roles maps role ARNs that may be assumed to the external ID their
	// trust policy requires ("" for none). Another ARN is AccessDenied.
	Roles map[string]string
	// Duration is how long the handed-out keys last when the request does
	// not say (STS's default: 1h).
	Duration time.Duration
	// WebIdentityToken is the one token AssumeRoleWithWebIdentity accepts
	// (IRSA's projected token); "" refuses every one.
	WebIdentityToken string
	// Issued, if set, is called with every set of keys handed out, before
	// the answer is sent: a test makes its S3 test bed accept them.
	Issued func(Credentials)
	// Logger receives one debug record per request. Nil discards.
	Logger *slog.Logger
	// Now stamps expirations. Nil uses time.Now.
	Now func() time.Time
}

// Credentials are the keys of one assumed role session.
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expiration                                 time.Time
	RoleARN, SessionName, Caller               string
}

// Server is an in-memory STS endpoint; it implements http.Handler.
type Server struct {
	opts   Options
	log    *slog.Logger
	verify sigv4.Verifier

	mu     sync.Mutex
	issued []Credentials

	faults faultset.Set[Fault]
	http   httpbed.Server
}

var _ http.Handler = (*Server)(nil)

// New returns a server.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Duration == 0 {
		opts.Duration = time.Hour
	}
	opts.Credentials, opts.Roles = maps.Clone(opts.Credentials), maps.Clone(opts.Roles)
	creds := opts.Credentials
	return &Server{opts: opts, log: opts.Logger, verify: sigv4.Verifier{Service: "sts", Secret: func(ak string) (string, bool) {
		sk, ok := creds[ak]
		return sk, ok
	}}}
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in a goroutine;
// it returns the endpoint to give the client as BaseEndpoint.
func (s *Server) Start(addr string) (string, error) { return s.http.Start("stsemu", addr, s, s.log) }

// Close stops the listener if Start was called. It is idempotent.
func (s *Server) Close() error { return s.http.Close(nil, nil) }

// Issued returns every set of keys handed out, oldest first.
func (s *Server) Issued() []Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Credentials(nil), s.issued...)
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// Fault is a failure injected on demand for AssumeRole requests.
type Fault struct {
	Skip    int
	Status  int    // answered with Code (default "InternalFailure")
	Code    string // e.g. "Throttling", "RegionDisabledException"
	Latency time.Duration
	Times   int // 0: every request until ClearFaults
}

// InjectFault adds f.
func (s *Server) InjectFault(f Fault) { s.faults.Add(f, f.Skip, f.Times) }

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

type apiError struct {
	status        int
	code, message string
}

// ServeHTTP serves one Query protocol request: POST, form body
// Action=AssumeRole&Version=2011-06-15&....
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newID(16)
	out, e := s.serve(r)
	s.log.Debug("sts request", "error", e != nil)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", reqID)
	if e != nil {
		w.WriteHeader(e.status)
		_ = xml.NewEncoder(w).Encode(errorResponse{Error: errorBody{Type: "Sender", Code: e.code, Message: e.message}, RequestID: reqID})
		return
	}
	out.Metadata.RequestID = reqID
	_ = xml.NewEncoder(w).Encode(out)
}

func (s *Server) serve(r *http.Request) (*assumeRoleResponse, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return nil, &apiError{400, "MalformedInput", "cannot read the body"}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || r.Method != http.MethodPost {
		return nil, &apiError{400, "MalformedInput", "want a POST with a form body"}
	}
	action := form.Get("Action")
	if action != "AssumeRole" && action != "AssumeRoleWithWebIdentity" {
		return nil, &apiError{400, "InvalidAction", "The emulator serves only AssumeRole and AssumeRoleWithWebIdentity."}
	}
	caller := "web-identity"
	if action == "AssumeRole" {
		var ve *sigv4.Error
		if caller, ve = s.verify.Verify(r, body); ve != nil {
			return nil, signatureError(ve)
		}
	} else if s.opts.WebIdentityToken == "" || form.Get("WebIdentityToken") != s.opts.WebIdentityToken {
		return nil, &apiError{400, "InvalidIdentityToken", "The web identity token that was passed could not be validated."}
	}
	if e := s.takeFaults(r.Context()); e != nil {
		return nil, e
	}
	out, e := s.assumeRole(form, caller)
	if e == nil && action == "AssumeRoleWithWebIdentity" {
		out.XMLName.Local, out.Result.XMLName.Local = "AssumeRoleWithWebIdentityResponse", "AssumeRoleWithWebIdentityResult"
	}
	return out, e
}

func signatureError(e *sigv4.Error) *apiError {
	switch e.Failure {
	case sigv4.MissingAuthentication:
		return &apiError{403, "MissingAuthenticationToken", e.Message}
	case sigv4.IncompleteSignature:
		return &apiError{400, "IncompleteSignature", e.Message}
	case sigv4.UnknownKey:
		return &apiError{403, "InvalidClientTokenId", e.Message}
	}
	return &apiError{403, "SignatureDoesNotMatch", e.Message}
}

func (s *Server) assumeRole(form url.Values, caller string) (*assumeRoleResponse, *apiError) {
	arn, session := form.Get("RoleArn"), form.Get("RoleSessionName")
	if arn == "" || session == "" {
		return nil, &apiError{400, "ValidationError", "RoleArn and RoleSessionName are required."}
	}
	wantExternal, ok := s.opts.Roles[arn]
	if caller == "web-identity" {
		wantExternal = "" // a web identity names no external ID
	}
	if !ok || form.Get("ExternalId") != wantExternal {
		return nil, &apiError{403, "AccessDenied", "User: " + caller + " is not authorized to perform: sts:AssumeRole on resource: " + arn}
	}
	d := s.opts.Duration
	if v := form.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || n > 43200 {
			return nil, &apiError{400, "ValidationError", "DurationSeconds must be between 900 and 43200."}
		}
		d = time.Duration(n) * time.Second
	}
	c := Credentials{AccessKeyID: "ASIA" + strings.ToUpper(newID(8)), SecretAccessKey: newID(20), SessionToken: newID(32),
		Expiration: s.now().Add(d).UTC().Truncate(time.Second), RoleARN: arn, SessionName: session, Caller: caller}
	if s.opts.Issued != nil {
		s.opts.Issued(c)
	}
	s.mu.Lock()
	s.issued = append(s.issued, c)
	s.mu.Unlock()
	out := &assumeRoleResponse{}
	out.XMLName = xml.Name{Space: stsNamespace, Local: "AssumeRoleResponse"}
	out.Result.XMLName.Local = "AssumeRoleResult"
	out.Result.Credentials = xmlCredentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey,
		SessionToken: c.SessionToken, Expiration: c.Expiration.Format(time.RFC3339)}
	out.Result.User.Arn = strings.Replace(strings.Replace(arn, ":iam::", ":sts::", 1), ":role/", ":assumed-role/", 1) + "/" + session
	out.Result.User.AssumedRoleID = "AROA" + strings.ToUpper(newID(8)) + ":" + session
	return out, nil
}

func (s *Server) takeFaults(ctx context.Context) *apiError {
	var out faultset.Outcome
	s.faults.Take(func(f *Fault) bool { return f.Status != 0 || f.Latency > 0 }, func(f *Fault) {
		code := f.Code
		if code == "" && f.Status != 0 {
			code = "InternalFailure"
		}
		out.Add(f.Status, code, f.Latency)
	})
	if err := out.Wait(ctx); err != nil {
		return &apiError{503, "RequestCanceled", err.Error()}
	}
	if out.Status != 0 {
		return &apiError{out.Status, out.Code, "Injected fault."}
	}
	return nil
}

type assumeRoleResponse struct {
	XMLName xml.Name // AssumeRoleResponse or AssumeRoleWithWebIdentityResponse, in stsNamespace
	Result  struct {
		XMLName     xml.Name
		Credentials xmlCredentials `xml:"Credentials"`
		User        struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
	}
	Metadata struct {
		RequestID string `xml:"RequestId"`
	} `xml:"ResponseMetadata"`
}

const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

type xmlCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type errorResponse struct {
	XMLName   xml.Name  `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Error     errorBody `xml:"Error"`
	RequestID string    `xml:"RequestId"`
}

type errorBody struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
