package transfer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// User metadata oss2s3 writes on every copy, naming the source version it
// came from, so that "is this copy current?" is an exact question.
const (
	MetaSourceETag  = "oss2s3-source-etag"
	MetaSourceCRC64 = "oss2s3-source-crc64"
	MetaSourceMTime = "oss2s3-source-mtime"
)

// S3Destination writes a task's destination bucket with aws-sdk-go-v2.
type S3Destination struct {
	client    *s3.Client
	cfg       DestinationConfig
	plainHTTP bool
	checksum  types.ChecksumAlgorithm
}

var _ Destination = (*S3Destination)(nil)

// NewS3Destination builds the S3 client for cfg. Credentials not given in cfg
// come from the AWS default chain (environment, profile, instance role).
func NewS3Destination(ctx context.Context, cfg DestinationConfig) (*S3Destination, error) {
	d := &S3Destination{cfg: cfg, plainHTTP: strings.HasPrefix(strings.ToLower(cfg.Endpoint), "http://")}
	opts := []func(*config.LoadOptions) error{config.WithRegion(cfg.Region)}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("destination ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("destination ca_file %s: no PEM certificates in it", cfg.CAFile)
		}
		// Set after loading: LoadDefaultConfig would merge AWS_CA_BUNDLE
		// into (or reject) a client given as an option, and ca_file must
		// be exactly what this endpoint is trusted by.
		awsCfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		})
	}
	d.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = cfg.PathStyle == nil || *cfg.PathStyle
		}
		if d.plainHTTP {
			// Over plain http the SDK cannot stream a body of unknown
			// content with a trailing checksum (REFERENCE.md 10): send it
			// as UNSIGNED-PAYLOAD with a Content-Length instead. Only for
			// explicitly http:// endpoints; AWS itself is always https.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		}
	})
	switch strings.ToUpper(cfg.Checksum) {
	case "", "CRC32C":
		d.checksum = types.ChecksumAlgorithmCrc32c
	case "CRC64NVME":
		d.checksum = types.ChecksumAlgorithmCrc64nvme
	case "NONE":
	default:
		return nil, fmt.Errorf("destination checksum %q: want CRC32C, CRC64NVME or none", cfg.Checksum)
	}
	return d, nil
}

// Client exposes the S3 client (for the demo's and tests' checks).
func (d *S3Destination) Client() *s3.Client { return d.client }

// Put implements Destination.
func (d *S3Destination) Put(ctx context.Context, key string, body io.Reader, size int64, info *ObjectInfo) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(d.cfg.Bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
	}
	h := d.headers(info)
	in.ContentType, in.ContentEncoding, in.ContentLanguage = h.contentType, h.contentEncoding, h.contentLanguage
	in.ContentDisposition, in.CacheControl, in.Expires, in.Metadata = h.contentDisposition, h.cacheControl, h.expires, h.meta
	in.StorageClass, in.ACL = types.StorageClass(d.cfg.StorageClass), types.ObjectCannedACL(d.cfg.ACL)
	in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryption(d.cfg.SSE), h.kmsKey
	if !d.plainHTTP {
		// Over TLS the SDK streams the body with a trailing checksum
		// that S3 verifies before it stores the object.
		in.ChecksumAlgorithm = d.checksum
	}
	if _, err := d.client.PutObject(ctx, in); err != nil {
		return classifyS3("put", key, err)
	}
	return nil
}

// NewUpload implements Destination.
func (d *S3Destination) NewUpload(ctx context.Context, key string, info *ObjectInfo) (Upload, error) {
	h := d.headers(info)
	out, err := d.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key),
		ContentType: h.contentType, ContentEncoding: h.contentEncoding, ContentLanguage: h.contentLanguage,
		ContentDisposition: h.contentDisposition, CacheControl: h.cacheControl, Expires: h.expires, Metadata: h.meta,
		StorageClass: types.StorageClass(d.cfg.StorageClass), ACL: types.ObjectCannedACL(d.cfg.ACL),
		ServerSideEncryption: types.ServerSideEncryption(d.cfg.SSE), SSEKMSKeyId: h.kmsKey,
		ChecksumAlgorithm: d.checksum,
	})
	if err != nil {
		return nil, classifyS3("create multipart upload", key, err)
	}
	return &s3Upload{d: d, key: key, id: aws.ToString(out.UploadId)}, nil
}

type s3Headers struct {
	contentType, contentEncoding, contentLanguage, contentDisposition, cacheControl, kmsKey *string
	expires                                                                                 *time.Time
	meta                                                                                    map[string]string
}

func (d *S3Destination) headers(info *ObjectInfo) s3Headers {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return aws.String(s)
	}
	h := s3Headers{
		contentType: str(info.ContentType), contentEncoding: str(info.ContentEncoding),
		contentLanguage: str(info.ContentLanguage), contentDisposition: str(info.ContentDisposition),
		cacheControl: str(info.CacheControl), kmsKey: str(d.cfg.SSEKMSKeyID),
		meta: make(map[string]string, len(info.Meta)+3),
	}
	if t, err := http.ParseTime(info.Expires); err == nil {
		h.expires = &t
	}
	for k, v := range info.Meta {
		h.meta[k] = v
	}
	h.meta[MetaSourceETag] = info.ETag
	if info.HasCRC64 {
		h.meta[MetaSourceCRC64] = strconv.FormatUint(info.CRC64, 10)
	}
	if !info.LastModified.IsZero() {
		h.meta[MetaSourceMTime] = info.LastModified.UTC().Format(time.RFC3339)
	}
	return h
}

type s3Upload struct {
	d     *S3Destination
	key   string
	id    string
	mu    sync.Mutex
	parts []types.CompletedPart
}

func (u *s3Upload) UploadPart(ctx context.Context, number int32, part []byte) error {
	out, err := u.d.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(u.d.cfg.Bucket), Key: aws.String(u.key), UploadId: aws.String(u.id),
		PartNumber: aws.Int32(number), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part))),
		ChecksumAlgorithm: u.d.checksum,
	})
	if err != nil {
		return classifyS3(fmt.Sprintf("upload part %d of", number), u.key, err)
	}
	u.mu.Lock()
	u.parts = append(u.parts, types.CompletedPart{
		PartNumber: aws.Int32(number), ETag: out.ETag,
		ChecksumCRC32C: out.ChecksumCRC32C, ChecksumCRC64NVME: out.ChecksumCRC64NVME,
	})
	u.mu.Unlock()
	return nil
}

func (u *s3Upload) Complete(ctx context.Context) error {
	u.mu.Lock()
	parts := append([]types.CompletedPart(nil), u.parts...)
	u.mu.Unlock()
	sort.Slice(parts, func(i, j int) bool { return *parts[i].PartNumber < *parts[j].PartNumber })
	_, err := u.d.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(u.d.cfg.Bucket), Key: aws.String(u.key), UploadId: aws.String(u.id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return classifyS3("complete multipart upload", u.key, err)
	}
	return nil
}

func (u *s3Upload) Abort(ctx context.Context) error {
	_, err := u.d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(u.d.cfg.Bucket), Key: aws.String(u.key), UploadId: aws.String(u.id),
	})
	if err != nil {
		return classifyS3("abort multipart upload", u.key, err)
	}
	return nil
}

// permanentS3Codes are S3 error codes that no retry fixes.
var permanentS3Codes = map[string]bool{
	"AccessDenied": true, "AllAccessDisabled": true, "InvalidAccessKeyId": true,
	"SignatureDoesNotMatch": true, "NoSuchBucket": true, "InvalidBucketName": true,
	"InvalidStorageClass": true, "AccountProblem": true, "InvalidArgument": true,
	"KMS.DisabledException": true, "KMS.NotFoundException": true,
}

func classifyS3(op, key string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && permanentS3Codes[ae.ErrorCode()] {
		return Permanent(fmt.Errorf("s3 %s %q: %w", op, key, err))
	}
	return fmt.Errorf("s3 %s %q: %w", op, key, err)
}
