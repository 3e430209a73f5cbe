package mns_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
)

// now is the clock of every test: Date headers are built from it.
var now = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

// testBundle is a local stand-in for mns-cert.oss-<region>.aliyuncs.com: a
// TLS server holding a signing certificate made in the test, and the key
// that signs pushes.
type testBundle struct {
	key     *rsa.PrivateKey
	srv     *httptest.Server
	host    string       // 127.0.0.1:port, what AllowedHost sees
	fetches atomic.Int32 // certificate downloads served
	mu      sync.Mutex
	files   map[string][]byte // path -> body served with 200
}

func selfSigned(t *testing.T, key crypto.Signer, notBefore, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "notify", Organization: []string{"oss2s3 test"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := &testBundle{key: key}
	b.files = map[string][]byte{
		"/cert.pem":    selfSigned(t, key, now.Add(-time.Hour), now.Add(365*24*time.Hour)),
		"/expired.pem": selfSigned(t, key, now.Add(-48*time.Hour), now.Add(-24*time.Hour)),
		"/other.pem":   selfSigned(t, otherKey, now.Add(-time.Hour), now.Add(time.Hour)),
		"/ec.pem":      selfSigned(t, ecKey, now.Add(-time.Hour), now.Add(time.Hour)),
		"/not-pem.txt": []byte("hello"),
		"/big.pem":     []byte(strings.Repeat("A", 70<<10)),
	}
	b.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.fetches.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/cert.pem", http.StatusFound)
			return
		}
		b.mu.Lock()
		body, ok := b.files[r.URL.Path]
		b.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(b.srv.Close)
	u, _ := url.Parse(b.srv.URL)
	b.host = u.Host
	return b
}

// verifier trusts only the test server, with the test clock.
func (b *testBundle) verifier() *mns.Verifier {
	return &mns.Verifier{
		AllowedHost: func(host string) bool { return host == b.host },
		Client:      b.srv.Client(),
		Now:         func() time.Time { return now },
	}
}

// push is one MNS request: what Verify takes.
type push struct {
	method, path string
	h            http.Header
	body         []byte
}

// newPush builds a push the way MNS does (XML format; Content-MD5 as the
// SDKs write it, Base64 of the lower-case hex digest) with the certificate
// at certPath, signed by key.
func (b *testBundle) newPush(t *testing.T, certPath string, key *rsa.PrivateKey) push {
	t.Helper()
	body := []byte(`<?xml version="1.0" encoding="utf-8"?><Notification xmlns="http://mns.aliyuncs.com/doc/v1/"><Message>e30=</Message></Notification>`)
	sum := md5.Sum(body)
	h := http.Header{}
	h.Set("Content-Type", "text/xml;charset=utf-8")
	h.Set("Content-MD5", base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:]))))
	h.Set("Date", now.Add(-2*time.Second).Format(http.TimeFormat))
	h.Set("x-mns-request-id", "57458276F0E3D56D7C000001")
	h.Set("x-mns-version", "2015-06-06")
	h.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(b.srv.URL+certPath)))
	h.Set("User-Agent", "Aliyun Notification Service Agent")
	p := push{method: "POST", path: "/notifications", h: h, body: body}
	p.sign(t, key)
	return p
}

func (p *push) sign(t *testing.T, key *rsa.PrivateKey) {
	t.Helper()
	digest := sha1.Sum([]byte(mns.StringToSign(p.method, p.path, p.h)))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	p.h.Set("Authorization", base64.StdEncoding.EncodeToString(sig))
}

func (p push) verify(v *mns.Verifier) error {
	return v.Verify(context.Background(), p.method, p.path, p.h, p.body)
}

func TestStringToSign(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("Content-Type", "text/xml;charset=utf-8")
	h.Set("Content-MD5", "ZDgxNjY5ZjFlMDQ5MGM0YWMwMWE5ODlmZDVlYmQxYjI=")
	h.Set("Date", "Wed, 25 May 2016 10:46:14 GMT")
	h.Set("X-MNS-Version", "2015-06-06")
	h["x-mns-request-id"] = []string{"57458276F0E3D56D7C00054B"} // not canonicalised
	h.Set("x-mns-signing-cert-url", "aHR0cDovL21uc3Rlc3Qub3NzLWNuLWhhbmd6aG91LmFsaXl1bmNzLmNvbS94NTA5X3B1YmxpY19jZXJ0aWZpY2F0ZS5wZW0=")
	h.Set("X-Other", "not signed")
	// The documentation's example (doc-detail/27488), byte for byte.
	want := "POST\n" +
		"ZDgxNjY5ZjFlMDQ5MGM0YWMwMWE5ODlmZDVlYmQxYjI=\n" +
		"text/xml;charset=utf-8\n" +
		"Wed, 25 May 2016 10:46:14 GMT\n" +
		"x-mns-request-id:57458276F0E3D56D7C00054B\n" +
		"x-mns-signing-cert-url:aHR0cDovL21uc3Rlc3Qub3NzLWNuLWhhbmd6aG91LmFsaXl1bmNzLmNvbS94NTA5X3B1YmxpY19jZXJ0aWZpY2F0ZS5wZW0=\n" +
		"x-mns-version:2015-06-06\n" +
		"/notifications"
	if got := mns.StringToSign("post", "/notifications", h); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	// No Date: x-mns-date stands in; no Content-MD5/Type, no x-mns-*
	// headers but x-mns-date itself: empty lines.
	h2 := http.Header{}
	h2.Set("X-Mns-Date", "Thu, 31 Oct 2024 09:57:20 GMT")
	want2 := "POST\n\n\nThu, 31 Oct 2024 09:57:20 GMT\nx-mns-date:Thu, 31 Oct 2024 09:57:20 GMT\n/api/test"
	if got := mns.StringToSign("POST", "/api/test", h2); got != want2 {
		t.Errorf("got:\n%q\nwant:\n%q", got, want2)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("AcceptsASignedPush", func(t *testing.T) {
		t.Parallel()
		if err := b.newPush(t, "/cert.pem", b.key).verify(b.verifier()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AcceptsEveryContentMD5Spelling", func(t *testing.T) {
		t.Parallel()
		for _, spell := range []func([16]byte) string{
			func(s [16]byte) string { return strings.ToUpper(hex.EncodeToString(s[:])) }, // captured pushes
			func(s [16]byte) string { return hex.EncodeToString(s[:]) },
			func(s [16]byte) string { return base64.StdEncoding.EncodeToString(s[:]) }, // RFC 1864
		} {
			p := b.newPush(t, "/cert.pem", b.key)
			p.h.Set("Content-MD5", spell(md5.Sum(p.body)))
			p.sign(t, b.key)
			if err := p.verify(b.verifier()); err != nil {
				t.Fatalf("Content-MD5 %s: %v", p.h.Get("Content-MD5"), err)
			}
		}
	})
	t.Run("AcceptsXMnsDateInsteadOfDate", func(t *testing.T) {
		t.Parallel()
		p := b.newPush(t, "/cert.pem", b.key)
		p.h.Set("x-mns-date", p.h.Get("Date"))
		p.h.Del("Date")
		p.sign(t, b.key)
		if err := p.verify(b.verifier()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AcceptsAPathSignedWithoutItsQuery", func(t *testing.T) {
		t.Parallel()
		p := b.newPush(t, "/cert.pem", b.key)
		p.path = "/mns/oss"
		p.sign(t, b.key)
		p.path = "/mns/oss?token=abc"
		if err := p.verify(b.verifier()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AcceptsAPathSignedWithItsQuery", func(t *testing.T) {
		t.Parallel()
		p := b.newPush(t, "/cert.pem", b.key)
		p.path = "/mns/oss?token=abc"
		p.sign(t, b.key)
		if err := p.verify(b.verifier()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AcceptsAnExpiredCertificateByDefault", func(t *testing.T) {
		t.Parallel()
		if err := b.newPush(t, "/expired.pem", b.key).verify(b.verifier()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AcceptsAHostPattern", func(t *testing.T) {
		t.Parallel()
		allowed, err := mns.HostPattern(`127\.0\.0\.1:[0-9]+`)
		if err != nil {
			t.Fatal(err)
		}
		v := b.verifier()
		v.AllowedHost = allowed
		if err := b.newPush(t, "/cert.pem", b.key).verify(v); err != nil {
			t.Fatal(err)
		}
	})

	cases := []struct {
		name   string
		modify func(t *testing.T, p *push, v *mns.Verifier)
		want   error
		msg    string
	}{
		{"NoAuthorization", func(t *testing.T, p *push, v *mns.Verifier) { p.h.Del("Authorization") },
			mns.ErrMissingSignature, "missing MNS signature: no Authorization header"},
		{"NoCertURL", func(t *testing.T, p *push, v *mns.Verifier) { p.h.Del("x-mns-signing-cert-url") },
			mns.ErrMissingSignature, "missing MNS signature: no x-mns-signing-cert-url header"},
		{"AuthorizationNotBase64", func(t *testing.T, p *push, v *mns.Verifier) { p.h.Set("Authorization", "MNS abc:def") },
			mns.ErrBadSignature, "MNS signature does not verify: Authorization is not Base64"},
		{"CertURLNotBase64", func(t *testing.T, p *push, v *mns.Verifier) { p.h.Set("x-mns-signing-cert-url", "https://x/") },
			mns.ErrBadSignature, "x-mns-signing-cert-url is not Base64"},
		{"HostNotAllowed", func(t *testing.T, p *push, v *mns.Verifier) { v.AllowedHost = func(string) bool { return false } },
			mns.ErrCertHostNotAllowed, `MNS signing certificate URL not allowed: host "127.0.0.1:`},
		{"PlainHTTP", func(t *testing.T, p *push, v *mns.Verifier) {
			p.h.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(strings.Replace(b.srv.URL, "https:", "http:", 1)+"/cert.pem")))
			p.sign(t, b.key)
		}, mns.ErrCertHostNotAllowed, `scheme "http" of http://127.0.0.1:`},
		{"UserInfo", func(t *testing.T, p *push, v *mns.Verifier) {
			p.h.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte("https://u:p@"+b.host+"/cert.pem")))
		}, mns.ErrCertHostNotAllowed, "has user information"},
		{"NoDate", func(t *testing.T, p *push, v *mns.Verifier) { p.h.Del("Date"); p.sign(t, b.key) },
			mns.ErrStaleRequest, "MNS request date missing or outside the allowed window: no Date header"},
		{"BadDate", func(t *testing.T, p *push, v *mns.Verifier) { p.h.Set("Date", "yesterday"); p.sign(t, b.key) },
			mns.ErrStaleRequest, `Date "yesterday" is not an HTTP date`},
		{"OldDate", func(t *testing.T, p *push, v *mns.Verifier) {
			p.h.Set("Date", now.Add(-16*time.Minute).Format(http.TimeFormat))
			p.sign(t, b.key)
		}, mns.ErrStaleRequest, `Date "Tue, 24 Nov 2026 07:44:00 GMT" is 16m0s away from now (allowed 15m0s)`},
		{"FutureDate", func(t *testing.T, p *push, v *mns.Verifier) {
			p.h.Set("Date", now.Add(20*time.Minute).Format(http.TimeFormat))
			p.sign(t, b.key)
		}, mns.ErrStaleRequest, "is -20m0s away from now"},
		{"TamperedBody", func(t *testing.T, p *push, v *mns.Verifier) { p.body = append(p.body, ' ') },
			mns.ErrBodyMismatch, `body does not match its signed Content-MD5: Content-MD5 "`},
		{"NoContentMD5", func(t *testing.T, p *push, v *mns.Verifier) { p.h.Del("Content-MD5"); p.sign(t, b.key) },
			mns.ErrBodyMismatch, "body does not match its signed Content-MD5: no Content-MD5 header"},
		{"TamperedSignedHeader", func(t *testing.T, p *push, v *mns.Verifier) { p.h.Set("x-mns-request-id", "57458276F0E3D56D7C000002") },
			mns.ErrBadSignature, "MNS signature does not verify: signature does not match the request"},
		{"AddedMNSHeader", func(t *testing.T, p *push, v *mns.Verifier) { p.h.Set("x-mns-message-tag", "evil") },
			mns.ErrBadSignature, ""},
		{"OtherPath", func(t *testing.T, p *push, v *mns.Verifier) { p.path = "/admin" },
			mns.ErrBadSignature, ""},
		{"OtherMethod", func(t *testing.T, p *push, v *mns.Verifier) { p.method = "PUT" },
			mns.ErrBadSignature, ""},
		{"SignedByAnotherKey", func(t *testing.T, p *push, v *mns.Verifier) {
			other, _ := rsa.GenerateKey(rand.Reader, 2048)
			p.sign(t, other)
		}, mns.ErrBadSignature, ""},
		{"CertOfAnotherKey", func(t *testing.T, p *push, v *mns.Verifier) {
			p.h.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(b.srv.URL+"/other.pem")))
			p.sign(t, b.key)
		}, mns.ErrBadSignature, ""},
		{"CertNotFound", func(t *testing.T, p *push, v *mns.Verifier) {
			p.h.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(b.srv.URL+"/gone.pem")))
			p.sign(t, b.key)
		}, mns.ErrCertFetch, "cannot fetch MNS signing certificate: GET https://127.0.0.1:"},
		{"CertRedirect", func(t *testing.T, p *push, v *mns.Verifier) {
			p.h.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(b.srv.URL+"/redirect")))
			p.sign(t, b.key)
		}, mns.ErrCertFetch, "/redirect: 302 Found"},
		{"CertTooBig", func(t *testing.T, p *push, v *mns.Verifier) {
			p.h.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(b.srv.URL+"/big.pem")))
			p.sign(t, b.key)
		}, mns.ErrCertFetch, "larger than 65536 bytes"},
		{"CertNotPEM", func(t *testing.T, p *push, v *mns.Verifier) {
			p.h.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(b.srv.URL+"/not-pem.txt")))
			p.sign(t, b.key)
		}, mns.ErrBadCert, "unusable MNS signing certificate: x509:"},
		{"CertNotRSA", func(t *testing.T, p *push, v *mns.Verifier) {
			p.h.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(b.srv.URL+"/ec.pem")))
			p.sign(t, b.key)
		}, mns.ErrBadCert, "key is *ecdsa.PublicKey, want RSA"},
		{"KeyTooSmallForConfig", func(t *testing.T, p *push, v *mns.Verifier) { v.MinRSABits = 3072 },
			mns.ErrBadCert, "2048-bit RSA key, want at least 3072"},
		{"ExpiredWithCheckValidity", func(t *testing.T, p *push, v *mns.Verifier) {
			v.CheckValidity = true
			p.h.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(b.srv.URL+"/expired.pem")))
			p.sign(t, b.key)
		}, mns.ErrBadCert, "valid from 2026-11-22T08:00:00Z to 2026-11-23T08:00:00Z, not at 2026-11-24T08:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := b.newPush(t, "/cert.pem", b.key)
			v := b.verifier()
			tc.modify(t, &p, v)
			err := p.verify(v)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Verify error %q, want it to contain %q", err, tc.msg)
			}
		})
	}
}

func TestVerifyOptions(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("DateToleranceNegativeDisablesTheCheck", func(t *testing.T) {
		t.Parallel()
		p := b.newPush(t, "/cert.pem", b.key)
		p.h.Set("Date", "Wed, 29 Mar 2023 08:41:27 GMT")
		p.sign(t, b.key)
		v := b.verifier()
		v.DateTolerance = -1
		if err := p.verify(v); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AllowMissingContentMD5", func(t *testing.T) {
		t.Parallel()
		p := b.newPush(t, "/cert.pem", b.key)
		p.h.Del("Content-MD5")
		p.sign(t, b.key)
		v := b.verifier()
		v.AllowMissingContentMD5 = true
		if err := p.verify(v); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("EmptyBodyNeedsNoContentMD5", func(t *testing.T) {
		t.Parallel()
		p := b.newPush(t, "/cert.pem", b.key)
		p.body = nil
		p.h.Del("Content-MD5")
		p.sign(t, b.key)
		if err := p.verify(b.verifier()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestVerifyCachesCertificates(t *testing.T) {
	t.Parallel()

	t.Run("OneDownloadForManyConcurrentPushes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		v := b.verifier()
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for range 32 {
			p := b.newPush(t, "/cert.pem", b.key)
			wg.Go(func() { errs <- p.verify(v) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := b.fetches.Load(); n != 1 {
			t.Fatalf("%d downloads, want 1", n)
		}
	})
	t.Run("DownloadsAgainAfterTheTTL", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		clock := now
		v := b.verifier()
		v.DateTolerance = -1
		v.CacheTTL = time.Minute
		v.Now = func() time.Time { return clock }
		p := b.newPush(t, "/cert.pem", b.key)
		for i := range 3 {
			if err := p.verify(v); err != nil {
				t.Fatal(err)
			}
			if i == 1 {
				clock = clock.Add(2 * time.Minute)
			}
		}
		if n := b.fetches.Load(); n != 2 {
			t.Fatalf("%d downloads, want 2", n)
		}
	})
	t.Run("FailuresAreCachedForFailureTTL", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		clock := now
		v := b.verifier()
		v.DateTolerance = -1
		v.FailureTTL = time.Minute
		v.Now = func() time.Time { return clock }
		p := b.newPush(t, "/late.pem", b.key)
		for range 10 {
			if err := p.verify(v); !errors.Is(err, mns.ErrCertFetch) {
				t.Fatalf("Verify = %v, want ErrCertFetch", err)
			}
		}
		if n := b.fetches.Load(); n != 1 {
			t.Fatalf("%d downloads for 10 pushes naming a URL that serves nothing, want 1", n)
		}
		b.mu.Lock()
		b.files["/late.pem"] = b.files["/cert.pem"]
		b.mu.Unlock()
		if err := p.verify(v); !errors.Is(err, mns.ErrCertFetch) {
			t.Fatalf("within FailureTTL: %v, want the remembered failure", err)
		}
		clock = clock.Add(time.Minute)
		if err := p.verify(v); err != nil {
			t.Fatalf("after FailureTTL, with the certificate there: %v", err)
		}
		if n := b.fetches.Load(); n != 2 {
			t.Fatalf("%d downloads, want 2", n)
		}
	})
	t.Run("BadCertificatesAreCachedToo", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		v := b.verifier()
		p := b.newPush(t, "/not-pem.txt", b.key)
		for range 5 {
			if err := p.verify(v); !errors.Is(err, mns.ErrBadCert) {
				t.Fatalf("Verify = %v, want ErrBadCert", err)
			}
		}
		if n := b.fetches.Load(); n != 1 {
			t.Fatalf("%d downloads, want 1", n)
		}
	})
	t.Run("MaxCertsBoundsTheCache", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.mu.Lock()
		for _, name := range []string{"/a.pem", "/b.pem", "/c.pem"} {
			b.files[name] = b.files["/cert.pem"]
		}
		b.mu.Unlock()
		v := b.verifier()
		v.MaxCerts = 2
		clock := now
		v.Now = func() time.Time { clock = clock.Add(time.Second); return clock }
		v.DateTolerance = -1
		for _, name := range []string{"/a.pem", "/b.pem", "/c.pem", "/b.pem", "/c.pem", "/a.pem"} {
			if err := b.newPush(t, name, b.key).verify(v); err != nil {
				t.Fatal(err)
			}
		}
		// a, b, c downloaded; c evicts a (closest to expiry); b and c
		// are cached; a is downloaded again.
		if n := b.fetches.Load(); n != 4 {
			t.Fatalf("%d downloads, want 4", n)
		}
	})
}

// failTransport fails the test if the Verifier tries to download anything.
