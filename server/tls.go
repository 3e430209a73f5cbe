package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// TLSConfig turns on HTTPS for the gateway, for webhooks that cross the
// internet. Both files are PEM; the certificate file may hold the chain.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

func (c TLSConfig) enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// validate loads the pair once, so that a wrong path or a key that does
// not match the certificate stops the process at start, not at the first
// handshake.
func (c TLSConfig) validate(bad complain) {
	if !c.enabled() {
		return
	}
	if c.CertFile == "" || c.KeyFile == "" {
		bad("tls", "give both cert_file and key_file, or neither (plain HTTP)")
		return
	}
	if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
		bad("tls.cert_file", "cannot load the certificate and key (%s, %s): %v", c.CertFile, c.KeyFile, err)
	}
}

// certReloader serves the certificate in its files and loads them again
// when they change, so a renewed certificate (cert-manager, certbot) is
// served without a restart. A pair that does not load (e.g. the key
// rewritten before the certificate) leaves the previous one in use.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	stamp  string // sizes and modification times of both files
	failed string // the stamp that last failed to load, so it is logged once
}

func newCertReloader(c TLSConfig, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: c.CertFile, keyFile: c.KeyFile, log: log}
	stamp, err := r.fileStamp()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamp); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) fileStamp() (string, error) {
	var s string
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		s += fmt.Sprintf("%d@%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

func (r *certReloader) load(stamp string) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &cert, stamp
	return nil
}

// GetCertificate is for tls.Config: two stats a handshake tell whether the
// files changed.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp, err := r.fileStamp()
	if err != nil || stamp == r.stamp {
		return r.cert, nil
	}
	if err := r.load(stamp); err != nil {
		if r.failed != stamp {
			r.failed = stamp
			r.log.Warn("tls certificate changed but does not load; serving the previous one", "err", err)
		}
		return r.cert, nil
	}
	r.log.Info("tls certificate reloaded", "cert_file", r.certFile)
	return r.cert, nil
}

// aeadSuites are the TLS 1.2 cipher suites the gateway offers: ECDHE
// with AES-GCM or ChaCha20-Poly1305, Mozilla's "intermediate" profile less
// the DHE suites Go does not implement. Go's defaults also offer the
// CBC-SHA suites, open to padding-oracle and timing attacks. (TLS 1.3
// suites are not configurable, and all AEAD.)
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: aeadSuites, GetCertificate: r.GetCertificate}
}
