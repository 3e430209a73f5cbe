package transfer

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
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
	lean      *leanS3 // nil: every request goes through the SDK
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
	if cfg.RoleARN != "" {
		awsCfg.Credentials = assumeRole(awsCfg, cfg)
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
	if bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
		// The SDK keeps 10 idle connections per host; every worker and
		// every part in flight talks to the same host, and a new TLS
		// connection per request would cost more than a small object.
		awsCfg.HTTPClient = bc.WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 1024
			// HTTPS without a proxy: bodies go out in 256 KiB batches of
			// TLS records (tlsbatch.go), not a system call per record.
			t.DialTLSContext = batchedTLSDialer(t.DialContext, t.TLSClientConfig, t.TLSHandshakeTimeout)
		}).WithReadTimeout(cmp.Or(cfg.ReadTimeout, DefaultReadTimeout))
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
	if d.checksum != types.ChecksumAlgorithmCrc64nvme {
		d.lean = newLeanS3(awsCfg, cfg)
	}
	return d, nil
}

// RoleRenewal is how long before they expire the credentials of an assumed
// role are renewed: a request never starts with keys about to lapse, and a
// multipart upload's parts are signed with keys that outlast them.
const RoleRenewal = 5 * time.Minute

// DefaultRoleSessionName names oss2s3's sessions in the destination's
// CloudTrail when role_session_name is not set.
const DefaultRoleSessionName = "oss2s3"

// assumeRole returns the credentials of cfg.RoleARN, assumed with awsCfg's
// credentials (the keys in cfg, or the default chain) and cached until
// RoleRenewal before they expire.
func assumeRole(awsCfg aws.Config, cfg DestinationConfig) aws.CredentialsProvider {
	client := sts.NewFromConfig(awsCfg, func(o *sts.Options) {
		if cfg.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.STSEndpoint)
		}
	})
	provider := stscreds.NewAssumeRoleProvider(client, cfg.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = cmp.Or(cfg.RoleSessionName, DefaultRoleSessionName)
		if cfg.ExternalID != "" {
			o.ExternalID = aws.String(cfg.ExternalID)
		}
	})
	return aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = RoleRenewal })
}

// Client exposes the S3 client (for the demo's and tests' checks).
func (d *S3Destination) Client() *s3.Client { return d.client }

// Head implements Destination.
func (d *S3Destination) Head(ctx context.Context, key string) (*ObjectInfo, error) {
	if d.lean != nil {
		return d.lean.head(ctx, key)
	}
	out, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		var nf *types.NotFound
		var nsk *types.NoSuchKey
		if errors.As(err, &nf) || errors.As(err, &nsk) {
			return nil, fmt.Errorf("s3 head %q: %w", key, ErrNotFound)
		}
		return nil, classifyS3("head", key, err)
	}
	info := &ObjectInfo{
		Key: key, Size: aws.ToInt64(out.ContentLength), ETag: strings.Trim(aws.ToString(out.ETag), `"`),
		ContentType: aws.ToString(out.ContentType), ContentEncoding: aws.ToString(out.ContentEncoding),
		StorageClass: string(out.StorageClass), Meta: out.Metadata,
	}
	if out.LastModified != nil {
		info.LastModified = *out.LastModified
	}
	return info, nil
}

// Delete implements Destination.
func (d *S3Destination) Delete(ctx context.Context, key string) error {
	_, err := d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return classifyS3("delete", key, err)
	}
	return nil
}

// Put implements Destination.
func (d *S3Destination) Put(ctx context.Context, key string, body io.Reader, size int64, w *WriteInfo) error {
	h := d.headers(w)
	in := &s3.PutObjectInput{
		Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key), Body: body, ContentLength: aws.Int64(size),
		ContentType: h.contentType, ContentEncoding: h.contentEncoding, ContentLanguage: h.contentLanguage,
		ContentDisposition: h.contentDisposition, CacheControl: h.cacheControl, Expires: h.expires, Metadata: h.meta,
		StorageClass: h.storageClass, ACL: types.ObjectCannedACL(d.cfg.ACL), Tagging: h.tagging,
		ServerSideEncryption: types.ServerSideEncryption(d.cfg.SSE), SSEKMSKeyId: h.kmsKey,
	}
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

var _ BytesPutter = (*S3Destination)(nil)

// PutBytes implements BytesPutter: one PUT of bytes already read and
// verified, with their CRC32C in a header for S3 to check.
func (d *S3Destination) PutBytes(ctx context.Context, key string, body []byte, w *WriteInfo, ifAbsent bool) error {
	if d.lean == nil {
		if ifAbsent {
			return ErrExists // no conditional write here: let the caller look first
		}
		return d.Put(ctx, key, bytes.NewReader(body), int64(len(body)), w)
	}
	sum := ""
	if d.checksum == types.ChecksumAlgorithmCrc32c {
		sum = crc32cBase64(body)
	}
	return d.lean.put(ctx, key, body, sum, d.headers(w), d.cfg, ifAbsent)
}

// TagCRC64 is the object tag that records a CRC-64 oss2s3 computed itself.
const TagCRC64 = "oss2s3-crc64"

var _ CRCRecorder = (*S3Destination)(nil)

// RecordCRC64 implements CRCRecorder with an object tag (tags, unlike
// metadata, can be changed without rewriting the object).
func (d *S3Destination) RecordCRC64(ctx context.Context, key string, crc uint64) error {
	cur, err := d.client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return classifyS3("get tagging", key, err)
	}
	tags := []types.Tag{{Key: aws.String(TagCRC64), Value: aws.String(strconv.FormatUint(crc, 10))}}
	for _, t := range cur.TagSet {
		if aws.ToString(t.Key) != TagCRC64 {
			tags = append(tags, t)
		}
	}
	_, err = d.client.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key),
		Tagging: &types.Tagging{TagSet: tags}})
	if err != nil {
		return classifyS3("put tagging", key, err)
	}
	return nil
}

// CreateUpload implements Multipart.
func (d *S3Destination) CreateUpload(ctx context.Context, key string, w *WriteInfo) (string, error) {
	h := d.headers(w)
	out, err := d.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key),
		ContentType: h.contentType, ContentEncoding: h.contentEncoding, ContentLanguage: h.contentLanguage,
		ContentDisposition: h.contentDisposition, CacheControl: h.cacheControl, Expires: h.expires, Metadata: h.meta,
		StorageClass: h.storageClass, ACL: types.ObjectCannedACL(d.cfg.ACL), Tagging: h.tagging,
		ServerSideEncryption: types.ServerSideEncryption(d.cfg.SSE), SSEKMSKeyId: h.kmsKey,
		ChecksumAlgorithm: d.checksum,
	}, func(o *s3.Options) {
		// Not retried here: an answer lost on the way back (a reset
		// connection) after S3 created the upload would make the retry
		// create a second one, and the first would be left open with
		// nothing naming it. The job is retried instead, and the note
		// the copier made before this call names the lost upload for the
		// orphan sweeper.
		o.RetryMaxAttempts = 1
	})
	if err != nil {
		return "", classifyS3("create multipart upload", key, err)
	}
	return aws.ToString(out.UploadId), nil
}

// UploadPart implements Multipart. The SDK computes the part's checksum
// and S3 refuses the part if the bytes it received do not match.
func (d *S3Destination) UploadPart(ctx context.Context, key, uploadID string, number int32, part []byte) (Part, error) {
	out, err := d.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
		PartNumber: aws.Int32(number), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part))),
		ChecksumAlgorithm: d.checksum,
	})
	if err != nil {
		return Part{}, classifyS3(fmt.Sprintf("upload part %d of", number), key, err)
	}
	return Part{
		Number: number, Size: int64(len(part)), ETag: aws.ToString(out.ETag),
		ChecksumCRC32C: aws.ToString(out.ChecksumCRC32C), ChecksumCRC64N: aws.ToString(out.ChecksumCRC64NVME),
	}, nil
}

// CompleteUpload implements Multipart.
func (d *S3Destination) CompleteUpload(ctx context.Context, key, uploadID string, parts []Part) error {
	cp := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		cp[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
		if p.ChecksumCRC32C != "" {
			cp[i].ChecksumCRC32C = aws.String(p.ChecksumCRC32C)
		}
		if p.ChecksumCRC64N != "" {
			cp[i].ChecksumCRC64NVME = aws.String(p.ChecksumCRC64N)
		}
	}
	sort.Slice(cp, func(i, j int) bool { return *cp[i].PartNumber < *cp[j].PartNumber })
	_, err := d.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cp},
	})
	if err != nil {
		return classifyS3("complete multipart upload", key, err)
	}
	return nil
}

// AbortUpload implements Multipart.
func (d *S3Destination) AbortUpload(ctx context.Context, key, uploadID string) error {
	_, err := d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	if err != nil {
		return classifyS3("abort multipart upload", key, err)
	}
	return nil
}

// ListUploads implements UploadLister: fn is called with each upload in
// progress under prefix until it returns false.
func (d *S3Destination) ListUploads(ctx context.Context, prefix string, fn func(Upload) bool) error {
	p := s3.NewListMultipartUploadsPaginator(d.client, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(d.cfg.Bucket), Prefix: aws.String(prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return classifyS3("list multipart uploads under", prefix, err)
		}
		for _, u := range page.Uploads {
			if !fn(Upload{Key: aws.ToString(u.Key), UploadID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)}) {
				return nil
			}
		}
	}
	return nil
}

var _ UploadLister = (*S3Destination)(nil)

type s3Headers struct {
	contentType, contentEncoding, contentLanguage, contentDisposition, cacheControl, kmsKey, tagging *string
	expires                                                                                          *time.Time
	storageClass                                                                                     types.StorageClass
	meta                                                                                             map[string]string
}

func (d *S3Destination) headers(w *WriteInfo) s3Headers {
	info := w.Source
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return aws.String(s)
	}
	h := s3Headers{
		kmsKey:       str(d.cfg.SSEKMSKeyID),
		storageClass: types.StorageClass(d.cfg.StorageClass),
		meta:         make(map[string]string, len(info.Meta)+3),
	}
	if w.StorageClass != "" {
		h.storageClass = types.StorageClass(w.StorageClass)
	}
	if d.cfg.CopiesMetadata() {
		h.contentType, h.contentEncoding = str(info.ContentType), str(info.ContentEncoding)
		h.contentLanguage, h.contentDisposition = str(info.ContentLanguage), str(info.ContentDisposition)
		h.cacheControl = str(info.CacheControl)
		if t, err := http.ParseTime(info.Expires); err == nil {
			h.expires = &t
		}
		for k, v := range info.Meta {
			h.meta[k] = v
		}
	}
	for k, v := range SourceIdentity(info) {
		h.meta[k] = v
	}
	if len(w.Tags) > 0 {
		q := url.Values{}
		for k, v := range w.Tags {
			q.Set(k, v)
		}
		h.tagging = aws.String(q.Encode())
	}
	return h
}

// SourceIdentity is the user metadata that names the source version a copy
// was made from.
func SourceIdentity(info *ObjectInfo) map[string]string {
	m := map[string]string{MetaSourceETag: info.ETag}
	if info.HasCRC64 {
		m[MetaSourceCRC64] = strconv.FormatUint(info.CRC64, 10)
	}
	if !info.LastModified.IsZero() {
		m[MetaSourceMTime] = info.LastModified.UTC().Format(time.RFC3339)
	}
	return m
}

// permanentS3Codes are S3 error codes that no retry fixes.
var permanentS3Codes = map[string]bool{
	"AccessDenied": true, "AllAccessDisabled": true, "InvalidAccessKeyId": true,
	"SignatureDoesNotMatch": true, "NoSuchBucket": true, "InvalidBucketName": true,
	"InvalidStorageClass": true, "AccountProblem": true, "InvalidArgument": true,
	"KMS.DisabledException": true, "KMS.NotFoundException": true,
	"Forbidden": true, // a HEAD's AccessDenied: HEAD answers have no body to name the code
}

// retryable400 are the 400 answers that another attempt can fix; any other
// 400 means the request itself is wrong and will stay wrong.
var retryable400 = map[string]bool{
	"RequestTimeout": true, "BadDigest": true, "XAmzContentSHA256Mismatch": true,
	"IncompleteBody": true, "InvalidPart": true, "ExpiredToken": true, "RequestTimeTooSkewed": true,
}

func classifyS3(op, key string, err error) error {
	var re *awshttp.ResponseError
	var ae smithy.APIError
	if errors.As(err, &re) && errors.As(err, &ae) && re.HTTPStatusCode() == http.StatusBadRequest && !retryable400[ae.ErrorCode()] {
		return Permanent(fmt.Errorf("s3 %s %q: %w", op, key, err))
	}
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
		return fmt.Errorf("s3 %s %q: %w: %w", op, key, ErrNoSuchUpload, err)
	}
	if errors.As(err, &ae) && permanentS3Codes[ae.ErrorCode()] {
		return Permanent(fmt.Errorf("s3 %s %q: %w", op, key, err))
	}
	if errors.As(err, &re) {
		code := ""
		if ae != nil {
			code = ae.ErrorCode()
		}
		err = throttled(re.HTTPStatusCode(), code, err)
	}
	return fmt.Errorf("s3 %s %q: %w", op, key, err)
}

// DefaultReadTimeout (DestinationConfig.ReadTimeout unless set) ends a request whose
// connection delivers nothing for this long (it is reset by every byte received): a connection that went silent
// (a middlebox that drops it, a stalled server) otherwise holds a job, and
// the worker that keeps it alive, for ever. S3 keeps a slow
// CompleteMultipartUpload talking with whitespace.
const DefaultReadTimeout = 90 * time.Second

// BucketName is the destination bucket's name.
func (d *S3Destination) BucketName() string { return d.cfg.Bucket }

// Open streams a destination object (for a content comparison).
func (d *S3Destination) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, fmt.Errorf("s3 get %q: %w", key, ErrNotFound)
		}
		return nil, classifyS3("get", key, err)
	}
	return out.Body, nil
}
