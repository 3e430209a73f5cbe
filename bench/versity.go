package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// versityInstall is the command that installs the destination server; it
// is the version internal/s3test runs.
const versityInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

const (
	s3Region    = "us-east-1"
	s3AccessKey = "benchs3access"
	s3SecretKey = "benchs3secret"
)

// versity is a running versitygw (a real S3 implementation on a posix
// directory) over TLS on 127.0.0.1, the way internal/s3test runs it for the
// end-to-end tests, but with its root on the directory the caller chose, so
// that objects land on a real disk (with user xattrs, no sidecar).
type versity struct {
	Endpoint string // https://127.0.0.1:PORT
	CAFile   string
	Root     string     // one directory per bucket
	Client   *s3.Client // trusts CAFile; production's checksum defaults
	proc     *process
}

// startVersity starts versitygw with its files under dir.
func startVersity(ctx context.Context, bin, dir string, logs *logDir) (*versity, error) {
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	caPEM, certPEM, keyPEM, err := newCerts(time.Now())
	if err != nil {
		return nil, err
	}
	v := &versity{Root: root, CAFile: filepath.Join(dir, "ca.pem")}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for name, data := range map[string][]byte{v.CAFile: caPEM, certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return nil, err
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 256
	tr.DisableCompression = true

	// The free port is only free until someone else takes it: if the server
	// dies before it answers, try another one.
	var lastErr error
	for attempt := range 3 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		v.Endpoint = "https://" + addr
		if v.Client, err = newS3Client(ctx, v.Endpoint, &http.Client{Transport: tr}); err != nil {
			return nil, err
		}
		p, err := startProcess(bin, []string{"--access", s3AccessKey, "--secret", s3SecretKey,
			"--port", addr, "--cert", certFile, "--key", keyFile, "--quiet",
			// Real S3 keeps connections alive; versitygw only when asked.
			"--keep-alive", "posix", root},
			versityEnv(), logs.path(fmt.Sprintf("versitygw-%d.log", attempt)))
		if err != nil {
			return nil, err
		}
		if lastErr = v.waitReady(ctx, p); lastErr == nil {
			v.proc = p
			return v, nil
		}
		p.stop(time.Second)
	}
	return nil, fmt.Errorf("versitygw did not start: %w", lastErr)
}

func (v *versity) waitReady(ctx context.Context, p *process) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := v.Client.ListBuckets(cctx, &s3.ListBucketsInput{})
		cancel()
		switch {
		case err == nil:
			return nil
		case p.exited():
			return fmt.Errorf("versitygw exited: %v; output:\n%s", p.err, p.tail())
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("versitygw did not answer in 10s: %v; output:\n%s", err, p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (v *versity) stop() {
	if v != nil && v.proc != nil {
		v.proc.stop(5 * time.Second)
	}
}

// createBucket makes a fresh, empty bucket.
func (v *versity) createBucket(ctx context.Context, name string) error {
	if _, err := v.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// dropBucket removes a bucket and everything in it by removing its
// directory: the benchmark owns the root, and going through S3 would cost
// one request per object. Dirty pages of files removed before writeback
// never reach the disk, so this also keeps one run's writes from slowing the
// next; flushDisk writes back whatever else is pending.
func (v *versity) dropBucket(name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return fmt.Errorf("refusing to remove bucket %q", name)
	}
	if err := os.RemoveAll(filepath.Join(v.Root, name)); err != nil {
		return err
	}
	flushDisk()
	return nil
}

// versityEnv is the caller's environment without the variables versitygw
// reads as configuration, so the flags alone decide how it runs.
func versityEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "VGW_"), strings.HasPrefix(k, "ROOT_"), k == "LOGFILE", k == "WEBHOOK":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// newS3Client builds the client as production does (LoadDefaultConfig +
// NewFromConfig, so the SDK's default checksums apply) without reading the
// shared config files or AWS_* variables that would change what it sends.
func newS3Client(ctx context.Context, endpoint string, hc *http.Client) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithRegion(s3Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s3AccessKey, s3SecretKey, "")),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenSupported),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	cfg.HTTPClient = hc
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// newCerts makes a CA and a server certificate for 127.0.0.1 and localhost
// signed by it, valid for a day, as PEM.
func newCerts(now time.Time) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "oss2s3 bench CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("marshal server key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}
