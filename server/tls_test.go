package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/internal/testkit"
)

// writeCerts writes a fresh CA-signed pair for 127.0.0.1 into dir (each
// file replaced in one rename, as cert-manager and certbot do) and returns
// a client that trusts only that CA and opens a connection per request.
func writeCerts(t *testing.T, dir string) *http.Client {
	t.Helper()
	caPEM, certPEM, keyPEM, err := s3test.NewCerts(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"key.pem": keyPEM, "cert.pem": certPEM} {
		tmp := filepath.Join(dir, "."+name)
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("bad CA PEM")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true,
	}}
}

func TestGatewayServesHTTPSAndPicksUpARenewedCertificate(t *testing.T) {
	t.Parallel()
	b := newFakeBed(t, 1)
	dir := t.TempDir()
	first := writeCerts(t, dir)
	b.extraConfig = "tls:\n  cert_file: " + filepath.Join(dir, "cert.pem") + "\n  key_file: " + filepath.Join(dir, "key.pem") + "\n"
	b.writeConfig(t, 1)
	b.client = first
	b.start(t)

	resp, err := first.Get("https://" + b.addr + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS with the test CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("HTTPS /healthz: %d, tls %v", resp.StatusCode, resp.TLS != nil)
	}

	plain := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := plain.Get("http://" + b.addr + "/healthz"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP to the HTTPS gateway answered 200: %s", body)
		}
	}

	// Renewal: new files, same paths; the next handshake serves them.
	second := writeCerts(t, dir)
	if !testkit.Eventually(10*time.Second, 20*time.Millisecond, func() bool {
		var resp *http.Response
		if resp, err = second.Get("https://" + b.addr + "/healthz"); err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}) {
		t.Fatalf("the renewed certificate was never served: %v", err)
	}
	if _, err := first.Get("https://" + b.addr + "/healthz"); err == nil {
		t.Fatal("the replaced certificate is still served")
	}
}

func TestServeRefusesAnUnloadableCertificate(t *testing.T) {
	t.Parallel()
	b := newFakeBed(t, 1)
	dir := t.TempDir()
	writeCerts(t, dir)
	for name, c := range map[string]struct{ tls, want string }{
		"MissingFile": {"tls:\n  cert_file: " + filepath.Join(dir, "nope.pem") + "\n  key_file: " + filepath.Join(dir, "key.pem") + "\n",
			"tls.cert_file: cannot load the certificate and key"},
		"KeyWithoutCertificate": {"tls:\n  key_file: " + filepath.Join(dir, "key.pem") + "\n", "tls: give both cert_file and key_file"},
		"KeyForCertificate":     {"tls:\n  cert_file: " + filepath.Join(dir, "key.pem") + "\n  key_file: " + filepath.Join(dir, "key.pem") + "\n", "tls.cert_file"},
	} {
		t.Run(name, func(t *testing.T) {
			b.extraConfig = c.tls
			b.writeConfig(t, 1)
			err := run(context.Background(), []string{"oss2s3", "serve", "--config", b.cfgPath}, env(map[string]string{
				"WEBHOOK_SECRET": e2eSecret, "OSS_AK": e2eAK, "OSS_SK": e2eSK, "S3_AK": "x", "S3_SK": "y",
			}), nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// TestTLS12OffersAEADSuitesOnly: a TLS 1.2 client that offers only CBC
// suites is refused; AEAD suites and TLS 1.3 work (note 3 of issue 14: Go's
// defaults, which the gateway used, still offer ECDHE with AES-CBC-SHA).
func TestTLS12OffersAEADSuitesOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	trusting := writeCerts(t, dir)
	r, err := newCertReloader(TLSConfig{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", r.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	roots := trusting.Transport.(*http.Transport).TLSClientConfig.RootCAs
	for _, c := range []struct {
		name   string
		max    uint16
		suites []uint16
		ok     bool
	}{
		{"CBCSHA", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}, false},
		{"CBCSHA256", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}, false},
		{"RSAKeyExchangeGCM", tls.VersionTLS12, []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}, false},
		{"ECDHEGCM", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, true},
		{"ECDHEChaCha20", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}, true},
		{"TLS13", tls.VersionTLS13, nil, true},
	} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, MaxVersion: c.max, CipherSuites: c.suites})
		if err == nil {
			conn.Close()
		}
		if (err == nil) != c.ok {
			t.Errorf("%s: handshake error %v, want success %v", c.name, err, c.ok)
		}
	}
}
