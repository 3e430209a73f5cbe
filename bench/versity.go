package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/internal/s3test"
)

// versityInstall is the command that installs the destination server: the
// version internal/s3test runs.
const versityInstall = s3test.VersityInstall

const (
	s3Region    = s3test.Region // the region s3test's clients sign for
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
	caPEM, certPEM, keyPEM, err := s3test.NewCerts(time.Now())
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
	tr := s3test.TrustingTransport(caPEM)
	tr.MaxIdleConnsPerHost = 256
	tr.DisableCompression = true

	// The free port is only free until someone else takes it: if the server
	// dies before it answers, try another one.
	var lastErr error
	for attempt := range 3 {
		addr, err := s3test.FreeAddr()
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
			s3test.VersityEnv(), logs.path(fmt.Sprintf("versitygw-%d.log", attempt)))
		if err != nil {
			return nil, err
		}
		if lastErr = v.waitReady(ctx, p); lastErr == nil {
			v.proc = p
			return v, nil
		}
		_ = p.stop(time.Second) // best effort: lastErr says why it failed
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
		_ = v.proc.stop(5 * time.Second) // teardown, best effort: nothing reads versitygw after it
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

// newS3Client is s3test's client (built as production builds it) with the
// benchmark's keys: uploads carry the SDK's default checksums, downloads are
// validated only where the API requires it.
func newS3Client(ctx context.Context, endpoint string, hc *http.Client) (*s3.Client, error) {
	return s3test.NewClient(ctx, endpoint, s3AccessKey, s3SecretKey, hc,
		aws.RequestChecksumCalculationWhenSupported, aws.ResponseChecksumValidationWhenRequired)
}
