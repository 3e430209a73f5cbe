package transfer_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/alistsemu"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer"
)

// aliyunCert is the certificate Aliyun STS test beds serve, trusted by
// this process: credentials-go speaks only https with the system roots.
var aliyunCert *tls.Certificate

// ecsMetadata plays the ECS metadata service (http://100.100.100.200),
// which credentials-go's ecs_ram_role asks at a fixed address: TestMain
// makes it this process's HTTP proxy (HTTP_PROXY is read once, and never
// applies to loopback addresses, so no other test's request goes there).
var ecsMetadata = &metadataService{}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "transfer-test-ca")
	if err == nil {
		aliyunCert, err = alistsemu.TrustedCertificate(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "trusting the Aliyun STS test bed:", err)
		os.Exit(1)
	}
	meta := httptest.NewServer(ecsMetadata)
	_ = os.Setenv("HTTP_PROXY", meta.URL)
	code := m.Run()
	meta.Close()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// metadataService answers the instance's RAM role and its STS keys, a new
// AccessKeyId each time, as the metadata service does when it renews them.
type metadataService struct {
	served atomic.Int32
}

func (s *metadataService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/latest/meta-data/ram/security-credentials/"
	switch {
	case r.URL.Host != "100.100.100.200":
		http.Error(w, "not the metadata service", http.StatusBadGateway)
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		_, _ = w.Write([]byte("imds-v2-token"))
	case r.Header.Get("X-Aliyun-Ecs-Metadata-Token") != "imds-v2-token":
		http.Error(w, "no metadata token", http.StatusUnauthorized)
	case r.URL.Path == prefix:
		_, _ = w.Write([]byte("oss2s3-ecs"))
	case r.URL.Path == prefix+"oss2s3-ecs":
		n := s.served.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"Code": "Success", "AccessKeyId": fmt.Sprint("STS.ecs-", n),
			"AccessKeySecret": "ecs-secret", "SecurityToken": "ecs-token", "LastUpdated": time.Now().UTC().Format("2006-01-02T15:04:05Z"),
			"Expiration": time.Now().Add(6 * time.Hour).UTC().Format("2006-01-02T15:04:05Z")})
	default:
		http.NotFound(w, r)
	}
}

const (
	ramRole      = "acs:ram::1234567890123456:role/oss2s3-reader"
	rrsaProvider = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1"
)

// aliyunBed is an Aliyun STS that lets LTAI-ram assume ramRole, and an OSS
// that accepts only the keys STS hands out.
type aliyunBed struct {
	sts    *alistsemu.Server
	stsURL string
	oss    *ossemu.Server
	ossURL string
}

func newAliyunBed(t *testing.T, now func() time.Time) *aliyunBed {
	t.Helper()
	b := &aliyunBed{oss: ossemu.New(ossemu.Options{Credentials: map[string]string{"LTAI-unrelated": "x"}})}
	var err error
	if b.ossURL, err = b.oss.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.oss.Close() })
	b.oss.CreateBucket("src")
	b.sts = alistsemu.New(alistsemu.Options{Credentials: map[string]string{"LTAI-ram": "ram-secret"},
		Roles: map[string]string{ramRole: "ext-7"}, Certificate: aliyunCert, Now: now,
		OIDC:   map[string]string{rrsaProvider: "projected-sa-token"},
		Issued: func(c alistsemu.Credentials) { b.oss.SetKey(c.AccessKeyID, c.AccessKeySecret) }})
	if b.stsURL, err = b.sts.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.sts.Close() })
	return b
}

func (b *aliyunBed) role() transfer.AliyunCredentials {
	return transfer.AliyunCredentials{Type: transfer.AliyunRAMRoleARN, AccessKeyID: "LTAI-ram", AccessKeySecret: "ram-secret",
		RoleARN: ramRole, ExternalID: "ext-7", STSEndpoint: b.stsURL}
}

// countingDest counts the parts uploaded, a part uploaded twice twice.
type countingDest struct {
	*hashingDest
	uploads atomic.Int32
}

func (d *countingDest) UploadPart(ctx context.Context, key, id string, n int32, p []byte) (transfer.Part, error) {
	d.uploads.Add(1)
	return d.hashingDest.UploadPart(ctx, key, id, n, p)
}

func TestAliyunTokenExpiresDuringAMultipartCopy(t *testing.T) {
	t.Parallel()
	b := newAliyunBed(t, nil)
	const parts, partSize = 4, 5 << 20
	if _, err := b.oss.PutSynthetic("src", "big.bin", parts*partSize, 3, http.Header{}); err != nil {
		t.Fatal(err)
	}
	keys, err := transfer.NewAliyunKeys(b.role(), nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := transfer.NewOSSSourceKeys(transfer.SourceConfig{Endpoint: b.ossURL, Bucket: "src"}, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info, err := src.Head(ctx, "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	// The token lapses after the first part's GET: every later request
	// signed with it is SecurityTokenExpired.
	b.oss.InjectFault(ossemu.Fault{Op: "GetObject", Times: 1, Before: func() {
		for _, c := range b.sts.Issued() {
			b.oss.ExpireKey(c.AccessKeyID)
		}
	}})
	b.oss.ResetRequests()
	dst := &countingDest{hashingDest: &hashingDest{}}
	res, err := transfer.NewCopier(64*transfer.MiB, nil, "w").Copy(ctx, transfer.Object{Task: "t", Src: src, Dst: dst, Info: info,
		DstKey: "big.bin", Write: &transfer.WriteInfo{Source: info}},
		transfer.CopyConfig{PartSize: partSize, MultipartThreshold: partSize, PartsInFlight: 1})
	if err != nil {
		t.Fatalf("the copy failed when the token expired: %v", err)
	}
	if res.Parts != parts || res.CRC64 != info.CRC64 {
		t.Fatalf("copied %d parts, crc %d; want %d, %d", res.Parts, res.CRC64, parts, info.CRC64)
	}
	if n := dst.uploads.Load(); n != parts {
		t.Errorf("uploaded %d parts for %d: a part was redone", n, parts)
	}
	if n := len(b.sts.Issued()); n != 2 {
		t.Errorf("assumed the role %d times, want 2 (at start, after the expiry)", n)
	}
	if n := b.oss.Requests()["GetObject"]; n != parts+1 {
		t.Errorf("%d GETs for %d parts, want %d (one refused, sent again)", n, parts, parts+1)
	}
}

func TestAliyunRoleRenewedBeforeItExpires(t *testing.T) {
	t.Parallel()
	// Keys of an hour handed out 58 minutes ago: 2 minutes to go, inside
	// credentials-go's 3 minutes.
	b := newAliyunBed(t, func() time.Time { return time.Now().Add(-58 * time.Minute) })
	keys, err := transfer.NewAliyunKeys(b.role(), nil)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := keys.Keys()
	second, _, _ := keys.Keys()
	if first == second || len(b.sts.Issued()) < 2 {
		t.Fatalf("keys two minutes from expiry were used again (%d sessions)", len(b.sts.Issued()))
	}
	if c := b.sts.Issued()[0]; c.Caller != "LTAI-ram" || c.SessionName != "oss2s3" {
		t.Errorf("assumed as %s, session %q", c.Caller, c.SessionName)
	}
}

func TestAliyunRoleRefusedFailsAtStart(t *testing.T) {
	t.Parallel()
	b := newAliyunBed(t, nil)
	cases := map[string]func(*transfer.AliyunCredentials){
		"AWrongSecretIsASignatureMismatch": func(a *transfer.AliyunCredentials) { a.AccessKeySecret = "wrong" },
		"AWrongExternalIDIsNoPermission":   func(a *transfer.AliyunCredentials) { a.ExternalID = "ext-8" },
	}
	want := map[string]string{"AWrongSecretIsASignatureMismatch": "SignatureDoesNotMatch", "AWrongExternalIDIsNoPermission": "NoPermission"}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := b.role()
			change(&cfg)
			_, err := transfer.SourceKeys(context.Background(), transfer.SourceConfig{Credentials: transfer.SourceCredentials{Aliyun: &cfg}}, nil)
			if err == nil || !strings.Contains(err.Error(), want[name]) || !strings.Contains(err.Error(), "source.credentials.aliyun") {
				t.Fatalf("got %v, want source.credentials.aliyun: ... %s", err, want[name])
			}
			if strings.Contains(err.Error(), "ram-secret") {
				t.Fatalf("the error quotes the secret: %v", err)
			}
		})
	}
}

func TestAliyunCredentialsURI(t *testing.T) {
	t.Parallel()
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"Code": "Success", "AccessKeyId": fmt.Sprint("STS.uri-", n),
			"AccessKeySecret": "s", "SecurityToken": "tok", "Expiration": time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z")})
	}))
	t.Cleanup(srv.Close)
	keys, err := transfer.NewAliyunKeys(transfer.AliyunCredentials{Type: transfer.AliyunCredentialsURI, URL: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, gen, _ := keys.Keys()
	if got.AccessKeyID != "STS.uri-1" || got.SecurityToken != "tok" {
		t.Fatalf("keys %+v", got)
	}
	if err := keys.Refresh(context.Background(), gen); err != nil {
		t.Fatal(err)
	}
	got, gen, _ = keys.Keys()
	if got.AccessKeyID != "STS.uri-2" {
		t.Fatalf("after Refresh still %s", got.AccessKeyID)
	}
	// Refused again at once: the new keys are not cured by a third session.
	if err := keys.Refresh(context.Background(), gen); err != nil {
		t.Fatal(err)
	}
	if n := served.Load(); n != 2 {
		t.Fatalf("%d sessions, want 2: a refusal right after a renewal started another", n)
	}
}

// TestAliyunRRSA: on ACK the pod's projected token is traded for STS keys
// (AssumeRoleWithOIDC), which then read the source.
func TestAliyunRRSA(t *testing.T) {
	t.Parallel()
	b := newAliyunBed(t, nil)
	if _, err := b.oss.PutObject("src", "a", []byte("a"), http.Header{}); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("projected-sa-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := transfer.AliyunCredentials{Type: transfer.AliyunOIDCRoleARN, RoleARN: ramRole, OIDCProviderARN: rrsaProvider,
		OIDCTokenFile: token, STSEndpoint: b.stsURL}
	src, err := transfer.OpenOSSSource(context.Background(), transfer.SourceConfig{Endpoint: b.ossURL, Bucket: "src",
		Credentials: transfer.SourceCredentials{Aliyun: &cfg}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Head(context.Background(), "a"); err != nil {
		t.Fatalf("head with the RRSA keys: %v", err)
	}
	if issued := b.sts.Issued(); len(issued) != 1 || issued[0].Caller != "oidc:"+rrsaProvider {
		t.Fatalf("issued %d sessions (%+v), want one for the OIDC provider", len(issued), issued)
	}
	t.Run("AnotherTokenIsRefused", func(t *testing.T) {
		if err := os.WriteFile(token, []byte("stolen"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := transfer.NewAliyunKeys(cfg, nil); err == nil || !strings.Contains(err.Error(), "OIDCToken.Invalid") {
			t.Fatalf("got %v, want AuthenticationFail.OIDCToken.Invalid", err)
		}
	})
}

// TestAliyunECSRAMRole: on ECS the instance's role (found by name at the
// metadata service, with an IMDSv2 token) gives the keys; a refusal asks
// for them again.
func TestAliyunECSRAMRole(t *testing.T) {
	t.Parallel()
	keys, err := transfer.NewAliyunKeys(transfer.AliyunCredentials{Type: transfer.AliyunECSRAMRole}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, gen, _ := keys.Keys()
	if !strings.HasPrefix(got.AccessKeyID, "STS.ecs-") || got.SecurityToken != "ecs-token" {
		t.Fatalf("keys %+v", got)
	}
	if err := keys.Refresh(context.Background(), gen); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := keys.Keys(); again.AccessKeyID == got.AccessKeyID {
		t.Fatalf("after Refresh still %s", again.AccessKeyID)
	}
}
