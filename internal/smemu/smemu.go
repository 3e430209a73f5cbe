// Package smemu owns an in-memory AWS Secrets Manager endpoint for tests:
// GetSecretValue over the AWS JSON 1.1 protocol, its SigV4 signatures
// checked, secret versions with the AWSCURRENT and AWSPREVIOUS stages,
// rotation and faults on demand. The real aws-sdk-go-v2 client reaches it
// unchanged but for BaseEndpoint and credentials:
//
//	srv := smemu.New(smemu.Options{Credentials: map[string]string{"AK": "SK"}})
//	endpoint, _ := srv.Start("127.0.0.1:0")
//	srv.Rotate("dth-oss-credentials", `{"access_key_id":"...","secret_access_key":"..."}`)
//	client := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(endpoint) })
//
// Where it departs from Secrets Manager: only GetSecretValue is served
// (other operations answer UnknownOperationException; secrets are written
// with the Go API), only SecretString values, no KMS, no resource
// policies, and old versions are kept forever (AWS removes versions with
// no stage after a while).
package smemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/oss2s3/oss2s3/internal/faultset"
	"github.com/oss2s3/oss2s3/internal/httpbed"
	"github.com/oss2s3/oss2s3/internal/sigv4"
)

// Options configures a Server.
type Options struct {
	// Credentials maps access key IDs to secret access keys. When it is
	// non-empty every request must carry a SigV4 signature by one of them
	// for service "secretsmanager" (see sigv4.Verifier); otherwise
	// signatures are not checked.
	Credentials map[string]string
	// Region is the region signatures must be scoped to and the region of
	// secret ARNs; "" accepts any and writes us-east-1 into ARNs.
	Region string
	// Logger receives one debug record per request. Nil discards.
	Logger *slog.Logger
	// Now stamps versions' CreatedDate. Nil uses time.Now.
	Now func() time.Time
}

// Account is the AWS account of every secret ARN.
const Account = "000000000000"

// The staging labels Secrets Manager moves on rotation.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
)

const (
	contentType  = "application/x-amz-json-1.1"
	targetPrefix = "secretsmanager."
	maxBody      = 1 << 20
)

// Server is an in-memory Secrets Manager endpoint. It implements
// http.Handler; Start serves it on a listener of its own.
type Server struct {
	opts   Options
	log    *slog.Logger
	region string
	verify sigv4.Verifier

	mu       sync.Mutex
	secrets  map[string]*secret // by name
	requests map[string]int

	faults faultset.Set[Fault]
	http   httpbed.Server
}

var _ http.Handler = (*Server)(nil)

type secret struct {
	name, arn string
	versions  map[string]*version
}

type version struct {
	id      string
	value   string
	created time.Time
	stages  []string
}

// New returns a server with no secrets.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	region := opts.Region
	if region == "" {
		region = "us-east-1"
	}
	creds := maps.Clone(opts.Credentials)
	opts.Credentials = creds
	s := &Server{opts: opts, log: log, region: region, secrets: map[string]*secret{}, requests: map[string]int{}}
	s.verify = sigv4.Verifier{Service: "secretsmanager", Region: opts.Region, Secret: func(ak string) (string, bool) {
		sk, ok := creds[ak]
		return sk, ok
	}}
	return s
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in a goroutine;
// it returns the endpoint to give the client as BaseEndpoint.
func (s *Server) Start(addr string) (string, error) { return s.http.Start("smemu", addr, s, s.log) }

// Close stops the listener if Start was called. It is idempotent.
func (s *Server) Close() error { return s.http.Close(nil, nil) }

// Rotate stores value as a new version of the secret name (creating the
// secret if need be) and returns its version ID: the new version becomes
// AWSCURRENT, the version that was current becomes AWSPREVIOUS, as a
// rotation (or PutSecretValue) does.
func (s *Server) Rotate(name, value string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[name]
	if sec == nil {
		sec = &secret{name: name, arn: fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.region, Account, name, randomHex(3)),
			versions: map[string]*version{}}
		s.secrets[name] = sec
	}
	for _, v := range sec.versions {
		switch {
		case hasStage(v, StagePrevious):
			v.stages = without(v.stages, StagePrevious)
		case hasStage(v, StageCurrent):
			v.stages = append(without(v.stages, StageCurrent), StagePrevious)
		}
	}
	v := &version{id: newUUID(), value: value, created: s.now(), stages: []string{StageCurrent}}
	sec.versions[v.id] = v
	return v.id
}

// DeleteSecret removes the secret name and all its versions.
func (s *Server) DeleteSecret(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.secrets, name)
}

// ARN returns the ARN of the secret name ("" if there is none).
func (s *Server) ARN(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.secrets[name]; sec != nil {
		return sec.arn
	}
	return ""
}

// Requests returns how many requests each operation received, whatever
// their outcome ("Unknown" for a target the emulator does not serve).
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.requests)
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// apiError is an error answer: {"__type": code, "Message": message}.
type apiError struct {
	status        int
	code, message string
}

func notFound(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "ResourceNotFoundException", msg}
}

func invalidParameter(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterException", msg}
}

// signatureError maps a refused signature to what AWS JSON services answer.
func signatureError(e *sigv4.Error) *apiError {
	switch e.Failure {
	case sigv4.MissingAuthentication:
		return &apiError{http.StatusBadRequest, "MissingAuthenticationTokenException", e.Message}
	case sigv4.IncompleteSignature:
		return &apiError{http.StatusBadRequest, "IncompleteSignatureException", e.Message}
	case sigv4.UnknownKey:
		return &apiError{http.StatusBadRequest, "UnrecognizedClientException", e.Message}
	}
	return &apiError{http.StatusBadRequest, "InvalidSignatureException", e.Message}
}

// ServeHTTP serves one AWS JSON 1.1 request: POST /, X-Amz-Target:
// secretsmanager.<Operation>, a JSON body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", newUUID())
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if op != "GetSecretValue" {
		op = "Unknown"
	}
	s.mu.Lock()
	s.requests[op]++
	s.mu.Unlock()
	out, e := s.serve(r, op)
	s.log.Debug("secretsmanager request", "op", op, "error", e != nil)
	if e != nil {
		writeJSON(w, e.status, map[string]string{"__type": e.code, "Message": e.message})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serve(r *http.Request, op string) (any, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return nil, &apiError{http.StatusBadRequest, "SerializationException", "Cannot read the request body."}
	}
	if len(s.opts.Credentials) > 0 {
		if _, e := s.verify.Verify(r, body); e != nil {
			return nil, signatureError(e)
		}
	}
	if r.Method != http.MethodPost || op == "Unknown" {
		return nil, &apiError{http.StatusBadRequest, "UnknownOperationException", "The emulator serves only secretsmanager.GetSecretValue."}
	}
	var in struct {
		SecretID     string `json:"SecretId"`
		VersionID    string `json:"VersionId"`
		VersionStage string `json:"VersionStage"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{http.StatusBadRequest, "SerializationException", "Cannot decode the request body: " + err.Error()}
	}
	if e := takeFaults(r.Context(), &s.faults, op, in.SecretID); e != nil {
		return nil, e
	}
	if in.SecretID == "" {
		return nil, invalidParameter("SecretId is required.")
	}
	return s.getSecretValue(in.SecretID, in.VersionID, in.VersionStage)
}

// getSecretValue finds the version: by ID if given, else by stage
// (AWSCURRENT by default); with both, the version must carry the stage.
func (s *Server) getSecretValue(id, versionID, stage string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil {
		return nil, notFound("Secrets Manager can't find the specified secret.")
	}
	var v *version
	if versionID != "" {
		v = sec.versions[versionID]
		if v == nil || (stage != "" && !hasStage(v, stage)) {
			return nil, notFound("Secrets Manager can't find the specified secret value for VersionId: " + versionID)
		}
	} else {
		if stage == "" {
			stage = StageCurrent
		}
		for _, cand := range sec.versions {
			if hasStage(cand, stage) {
				v = cand
			}
		}
		if v == nil {
			return nil, notFound("Secrets Manager can't find the specified secret value for staging label: " + stage)
		}
	}
	return map[string]any{
		"ARN": sec.arn, "Name": sec.name, "VersionId": v.id, "SecretString": v.value,
		"VersionStages": v.stages, "CreatedDate": float64(v.created.UnixMilli()) / 1000,
	}, nil
}

// lookup finds a secret by name or ARN.
func (s *Server) lookup(id string) *secret {
	if sec := s.secrets[id]; sec != nil {
		return sec
	}
	for _, sec := range s.secrets {
		if sec.arn == id {
			return sec
		}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"__type":"InternalServiceError","Message":"encoding"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func hasStage(v *version, stage string) bool {
	for _, st := range v.stages {
		if st == stage {
			return true
		}
	}
	return false
}

func without(list []string, drop string) []string {
	out := list[:0]
	for _, x := range list {
		if x != drop {
			out = append(out, x)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Fault is a failure injected on demand, matched by operation and secret;
// an empty field matches anything. aws-sdk-go-v2 retries 5xx answers and
// throttling (3 attempts by default): a fault meant to reach the caller
// needs Times of at least that many.
type Fault struct {
	Op       string // "GetSecretValue" or ""
	SecretID string // the SecretId as the request names it, or ""
	Skip     int    // matching requests to let through first
	// Status, if non-zero, is answered with the error Code (default
	// "InternalServiceError"), e.g. 400 "ThrottlingException".
	Status  int
	Code    string
	Latency time.Duration
	Times   int // how many matching requests it applies to; 0: all until ClearFaults
}

// InjectFault adds f.
func (s *Server) InjectFault(f Fault) { s.faults.Add(f, f.Skip, f.Times) }

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

func takeFaults(ctx context.Context, fs *faultset.Set[Fault], op, id string) *apiError {
	var out faultset.Outcome
	fs.Take(func(f *Fault) bool {
		return (f.Op == "" || f.Op == op) && (f.SecretID == "" || f.SecretID == id) && (f.Status != 0 || f.Latency > 0)
	}, func(f *Fault) {
		code := f.Code
		if code == "" && f.Status != 0 {
			code = "InternalServiceError"
		}
		out.Add(f.Status, code, f.Latency)
	})
	if err := out.Wait(ctx); err != nil {
		return &apiError{http.StatusServiceUnavailable, "RequestCanceled", err.Error()}
	}
	if out.Status != 0 {
		return &apiError{out.Status, out.Code, "Injected fault."}
	}
	return nil
}
