package main

import (
	"context"
	"fmt"
	"hash/crc64"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

var crcTable = crc64.MakeTable(crc64.ECMA)

// verifyCopy checks that bucket holds exactly objs: every key with its size
// (one listing), and the bytes of sample of them (CRC-64 of a full GET
// against the source's), spread over the set and shifted by rot so that
// repeated runs check different objects. A benchmark must not pass on a
// broken copy.
func verifyCopy(ctx context.Context, client *s3.Client, bucket string, objs []srcObject, sample, rot int) error {
	sizes := make(map[string]int64, len(objs))
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			sizes[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	missing := 0
	for _, o := range objs {
		got, ok := sizes[o.Key]
		switch {
		case !ok:
			missing++
		case got != o.Size:
			return fmt.Errorf("%s/%s: %d bytes, the source has %d", bucket, o.Key, got, o.Size)
		}
	}
	if missing > 0 || len(sizes) != len(objs) {
		return fmt.Errorf("%s holds %d objects, want %d (%d source objects missing)", bucket, len(sizes), len(objs), missing)
	}
	for _, i := range sampleIndexes(len(objs), sample, rot) {
		if err := verifyBytes(ctx, client, bucket, objs[i]); err != nil {
			return err
		}
	}
	return nil
}

// sampleIndexes picks k of n indexes, evenly spaced, shifted by rot.
func sampleIndexes(n, k, rot int) []int {
	if n == 0 || k <= 0 {
		return nil
	}
	k = min(k, n)
	idx := make([]int, k)
	for j := range idx {
		idx[j] = (j*n/k + rot) % n
	}
	return idx
}

func verifyBytes(ctx context.Context, client *s3.Client, bucket string, o srcObject) error {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Key)})
	if err != nil {
		return fmt.Errorf("get %s/%s: %w", bucket, o.Key, err)
	}
	defer out.Body.Close()
	h := crc64.New(crcTable)
	n, err := io.Copy(h, out.Body)
	if err != nil {
		return fmt.Errorf("read %s/%s: %w", bucket, o.Key, err)
	}
	if n != o.Size || h.Sum64() != o.CRC64 {
		return fmt.Errorf("%s/%s: %d bytes with CRC-64 %d, the source has %d bytes with CRC-64 %d",
			bucket, o.Key, n, h.Sum64(), o.Size, o.CRC64)
	}
	return nil
}
