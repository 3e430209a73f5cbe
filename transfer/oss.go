package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

// OSSSource reads a task's source bucket with the Aliyun OSS SDK.
type OSSSource struct {
	bucket *oss.Bucket
	payer  bool // requester pays: every request says so
	keys   KeySource
	bw     *bandwidth // the task's cap on the bytes read; nil: none
	limit  int64      // the cap, bytes a second
}

// Bandwidth is the cap SetBandwidth set, in bytes a second; 0: none.
func (s *OSSSource) Bandwidth() int64 { return s.limit }

// SetBandwidth caps the bytes per second this process reads from the
// source for its copies (0: no cap); waited, if set, hears every pause
// the cap makes. Call it before the source is used.
func (s *OSSSource) SetBandwidth(bytesPerSec int64, waited func(time.Duration)) {
	s.limit = bytesPerSec
	s.bw = nil
	if bytesPerSec > 0 {
		s.bw = newBandwidth(bytesPerSec, waited)
	}
}

var (
	_ Source   = (*OSSSource)(nil)
	_ Restorer = (*OSSSource)(nil)
	_ Tagger   = (*OSSSource)(nil)
	_ Opener   = (*OSSSource)(nil)
)

// NewOSSSource builds the OSS client for cfg, signing with the keys written
// in cfg.
func NewOSSSource(cfg SourceConfig, httpClient *http.Client) (*OSSSource, error) {
	return NewOSSSourceKeys(cfg, StaticKeys{AccessKeyID: cfg.AccessKeyID, AccessKeySecret: cfg.AccessKeySecret, SecurityToken: cfg.SecurityToken}, httpClient)
}

// OpenOSSSource builds the OSS client for cfg with the keys its credentials
// name (SourceKeys): a secret that cannot be read fails here, at start. log
// (nil: discarded) hears when the keys are read again, never the keys.
func OpenOSSSource(ctx context.Context, cfg SourceConfig, httpClient *http.Client, log *slog.Logger) (*OSSSource, error) {
	keys, err := SourceKeys(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	return NewOSSSourceKeys(cfg, keys, httpClient)
}

// NewOSSSourceKeys builds the OSS client for cfg, signing every request
// with what keys hands out at that moment; a request whose keys OSS refuses
// is sent once more after keys are read again.
func NewOSSSourceKeys(cfg SourceConfig, keys KeySource, httpClient *http.Client) (*OSSSource, error) {
	// Enough idle connections for every worker and part in flight to
	// reuse one (the SDK keeps 100); 0 connections per host: no limit.
	// The SDK's own CRC of a GET is off: the copier computes the CRC-64 of
	// every byte it reads and compares it itself (one pass, not two).
	opts := []oss.ClientOption{oss.Timeout(10, 120), oss.MaxConns(1024, 1024, 0), oss.EnableCRC(false),
		oss.SetCredentialsProvider(ossProvider{keys})}
	if cfg.Region != "" {
		opts = append(opts, oss.Region(cfg.Region))
	}
	if strings.EqualFold(cfg.SignatureVersion, "v4") {
		opts = append(opts, oss.AuthVersion(oss.AuthV4))
	}
	if httpClient != nil {
		opts = append(opts, oss.HTTPClient(httpClient))
	}
	client, err := oss.New(cfg.Endpoint, "", "", opts...)
	if err != nil {
		return nil, fmt.Errorf("oss client for %s: %w", cfg.Endpoint, err)
	}
	b, err := client.Bucket(cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("oss bucket %s: %w", cfg.Bucket, err)
	}
	return &OSSSource{bucket: b, keys: keys, payer: cfg.RequesterPays}, nil
}

// WithKeys runs one request; if OSS refuses its keys, it reads the keys
// again (once, whatever the number of requests refused alike) and runs
// the request once more. Requests sent on Bucket() go through it too.
func (s *OSSSource) WithKeys(ctx context.Context, request func() error) error {
	_, gen, _ := s.keys.Keys()
	err := request()
	if !refusedKeys(err) || s.keys.Refresh(ctx, gen) != nil {
		return err
	}
	return request()
}

// Head implements Source.
func (s *OSSSource) Head(ctx context.Context, key string) (*ObjectInfo, error) {
	var h http.Header
	err := s.WithKeys(ctx, func() (err error) {
		h, err = s.bucket.GetObjectDetailedMeta(key, s.with(ctx)...)
		return err
	})
	if err != nil {
		return nil, classifyOSS("head", key, err)
	}
	return objectInfoFromOSS(key, h)
}

// Get implements Source. It asks for the stored bytes (Accept-Encoding:
// identity): Go's transport would otherwise ask for gzip and silently
// decompress an object stored with Content-Encoding: gzip.
func (s *OSSSource) Get(ctx context.Context, key, etag string, offset, length int64) (io.ReadCloser, error) {
	// With range behaviour "standard" OSS answers a range past the end
	// with an error instead of silently sending the whole object.
	opts := append(s.with(ctx), oss.AcceptEncoding("identity"), oss.RangeBehavior("standard"))
	if etag != "" {
		opts = append(opts, oss.IfMatch(`"`+etag+`"`))
	}
	switch {
	case length > 0:
		opts = append(opts, oss.Range(offset, offset+length-1))
	case offset > 0:
		opts = append(opts, oss.NormalizedRange(strconv.FormatInt(offset, 10)+"-"))
	}
	var body io.ReadCloser
	err := s.WithKeys(ctx, func() (err error) {
		body, err = s.bucket.GetObject(key, opts...)
		return err
	})
	if err != nil {
		return nil, classifyOSS("get", key, err)
	}
	if s.bw != nil {
		return s.bw.wrap(ctx, body), nil
	}
	return body, nil
}

// Open implements Opener: one GET that returns the object's headers with
// its body, so a small object costs one request, not a HEAD and a GET.
func (s *OSSSource) Open(ctx context.Context, key string) (*ObjectInfo, io.ReadCloser, error) {
	var res *oss.GetObjectResult
	err := s.WithKeys(ctx, func() (err error) {
		res, err = s.bucket.DoGetObject(&oss.GetObjectRequest{ObjectKey: key},
			append(s.with(ctx), oss.AcceptEncoding("identity")))
		return err
	})
	if err != nil {
		return nil, nil, classifyOSS("get", key, err)
	}
	info, err := objectInfoFromOSS(key, res.Response.Headers)
	if err != nil {
		res.Response.Close()
		return nil, nil, err
	}
	if s.bw != nil {
		return info, s.bw.wrap(ctx, res.Response.Body), nil
	}
	return info, res.Response.Body, nil
}

// Restore implements Restorer: it asks OSS to restore an archived object.
// Asking again while a restore is under way is not an error.
func (s *OSSSource) Restore(ctx context.Context, key string) error {
	err := s.WithKeys(ctx, func() error { return s.bucket.RestoreObject(key, s.with(ctx)...) })
	var se oss.ServiceError
	if errors.As(err, &se) && se.Code == "RestoreAlreadyInProgress" {
		return nil
	}
	if err != nil {
		return classifyOSS("restore", key, err)
	}
	return nil
}

// Tags implements Tagger.
func (s *OSSSource) Tags(ctx context.Context, key string) (map[string]string, error) {
	var res oss.GetObjectTaggingResult
	err := s.WithKeys(ctx, func() (err error) {
		res, err = s.bucket.GetObjectTagging(key, s.with(ctx)...)
		return err
	})
	if err != nil {
		return nil, classifyOSS("get tagging", key, err)
	}
	tags := make(map[string]string, len(res.Tags))
	for _, t := range res.Tags {
		tags[t.Key] = t.Value
	}
	return tags, nil
}

// RestoreDone reports whether an x-oss-restore (or x-amz-restore) header
// says a restore has finished.
func RestoreDone(h string) bool {
	return strings.Contains(strings.ReplaceAll(h, " ", ""), `ongoing-request="false"`)
}

func objectInfoFromOSS(key string, h http.Header) (*ObjectInfo, error) {
	size, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("head %q: bad Content-Length %q", key, h.Get("Content-Length"))
	}
	info := &ObjectInfo{
		Key:                key,
		Size:               size,
		ETag:               strings.Trim(h.Get("ETag"), `"`),
		ContentType:        h.Get("Content-Type"),
		ContentEncoding:    h.Get("Content-Encoding"),
		ContentLanguage:    h.Get("Content-Language"),
		ContentDisposition: h.Get("Content-Disposition"),
		CacheControl:       h.Get("Cache-Control"),
		Expires:            h.Get("Expires"),
		StorageClass:       h.Get("X-Oss-Storage-Class"),
		ObjectType:         h.Get("X-Oss-Object-Type"),
		Restore:            h.Get("X-Oss-Restore"),
		Meta:               map[string]string{},
	}
	if n, err := strconv.Atoi(h.Get("X-Oss-Tagging-Count")); err == nil {
		info.TagCount = n
	}
	if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
		info.LastModified = lm.UTC()
	}
	if v := h.Get("X-Oss-Hash-Crc64ecma"); v != "" {
		crc, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("head %q: bad x-oss-hash-crc64ecma %q", key, v)
		}
		info.CRC64, info.HasCRC64 = crc, true
	}
	for name, vals := range h {
		if m, ok := strings.CutPrefix(strings.ToLower(name), "x-oss-meta-"); ok && len(vals) > 0 {
			info.Meta[m] = vals[0]
		}
	}
	return info, nil
}

// classifyOSS turns an SDK error into ErrNotFound, a Permanent error or a
// retryable one.
func classifyOSS(op, key string, err error) error {
	var se oss.ServiceError
	if errors.As(err, &se) {
		switch {
		case se.StatusCode == http.StatusNotFound && se.Code == "NoSuchBucket":
			return Permanent(fmt.Errorf("oss %s %q: %s: %s", op, key, se.Code, se.Message))
		case se.StatusCode == http.StatusNotFound:
			return fmt.Errorf("oss %s %q: %w", op, key, ErrNotFound)
		case se.StatusCode == http.StatusPreconditionFailed:
			return fmt.Errorf("oss %s %q: %w", op, key, ErrSourceChanged)
		case se.Code == "AccessDenied" || se.Code == "InvalidAccessKeyId" || se.Code == "SignatureDoesNotMatch" ||
			se.Code == "InvalidObjectState" || se.Code == "InvalidBucketName":
			return Permanent(fmt.Errorf("oss %s %q: %s (HTTP %d): %s", op, key, se.Code, se.StatusCode, se.Message))
		case se.StatusCode == http.StatusForbidden && se.Code == "":
			return Permanent(fmt.Errorf("oss %s %q: HTTP 403", op, key))
		}
		return throttled(se.StatusCode, se.Code, fmt.Errorf("oss %s %q: %s (HTTP %d): %s", op, key, se.Code, se.StatusCode, se.Message))
	}
	var ue oss.UnexpectedStatusCodeError
	if errors.As(err, &ue) {
		return throttled(ue.Got(), "", fmt.Errorf("oss %s %q: %w", op, key, err))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("oss %s %q: timed out: %w", op, key, err)
	}
	return fmt.Errorf("oss %s %q: %w", op, key, err)
}

// Bucket exposes the SDK's bucket handle (for listings).
func (s *OSSSource) Bucket() *oss.Bucket { return s.bucket }

// RequesterPays reports whether every request must say the requester pays.
func (s *OSSSource) RequesterPays() bool { return s.payer }

// with is the options every request carries: its context, and the
// requester-pays header when the task asks for it.
func (s *OSSSource) with(ctx context.Context) []oss.Option {
	if s.payer {
		return []oss.Option{oss.WithContext(ctx), oss.RequestPayer(oss.Requester)}
	}
	return []oss.Option{oss.WithContext(ctx)}
}
