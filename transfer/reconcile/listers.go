package reconcile

// Listers: the OSS and S3 listings, each request signed by its SDK and
// each page parsed here.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
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
	// RequesterPays sends x-oss-request-payer: requester (the source
	// task's requester_pays).
	RequesterPays bool
	// Send, if set, sends each request (transfer.OSSSource.WithKeys: sent
	// again once with keys read anew when OSS refuses them).
	Send func(ctx context.Context, request func() error) error
}

// List implements Lister. The SDK signs and sends each request (and turns
// an error answer into its ServiceError); the page is parsed here (see
// parseListing).
func (l *OSSLister) List(ctx context.Context, q Query, fn func([]Entry) error) error {
	n := l.PageSize
	if q.Max > 0 {
		n = q.Max
	}
	opts := []oss.Option{oss.MaxKeys(size(n)), oss.EncodingType("url"), oss.ListType(2)}
	if q.Prefix != "" {
		opts = append(opts, oss.Prefix(q.Prefix))
	}
	if q.StartAfter != "" {
		opts = append(opts, oss.StartAfter(q.StartAfter))
	}
	if q.Delimiter != "" {
		opts = append(opts, oss.Delimiter(q.Delimiter))
	}
	var headers map[string]string
	if l.RequesterPays {
		headers = map[string]string{oss.HTTPHeaderOssRequester: "requester"}
	}
	var es []Entry
	var buf bytes.Buffer
	token := ""
	for {
		o := opts
		if token != "" {
			o = append(o[:len(o):len(o)], oss.ContinuationToken(token))
		}
		params, err := oss.GetRawParams(o)
		if err != nil {
			return err
		}
		var res *oss.Response
		send := func() (err error) {
			res, err = l.Bucket.Client.Conn.DoWithContext(ctx, "GET", l.Bucket.BucketName, "", params, headers, nil, 0, nil)
			return err
		}
		if l.Send != nil {
			err = l.Send(ctx, send)
		} else {
			err = send()
		}
		if err != nil {
			return fmt.Errorf("oss list objects: %w", err)
		}
		buf.Reset()
		_, err = buf.ReadFrom(res.Body)
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("oss list objects: read the answer: %w", err)
		}
		p, err := parseListing(buf.Bytes(), true, es)
		if err != nil {
			return fmt.Errorf("oss list objects: %w", err)
		}
		es = p.entries
		if err := fn(es); err != nil {
			return err
		}
		if !p.truncated {
			return nil
		}
		if p.next == token {
			return fmt.Errorf("oss list objects: truncated page without a new continuation token")
		}
		token = p.next
	}
}

// S3Lister lists an S3 bucket with ListObjectsV2 (aws-sdk-go-v2), which
// returns keys in byte order.
type S3Lister struct {
	Client   *s3.Client
	Bucket   string
	PageSize int // keys per request, at most (and by default) 1000

	once sync.Once
	fast *s3.Client
}

// fastClient is Client with an HTTP client that parses listing answers
// itself (see parseListing) and hands the SDK an empty one: the SDK still
// signs, retries and decodes errors.
func (l *S3Lister) fastClient() *s3.Client {
	l.once.Do(func() {
		l.fast = s3.New(l.Client.Options(), func(o *s3.Options) {
			o.HTTPClient = &parsingClient{inner: o.HTTPClient}
		})
	})
	return l.fast
}

type pageSlot struct {
	es   []Entry
	page listPage
	err  error
	set  bool
	buf  bytes.Buffer
}

type slotKey struct{}

type parsingClient struct {
	inner s3.HTTPClient
}

var emptyListing = []byte(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>`)

func (c *parsingClient) Do(req *http.Request) (*http.Response, error) {
	res, err := c.inner.Do(req)
	slot, _ := req.Context().Value(slotKey{}).(*pageSlot)
	if err != nil || slot == nil || res.StatusCode != http.StatusOK {
		return res, err
	}
	slot.buf.Reset()
	_, rerr := slot.buf.ReadFrom(res.Body)
	res.Body.Close()
	if rerr != nil {
		return nil, rerr // the SDK retries a broken read
	}
	slot.page, slot.err = parseListing(slot.buf.Bytes(), false, slot.es)
	slot.set = true
	res.Body = io.NopCloser(bytes.NewReader(emptyListing))
	res.ContentLength = int64(len(emptyListing))
	res.Header.Del("Content-Length")
	return res, nil
}

// List implements Lister.
func (l *S3Lister) List(ctx context.Context, q Query, fn func([]Entry) error) error {
	n := l.PageSize
	if q.Max > 0 {
		n = q.Max
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket), MaxKeys: aws.Int32(int32(size(n))), //nolint:gosec // G115: size caps n at pageSize
		EncodingType: types.EncodingTypeUrl}
	if q.Prefix != "" {
		in.Prefix = aws.String(q.Prefix)
	}
	if q.StartAfter != "" {
		in.StartAfter = aws.String(q.StartAfter)
	}
	if q.Delimiter != "" {
		in.Delimiter = aws.String(q.Delimiter)
	}
	client := l.fastClient()
	slot := &pageSlot{}
	ctx = context.WithValue(ctx, slotKey{}, slot)
	for {
		slot.set = false
		if _, err := client.ListObjectsV2(ctx, in); err != nil {
			return fmt.Errorf("s3 list objects: %w", err)
		}
		if !slot.set {
			return fmt.Errorf("s3 list objects: no answer parsed")
		}
		if slot.err != nil {
			return fmt.Errorf("s3 list objects: %w", slot.err)
		}
		p := slot.page
		slot.es = p.entries
		if err := fn(p.entries); err != nil {
			return err
		}
		if !p.truncated {
			return nil
		}
		if p.next == aws.ToString(in.ContinuationToken) {
			return fmt.Errorf("s3 list objects: truncated page without a new continuation token")
		}
		in.ContinuationToken = aws.String(p.next)
	}
}
