package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
)

// chunk is one ranged read or one part: bytes [off, off+n) of object obj.
// Empty objects have none.
type chunk struct {
	obj  int
	part int32 // 1-based part number
	off  int64
	n    int64
}

func chunksOf(objs []srcObject, partSize int64) []chunk {
	var cs []chunk
	for i, o := range objs {
		for off, p := int64(0), int32(1); off < o.Size; off, p = off+partSize, p+1 {
			cs = append(cs, chunk{obj: i, part: p, off: off, n: min(partSize, o.Size-off)})
		}
	}
	return cs
}

// eachChunk runs fn on every chunk, streams at a time.
func eachChunk(ctx context.Context, cs []chunk, streams int, fn func(context.Context, chunk) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(streams)
	for _, c := range cs {
		g.Go(func() error { return fn(ctx, c) })
	}
	return g.Wait()
}

// ceilingGET reads every object from the source with ranged GETs of
// partSize, streams at once, discarding the bytes; it returns bytes/s. It
// is the fastest the source can hand the objects out on this machine.
func ceilingGET(ctx context.Context, endpoint, bucket string, objs []srcObject, partSize int64, streams int) (float64, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = streams
	tr.DisableCompression = true
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	cs := chunksOf(objs, partSize)
	start := time.Now()
	err := eachChunk(ctx, cs, streams, func(ctx context.Context, c chunk) error {
		key := objs[c.obj].Key
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/"+bucket+"/"+pathEscape(key), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", c.off, c.off+c.n-1))
		req.Header.Set("If-Match", `"`+objs[c.obj].ETag+`"`)
		signOSSv1(req, bucket, key)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent && resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
			return fmt.Errorf("GET %s range %d+%d: %s: %s", key, c.off, c.n, resp.Status, b)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			return fmt.Errorf("GET %s range %d+%d: %w", key, c.off, c.n, err)
		}
		if n != c.n {
			return fmt.Errorf("GET %s range %d+%d: got %d bytes", key, c.off, c.n, n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ceiling GET: %w", err)
	}
	return float64(totalBytes(objs)) / time.Since(start).Seconds(), nil
}

// ceilingPUT writes objects of the same sizes to bucket as multipart
// uploads of partSize, streams parts at once, each part checked by S3 with
// CRC32C (oss2s3's default); it returns bytes/s. The part bodies come from
// memory, so it is the fastest the destination takes the objects in. The
// uploads are completed: completing is work the copies pay too.
func ceilingPUT(ctx context.Context, client *s3.Client, bucket string, objs []srcObject, partSize int64, streams int) (float64, error) {
	body := make([]byte, partSize)
	fillRandom(body, 0xce11)
	cs := chunksOf(objs, partSize)
	ids := make([]string, len(objs))
	etags := make([][]types.CompletedPart, len(objs))
	var mu sync.Mutex

	start := time.Now()
	for i, o := range objs {
		out, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(bucket), Key: aws.String(o.Key), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
		})
		if err != nil {
			return 0, fmt.Errorf("ceiling PUT: create upload %s: %w", o.Key, err)
		}
		ids[i] = aws.ToString(out.UploadId)
	}
	err := eachChunk(ctx, cs, streams, func(ctx context.Context, c chunk) error {
		out, err := client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(bucket), Key: aws.String(objs[c.obj].Key), UploadId: aws.String(ids[c.obj]),
			PartNumber: aws.Int32(c.part), ContentLength: aws.Int64(c.n),
			Body: bytes.NewReader(body[:c.n]), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
		})
		if err != nil {
			return fmt.Errorf("upload part %d of %s: %w", c.part, objs[c.obj].Key, err)
		}
		mu.Lock()
		etags[c.obj] = append(etags[c.obj], types.CompletedPart{PartNumber: aws.Int32(c.part), ETag: out.ETag, ChecksumCRC32C: out.ChecksumCRC32C})
		mu.Unlock()
		return nil
	})
	if err == nil {
		err = eachChunk(ctx, objectChunks(len(objs)), streams, func(ctx context.Context, c chunk) error {
			parts := etags[c.obj]
			sortParts(parts)
			_, err := client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
				Bucket: aws.String(bucket), Key: aws.String(objs[c.obj].Key), UploadId: aws.String(ids[c.obj]),
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
			})
			if err != nil {
				return fmt.Errorf("complete %s: %w", objs[c.obj].Key, err)
			}
			return nil
		})
	}
	if err != nil {
		for i, o := range objs {
			_, _ = client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{
				Bucket: aws.String(bucket), Key: aws.String(o.Key), UploadId: aws.String(ids[i]),
			})
		}
		return 0, fmt.Errorf("ceiling PUT: %w", err)
	}
	return float64(totalBytes(objs)) / time.Since(start).Seconds(), nil
}

// objectChunks is one chunk per object, to run per-object steps in parallel.
func objectChunks(n int) []chunk {
	cs := make([]chunk, n)
	for i := range cs {
		cs[i].obj = i
	}
	return cs
}

func sortParts(ps []types.CompletedPart) {
	slices.SortFunc(ps, func(a, b types.CompletedPart) int {
		return cmp.Compare(aws.ToInt32(a.PartNumber), aws.ToInt32(b.PartNumber))
	})
}

// pathEscape escapes a key for a path, keeping its slashes.
func pathEscape(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
