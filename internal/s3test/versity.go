package s3test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// VersityInstall is the command that installs the versitygw binary StartVersity runs.
const VersityInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// versityReadyTimeout bounds the wait for a started versitygw to answer; it
// is usually ready in about 0.1 s.
const versityReadyTimeout = 10 * time.Second

// StartVersity starts versitygw (a real S3 implementation on a posix
// directory) over TLS on 127.0.0.1 and stops it when the test ends.
//
// Without the binary the test is skipped, or fails when the CI variable is
// set, because CI must run it. The client keeps the SDK's default checksum
// behaviour (a CRC32 trailer on every upload), as production does against S3.
func StartVersity(t testing.TB) *Server {
	t.Helper()
	bin, err := findVersity()
	if err != nil {
		msg := fmt.Sprintf("versitygw not found (%v); install it with: %s", err, VersityInstall)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so the real S3 tests must run)")
		}
		t.Skip(msg)
	}

	dir := t.TempDir()
	// Metadata goes to a sidecar directory outside the root so that the
	// server also works where user xattrs are missing (tmpfs, ramfs).
	root, sidecar := filepath.Join(dir, "root"), filepath.Join(dir, "sidecar")
	for _, d := range []string{root, sidecar} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("s3test: %v", err)
		}
	}
	caPEM, certPEM, keyPEM, err := NewCerts(time.Now())
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for name, data := range map[string][]byte{caFile: caPEM, certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatalf("s3test: %v", err)
		}
	}
	tr := TrustingTransport(caPEM)
	hc := &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)

	s := &Server{
		Region:    Region,
		AccessKey: "s3testaccess",
		SecretKey: "s3testsecret",
		CAFile:    caFile,
	}
	// The free port is only free until someone else takes it: if the server
	// dies before it answers, try another port.
	var errs []error
	for range 3 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatalf("s3test: %v", err)
		}
		s.Endpoint = "https://" + addr
		s.Client, err = NewClient(t.Context(), s.Endpoint, s.AccessKey, s.SecretKey, hc,
			aws.RequestChecksumCalculationWhenSupported, aws.ResponseChecksumValidationWhenSupported)
		if err != nil {
			t.Fatalf("s3test: %v", err)
		}
		p, err := startVersity(bin, "--access", s.AccessKey, "--secret", s.SecretKey,
			"--port", addr, "--cert", certFile, "--key", keyFile, "--quiet",
			// Real S3 keeps connections alive; versitygw only when asked.
			"--keep-alive",
			"posix", "--sidecar", sidecar, root)
		if err != nil {
			t.Fatalf("s3test: %v", err)
		}
		if err := p.waitReady(s.Client, versityReadyTimeout); err != nil {
			p.stop()
			errs = append(errs, err)
			if p.exited() {
				continue
			}
			break
		}
		t.Cleanup(p.stop)
		return s
	}
	t.Fatalf("s3test: versitygw did not start: %v", errors.Join(errs...))
	return nil
}

// findVersity looks on PATH, then where `go install` puts binaries.
func findVersity() (string, error) {
	name := "versitygw"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	for _, d := range filepath.SplitList(gopath) {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("not on PATH nor in %s", strings.Join(dirs, ", "))
}

// versityProc is one versitygw process and its captured output.
type versityProc struct {
	cmd  *exec.Cmd
	out  *capBuffer
	done chan struct{} // closed when the process has exited and err is set
	err  error
}

func startVersity(bin string, args ...string) (*versityProc, error) {
	p := &versityProc{out: &capBuffer{max: 64 << 10}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = VersityEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// VersityEnv is the caller's environment without the variables versitygw
// reads as configuration, so the flags alone decide how it runs.
func VersityEnv() []string {
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

// waitReady polls the server with ListBuckets until it answers.
func (p *versityProc) waitReady(client *s3.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("versitygw exited before it answered: %v; output:\n%s", p.err, p.out)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("versitygw did not answer within %v (last error: %v); output:\n%s", timeout, lastErr, p.out)
}

func (p *versityProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *versityProc) stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// capBuffer keeps the first max bytes written to it; the process writes from
// exec's copying goroutines while a failing test reads it.
type capBuffer struct {
	mu        sync.Mutex
	buf       []byte
	max       int
	truncated bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if len(p) > room {
		b.buf = append(b.buf, p[:max(room, 0)]...)
		b.truncated = true
	} else {
		b.buf = append(b.buf, p...)
	}
	return len(p), nil
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return string(b.buf) + "\n[output truncated]"
	}
	return string(b.buf)
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// NewCerts makes a CA and a server certificate for 127.0.0.1, ::1 and
// localhost signed by it, valid for a day, as PEM.
func NewCerts(now time.Time) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "oss2s3 s3test CA"},
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
