package reconcile

import (
	"context"
	"fmt"
	"strings"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// pageSize is the largest page both APIs return.
const pageSize = 1000

func size(n int) int {
	if n <= 0 || n > pageSize {
		return pageSize
	}
	return n
}

// OSSLister lists an OSS bucket with ListObjectsV2 (aliyun-oss-go-sdk),
// which returns keys in byte order.
type OSSLister struct {
	Bucket   *oss.Bucket
	PageSize int // keys per request, at most (and by default) 1000
}

// List implements Lister.
func (l *OSSLister) List(ctx context.Context, q Query, fn func([]Entry) error) error {
	opts := []oss.Option{oss.MaxKeys(size(l.PageSize)), oss.WithContext(ctx)}
	if q.Prefix != "" {
		opts = append(opts, oss.Prefix(q.Prefix))
	}
	if q.StartAfter != "" {
		opts = append(opts, oss.StartAfter(q.StartAfter))
	}
	if q.Delimiter != "" {
		opts = append(opts, oss.Delimiter(q.Delimiter))
	}
	var es []Entry
	token := ""
	for {
		o := opts
		if token != "" {
			o = append(o[:len(o):len(o)], oss.ContinuationToken(token))
		}
		res, err := l.Bucket.ListObjectsV2(o...)
		if err != nil {
			return fmt.Errorf("oss list objects: %w", err)
		}
		es = es[:0]
		for _, p := range res.Objects {
			es = append(es, Entry{Key: p.Key, Size: p.Size, ETag: strings.Trim(p.ETag, `"`),
				LastModified: p.LastModified, StorageClass: p.StorageClass, ObjectType: p.Type})
		}
		if err := fn(es); err != nil {
			return err
		}
		if !res.IsTruncated {
			return nil
		}
		if res.NextContinuationToken == "" || res.NextContinuationToken == token {
			return fmt.Errorf("oss list objects: truncated page without a new continuation token")
		}
		token = res.NextContinuationToken
	}
}

// S3Lister lists an S3 bucket with ListObjectsV2 (aws-sdk-go-v2), which
// returns keys in byte order.
type S3Lister struct {
	Client   *s3.Client
	Bucket   string
	PageSize int // keys per request, at most (and by default) 1000
}

// List implements Lister.
func (l *S3Lister) List(ctx context.Context, q Query, fn func([]Entry) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket), MaxKeys: aws.Int32(int32(size(l.PageSize)))}
	if q.Prefix != "" {
		in.Prefix = aws.String(q.Prefix)
	}
	if q.StartAfter != "" {
		in.StartAfter = aws.String(q.StartAfter)
	}
	if q.Delimiter != "" {
		in.Delimiter = aws.String(q.Delimiter)
	}
	var es []Entry
	for {
		out, err := l.Client.ListObjectsV2(ctx, in)
		if err != nil {
			return fmt.Errorf("s3 list objects: %w", err)
		}
		es = es[:0]
		for _, o := range out.Contents {
			e := Entry{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ETag: strings.Trim(aws.ToString(o.ETag), `"`),
				StorageClass: string(o.StorageClass)}
			if o.LastModified != nil {
				e.LastModified = *o.LastModified
			}
			es = append(es, e)
		}
		if err := fn(es); err != nil {
			return err
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		next := aws.ToString(out.NextContinuationToken)
		if next == "" || next == aws.ToString(in.ContinuationToken) {
			return fmt.Errorf("s3 list objects: truncated page without a new continuation token")
		}
		in.ContinuationToken = aws.String(next)
	}
}

// CommonPrefixes lists the prefixes one delimiter deep under prefix.
func (l *OSSLister) CommonPrefixes(ctx context.Context, prefix, delimiter string) ([]string, error) {
	var out []string
	token := ""
	for {
		opts := []oss.Option{oss.MaxKeys(pageSize), oss.WithContext(ctx), oss.Delimiter(delimiter), oss.Prefix(prefix)}
		if token != "" {
			opts = append(opts, oss.ContinuationToken(token))
		}
		res, err := l.Bucket.ListObjectsV2(opts...)
		if err != nil {
			return nil, fmt.Errorf("oss list prefixes: %w", err)
		}
		out = append(out, res.CommonPrefixes...)
		if !res.IsTruncated || res.NextContinuationToken == "" {
			return out, nil
		}
		token = res.NextContinuationToken
	}
}

// CommonPrefixes lists the prefixes one delimiter deep under prefix.
func (l *S3Lister) CommonPrefixes(ctx context.Context, prefix, delimiter string) ([]string, error) {
	var out []string
	in := &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket), Delimiter: aws.String(delimiter)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	p := s3.NewListObjectsV2Paginator(l.Client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3 list prefixes: %w", err)
		}
		for _, cp := range page.CommonPrefixes {
			out = append(out, aws.ToString(cp.Prefix))
		}
	}
	return out, nil
}
