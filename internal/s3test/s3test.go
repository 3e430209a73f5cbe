// Package s3test owns the S3 servers that tests, the demo and the benchmarks
// talk to: a real S3 implementation (versitygw over TLS, the production path)
// and an in-process gofakes3 over plain HTTP for fast unit tests, each with an
// aws-sdk-go-v2 client already configured for it.
package s3test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the region every server here answers for.
const Region = "us-east-1"

// Server is a running S3 endpoint and what a client needs to reach it.
type Server struct {
	Endpoint  string // "https://127.0.0.1:PORT" (versitygw) or "http://127.0.0.1:PORT" (fake)
	Region    string
	AccessKey string
	SecretKey string
	CAFile    string // PEM of the CA that signed the server's certificate; "" for plain http

	// Client is configured for this server (path style, BaseEndpoint, the CA
	// trusted), ready for assertions in tests.
	Client *s3.Client
}

// CreateBucket creates bucket name on the server.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	if _, err := s.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %q at %s: %w", name, s.Endpoint, err)
	}
	return nil
}

// NewClient builds a path-style client of endpoint (in Region) the way
// production code does (config.LoadDefaultConfig + s3.NewFromConfig), so
// that the SDK's defaults, checksums included, are the ones under test. The
// shared config files are not read, so a developer's ~/.aws cannot change
// what a test sees, and the checksum settings are always explicit, so AWS_*
// variables cannot either. The HTTP client is set after loading:
// LoadDefaultConfig would otherwise apply AWS_CA_BUNDLE to it (or fail on a
// plain *http.Client), and a test server's client must trust exactly that
// server's CA (see TrustingTransport).
func NewClient(ctx context.Context, endpoint, accessKey, secretKey string, hc *http.Client,
	reqChecksum aws.RequestChecksumCalculation, respChecksum aws.ResponseChecksumValidation) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")),
		config.WithRequestChecksumCalculation(reqChecksum),
		config.WithResponseChecksumValidation(respChecksum),
	)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	cfg.HTTPClient = hc
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		// A multipart object's composite checksum cannot be validated on
		// GET; the SDK would print a warning on stdout for each one.
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}

// TrustingTransport is a copy of http.DefaultTransport that trusts only
// the CA in caPEM, for a server NewCerts made.
func TrustingTransport(caPEM []byte) *http.Transport {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr
}
