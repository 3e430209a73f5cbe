package ossemu_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	sigv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/oss2s3/oss2s3/internal/ossemu"
)

// s3Client is a real aws-sdk-go-v2 client for the emulator's S3 API, built
// as production code builds one (LoadDefaultConfig), kept away from the
// machine's AWS files.
func s3Client(t *testing.T, endpoint, ak, sk string, opts ...func(*s3.Options)) *s3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, "")),
		config.WithRetryMaxAttempts(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}}, opts...)...)
}

func (tb *testBundle) s3(t *testing.T) *s3.Client {
	t.Helper()
	return s3Client(t, tb.endpoint, testAK, testSK)
}

// requireS3Error checks an S3 API error's status and (when the response has
// a body) code.
func requireS3Error(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want an HTTP %d response", err, status)
	}
	if re.HTTPStatusCode() != status {
		t.Fatalf("status = %d (%v), want %d", re.HTTPStatusCode(), err, status)
	}
	var ae smithy.APIError
	if code != "" && (!errors.As(err, &ae) || ae.ErrorCode() != code) {
		t.Fatalf("error = %v, want code %s", err, code)
	}
}

func putOSS(t *testing.T, b *oss.Bucket, key string, body []byte, opts ...oss.Option) {
	t.Helper()
	if err := b.PutObject(key, bytes.NewReader(body), opts...); err != nil {
		t.Fatalf("PutObject(%q): %v", key, err)
	}
}

func TestS3ListObjectsV2(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	c := tb.s3(t)
	ctx := context.Background()
	keys := append(slices.Clone(awkwardKeys), "A", "a-b", "a.b", "a/b", "a0", "aé", "中文", "🙂", "dir/x", "dir/y/z")
	for i, k := range keys {
		putOSS(t, b, k, bytes.Repeat([]byte{'x'}, i))
	}
	want := slices.Clone(keys)
	slices.Sort(want)

	t.Run("PagesInByteOrderWithURLEncoding", func(t *testing.T) {
		var got []string
		pages := 0
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), MaxKeys: aws.Int32(4), EncodingType: types.EncodingTypeUrl})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if page.EncodingType != types.EncodingTypeUrl || aws.ToInt32(page.KeyCount) != int32(len(page.Contents)) {
				t.Fatalf("page %d: EncodingType %q KeyCount %d for %d keys", pages, page.EncodingType, aws.ToInt32(page.KeyCount), len(page.Contents))
			}
			for _, o := range page.Contents {
				k, err := url.QueryUnescape(aws.ToString(o.Key))
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, k)
				i := slices.Index(keys, k)
				if aws.ToInt64(o.Size) != int64(i) || o.StorageClass != types.ObjectStorageClassStandard ||
					!strings.HasPrefix(aws.ToString(o.ETag), `"`) || o.LastModified == nil {
					t.Fatalf("entry %q: size %d class %q etag %q", k, aws.ToInt64(o.Size), o.StorageClass, aws.ToString(o.ETag))
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("listed %q\nwant   %q", got, want)
		}
		if wantPages := (len(want) + 3) / 4; pages != wantPages {
			t.Fatalf("%d pages, want %d", pages, wantPages)
		}
	})

	t.Run("DelimiterPrefixAndStartAfter", func(t *testing.T) {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Delimiter: aws.String("/"), Prefix: aws.String("dir/")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "dir/x" || len(out.CommonPrefixes) != 1 || aws.ToString(out.CommonPrefixes[0].Prefix) != "dir/y/" {
			t.Fatalf("dir/ listing: %+v %+v", out.Contents, out.CommonPrefixes)
		}
		out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), StartAfter: aws.String("中文")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "🙂" {
			t.Fatalf("after 中文: %+v", out.Contents)
		}
		// Unencoded, the XML carries the raw keys.
		out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Prefix: aws.String("unicode/")})
		if err != nil || len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "unicode/中文/été/🙂" {
			t.Fatalf("unicode prefix: %v %+v", err, out)
		}
	})

	t.Run("ListObjectsV1Marker", func(t *testing.T) {
		var got []string
		marker := ""
		for range 100 {
			out, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String(testBucket), MaxKeys: aws.Int32(7), Marker: aws.String(marker)})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out.Contents {
				got = append(got, aws.ToString(o.Key))
			}
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			marker = aws.ToString(out.NextMarker)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("V1 listed %q", got)
		}
	})

	t.Run("MaxKeysZeroListsNothing", func(t *testing.T) {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), MaxKeys: aws.Int32(0)})
		if err != nil || len(out.Contents) != 0 || aws.ToBool(out.IsTruncated) {
			t.Fatalf("max-keys 0: %v %+v", err, out)
		}
	})

	reqs, s3reqs := tb.srv.Requests(), tb.srv.S3Requests()
	if s3reqs["ListObjectsV2"] < 5 || s3reqs["ListObjects"] < 3 || s3reqs["PutObject"] != 0 || reqs["PutObject"] != len(keys) || reqs["ListObjectsV2"] != s3reqs["ListObjectsV2"] {
		t.Fatalf("Requests %v, S3Requests %v", reqs, s3reqs)
	}
}

func TestS3GetObject(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	c := tb.s3(t)
	ctx := context.Background()
	body := make([]byte, 1000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	expires := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	putOSS(t, b, "dir/obj ü+.bin", body, oss.ContentType("application/x-test"), oss.ContentDisposition("attachment"),
		oss.ContentEncoding("identity"), oss.CacheControl("no-cache"), oss.Expires(expires), oss.Meta("Origin", "oss side"),
		oss.ObjectStorageClass(oss.StorageIA))
	ossETag := `"` + md5Hex(body) + `"`

	t.Run("HeadCarriesMetadataAndContentHeaders", func(t *testing.T) {
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("dir/obj ü+.bin")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(h.ETag) != ossETag || aws.ToInt64(h.ContentLength) != 1000 || aws.ToString(h.ContentType) != "application/x-test" ||
			aws.ToString(h.ContentDisposition) != "attachment" || aws.ToString(h.CacheControl) != "no-cache" ||
			aws.ToString(h.ContentEncoding) != "identity" || h.StorageClass != types.StorageClassStandardIa ||
			h.Metadata["origin"] != "oss side" || len(h.Metadata) != 1 || h.LastModified == nil || aws.ToString(h.AcceptRanges) != "bytes" {
			t.Fatalf("HeadObject = %+v", h)
		}
		if got := aws.ToString(h.ExpiresString); got != expires.Format(http.TimeFormat) {
			t.Fatalf("Expires %q", got)
		}
	})

	get := func(t *testing.T, rng string) (*s3.GetObjectOutput, []byte) {
		t.Helper()
		in := &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("dir/obj ü+.bin")}
		if rng != "" {
			in.Range = aws.String(rng)
		}
		out, err := c.GetObject(ctx, in)
		if err != nil {
			t.Fatalf("GetObject %q: %v", rng, err)
		}
		defer out.Body.Close()
		data, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatal(err)
		}
		return out, data
	}

	t.Run("WholeObject", func(t *testing.T) {
		out, data := get(t, "")
		if !bytes.Equal(data, body) || aws.ToString(out.ETag) != ossETag || out.ContentRange != nil || out.Metadata["origin"] != "oss side" {
			t.Fatalf("GET: %d bytes, etag %q, range %v", len(data), aws.ToString(out.ETag), out.ContentRange)
		}
	})

	t.Run("RangesFollowS3Semantics", func(t *testing.T) {
		for _, tc := range []struct {
			rng        string
			start, end int
		}{
			{"bytes=0-0", 0, 0},
			{"bytes=100-199", 100, 199},
			{"bytes=990-", 990, 999},
			{"bytes=-10", 990, 999},
			{"bytes=995-5000", 995, 999}, // an end past the object is clamped
			{"bytes=-5000", 0, 999},      // a suffix longer than the object is all of it
		} {
			out, data := get(t, tc.rng)
			if !bytes.Equal(data, body[tc.start:tc.end+1]) {
				t.Fatalf("%s: got %d bytes, want [%d,%d]", tc.rng, len(data), tc.start, tc.end)
			}
			if want := fmt.Sprintf("bytes %d-%d/1000", tc.start, tc.end); aws.ToString(out.ContentRange) != want || aws.ToInt64(out.ContentLength) != int64(len(data)) {
				t.Fatalf("%s: Content-Range %q Content-Length %d", tc.rng, aws.ToString(out.ContentRange), aws.ToInt64(out.ContentLength))
			}
		}
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("dir/obj ü+.bin"), Range: aws.String("bytes=1000-")})
		requireS3Error(t, err, 416, "InvalidRange")
	})

	t.Run("ConditionsAndOverrides", func(t *testing.T) {
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("dir/obj ü+.bin"), IfMatch: aws.String(`"0000"`)})
		requireS3Error(t, err, 412, "PreconditionFailed")
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("dir/obj ü+.bin"),
			IfMatch: aws.String(ossETag), ResponseContentType: aws.String("text/plain")})
		if err != nil {
			t.Fatal(err)
		}
		out.Body.Close()
		if aws.ToString(out.ContentType) != "text/plain" {
			t.Fatalf("response-content-type ignored: %q", aws.ToString(out.ContentType))
		}
	})

	t.Run("MissingKeyAndBucket", func(t *testing.T) {
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("nope")})
		var nsk *types.NoSuchKey
		if !errors.As(err, &nsk) {
			t.Fatalf("missing key: %v", err)
		}
		requireS3Error(t, err, 404, "NoSuchKey")
		_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("nope")})
		requireS3Error(t, err, 404, "")
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("no-such-bucket"), Key: aws.String("k")})
		requireS3Error(t, err, 404, "NoSuchBucket")
		_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("no-such-bucket")})
		var nsb *types.NoSuchBucket
		if !errors.As(err, &nsb) {
			t.Fatalf("missing bucket: %v", err)
		}
	})

	if n := tb.srv.S3Requests()["GetObject"]; n < 10 {
		t.Fatalf("S3 GetObject count %d", n)
	}
}

func TestS3Authentication(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	putOSS(t, tb.bucket(t), "secret.txt", []byte("classified"))
	ctx := context.Background()

	t.Run("BadSecretIsRejected", func(t *testing.T) {
		c := s3Client(t, tb.endpoint, testAK, "wrong-secret")
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("secret.txt")})
		requireS3Error(t, err, 403, "SignatureDoesNotMatch")
		_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("secret.txt")})
		requireS3Error(t, err, 403, "")
		_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket)})
		requireS3Error(t, err, 403, "SignatureDoesNotMatch")
	})

	t.Run("UnknownAccessKeyIsRejected", func(t *testing.T) {
		c := s3Client(t, tb.endpoint, "AKIDUNKNOWN", testSK)
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		requireS3Error(t, err, 403, "InvalidAccessKeyId")
	})

	t.Run("AnyRegionSigns", func(t *testing.T) {
		c := s3Client(t, tb.endpoint, testAK, testSK, func(o *s3.Options) { o.Region = "oss-cn-hangzhou" })
		out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil || len(out.Buckets) != 1 || aws.ToString(out.Buckets[0].Name) != testBucket || out.Buckets[0].CreationDate == nil {
			t.Fatalf("ListBuckets: %v %+v", err, out)
		}
	})

	t.Run("PresignedGetWorksUntilTampered", func(t *testing.T) {
		ps := s3.NewPresignClient(tb.s3(t))
		req, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("secret.txt")}, s3.WithPresignExpires(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		resp, data := getURL(t, req.URL)
		if resp.StatusCode != 200 || string(data) != "classified" {
			t.Fatalf("presigned GET: %d %q", resp.StatusCode, data)
		}
		resp, err = http.Get(strings.Replace(req.URL, "secret.txt", "secret.tx%74", 1))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("an equivalently escaped path should verify, got %d", resp.StatusCode)
		}
		resp, data = getURL(t, strings.Replace(req.URL, "X-Amz-Expires=60", "X-Amz-Expires=61", 1))
		if resp.StatusCode != 403 || !bytes.Contains(data, []byte("<Code>SignatureDoesNotMatch</Code>")) || !bytes.Contains(data, []byte("<RequestId>")) {
			t.Fatalf("tampered presigned GET: %d %s", resp.StatusCode, data)
		}
	})

	t.Run("ExpiredPresignIsRejected", func(t *testing.T) {
		past := time.Now().Add(-2 * time.Hour)
		signer := sigv4.NewSigner()
		r, _ := http.NewRequest(http.MethodGet, tb.endpoint+"/"+testBucket+"/secret.txt?X-Amz-Expires=60", nil)
		u, _, err := signer.PresignHTTP(ctx, aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}, r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", past)
		if err != nil {
			t.Fatal(err)
		}
		resp, data := getURL(t, u)
		if resp.StatusCode != 403 || !bytes.Contains(data, []byte("expired")) {
			t.Fatalf("expired presign: %d %s", resp.StatusCode, data)
		}
	})

	t.Run("AnonymousIsDenied", func(t *testing.T) {
		r, _ := http.NewRequest(http.MethodGet, tb.endpoint+"/"+testBucket+"/secret.txt", nil)
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !bytes.Contains(data, []byte("<Code>AccessDenied</Code>")) || resp.Header.Get("X-Amz-Request-Id") == "" {
			t.Fatalf("anonymous S3 GET: %d %s", resp.StatusCode, data)
		}
	})
}

func TestS3Writes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("PutObjectIsReadableThroughOSS", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		c := tb.s3(t)
		body := bytes.Repeat([]byte("s3 put "), 1000)
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("from/s3 é.txt"), Body: bytes.NewReader(body),
			ContentType: aws.String("text/plain"), Metadata: map[string]string{"Tool": "aws-sdk"}, StorageClass: types.StorageClassStandardIa,
			Tagging: aws.String("a=1&b=2")})
		if err != nil {
			t.Fatal(err)
		}
		info, data, ok := tb.srv.Object(testBucket, "from/s3 é.txt")
		if !ok || !bytes.Equal(data, body) || info.Meta["tool"] != "aws-sdk" || info.ContentType != "text/plain" || info.StorageClass != "IA" ||
			info.Tags["b"] != "2" || info.ETag != md5Hex(body) || info.CRC64 != crc64.Checksum(body, crcTable) {
			t.Fatalf("stored %+v", info)
		}
		h, err := tb.bucket(t).GetObjectDetailedMeta("from/s3 é.txt")
		if err != nil || h.Get("X-Oss-Meta-Tool") != "aws-sdk" || h.Get("X-Oss-Storage-Class") != "IA" {
			t.Fatalf("OSS HEAD: %v %v", err, h)
		}
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(testBucket), Key: aws.String("from/s3 é.txt")}); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := tb.srv.Object(testBucket, "from/s3 é.txt"); ok {
			t.Fatal("DeleteObject left the object")
		}
	})

	t.Run("ChunkedUploadWithTrailingChecksumOverTLS", func(t *testing.T) {
		t.Parallel()
		// Over TLS the SDK's defaults send aws-chunked bodies with a CRC32
		// trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
		srv := ossemu.New(ossemu.Options{Credentials: map[string]string{testAK: testSK}})
		srv.CreateBucket(testBucket)
		ts := httptest.NewTLSServer(srv)
		defer ts.Close()
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"), config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}),
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(testAK, testSK, "")))
		if err != nil {
			t.Fatal(err)
		}
		var sent string
		c := s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.BaseEndpoint, o.UsePathStyle = aws.String(ts.URL), true
			o.HTTPClient = recordingClient{ts.Client(), &sent}
		})
		body := bytes.Repeat([]byte("0123456789abcdef"), 70000) // > 1 MiB: several chunks
		// A non-seekable body, as a copier streams it.
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("chunked"), Body: io.MultiReader(bytes.NewReader(body)),
			ContentLength: aws.Int64(int64(len(body)))})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sent, "STREAMING-") {
			t.Fatalf("the SDK sent x-amz-content-sha256 %q, the test wants a streaming upload", sent)
		}
		info, data, ok := srv.Object(testBucket, "chunked")
		if !ok || !bytes.Equal(data, body) || info.Header.Get("Content-Encoding") != "" {
			t.Fatalf("stored %d bytes (ok %v), Content-Encoding %q", len(data), ok, info.Header.Get("Content-Encoding"))
		}
	})

	t.Run("PayloadHashMismatchIsRejected", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		c := tb.s3(t)
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"), Body: strings.NewReader("real body")},
			s3.WithAPIOptions(func(st *middleware.Stack) error { return swapBodyAfterSigning(st, "evil body") }))
		requireS3Error(t, err, 400, "XAmzContentSHA256Mismatch")
		if _, _, ok := tb.srv.Object(testBucket, "k"); ok {
			t.Fatal("a body that does not match its signed hash was stored")
		}
	})

	t.Run("SignedChunksMatchAWSExample", func(t *testing.T) {
		t.Parallel()
		// The worked example of AWS's "Transferring Payload in Multiple Chunks"
		// (SigV4 streaming): 66560 bytes of 'a' in chunks of 65536 and 1024.
		day := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
		srv := ossemu.New(ossemu.Options{Credentials: map[string]string{"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
			Now: func() time.Time { return day }})
		defer srv.Close()
		srv.CreateBucket("examplebucket")
		for _, corrupt := range []bool{false, true} {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, awsStreamingExample(corrupt))
			if corrupt {
				if rec.Code != 403 || !strings.Contains(rec.Body.String(), "SignatureDoesNotMatch") {
					t.Fatalf("corrupted chunk: %d %s", rec.Code, rec.Body)
				}
				continue
			}
			if rec.Code != 200 {
				t.Fatalf("AWS example upload: %d %s", rec.Code, rec.Body)
			}
			info, data, ok := srv.Object("examplebucket", "chunkObject.txt")
			if !ok || !bytes.Equal(data, bytes.Repeat([]byte("a"), 66560)) || info.StorageClass != "Standard" {
				t.Fatalf("stored %d bytes, %+v", len(data), info)
			}
		}
	})
}

func TestS3MultipartAndBatchDelete(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.s3(t)
	ctx := context.Background()
	key := aws.String("mpu/ü big.bin")
	create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: key,
		ContentType: aws.String("application/x-parts"), Metadata: map[string]string{"Via": "s3-mpu"}})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{bytes.Repeat([]byte("1"), 200<<10), bytes.Repeat([]byte("2"), 200<<10), []byte("tail")}
	var done []types.CompletedPart
	for i, p := range parts {
		in := &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: key, UploadId: create.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)}
		if i == 1 {
			in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c // sent and checked
		}
		out, err := c.UploadPart(ctx, in)
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: key, UploadId: create.UploadId, PartNumber: aws.Int32(4),
		Body: strings.NewReader("corrupt"), ChecksumCRC32: aws.String("AAAAAA==")})
	requireS3Error(t, err, 400, "BadDigest")
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(testBucket), Key: key, UploadId: create.UploadId})
	if err != nil || len(lp.Parts) != 3 || aws.ToInt64(lp.Parts[1].Size) != 200<<10 {
		t.Fatalf("ListParts: %v %+v", err, lp)
	}
	comp, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: key, UploadId: create.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatal(err)
	}
	info, data, ok := tb.srv.Object(testBucket, "mpu/ü big.bin")
	if !ok || !bytes.Equal(data, bytes.Join(parts, nil)) || info.ObjectType != "Multipart" || !strings.HasSuffix(info.ETag, "-3") ||
		aws.ToString(comp.ETag) != `"`+info.ETag+`"` || info.Meta["via"] != "s3-mpu" || info.ContentType != "application/x-parts" {
		t.Fatalf("completed object %+v (%d bytes), answer ETag %q", info, len(data), aws.ToString(comp.ETag))
	}

	abort, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("gone")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("gone"), UploadId: abort.UploadId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(testBucket), Key: aws.String("gone"), UploadId: abort.UploadId})
	requireS3Error(t, err, 404, "NoSuchUpload")

	putOSS(t, tb.bucket(t), "other", []byte("x"))
	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(testBucket), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: key}, {Key: aws.String("other")}}}})
	if err != nil || len(del.Deleted) != 2 {
		t.Fatalf("DeleteObjects: %v %+v", err, del)
	}
	if out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket)}); err != nil || len(out.Contents) != 0 {
		t.Fatalf("after DeleteObjects: %v %+v", err, out)
	}
	s3reqs := tb.srv.S3Requests()
	if s3reqs["InitiateMultipartUpload"] != 2 || s3reqs["UploadPart"] != 4 || s3reqs["CompleteMultipartUpload"] != 1 || s3reqs["DeleteMultipleObjects"] != 1 {
		t.Fatalf("S3Requests %v", s3reqs)
	}
}

// swapBodyAfterSigning replaces the request body (same length) once the
// request is signed, as a corrupting proxy would.
func swapBodyAfterSigning(st *middleware.Stack, body string) error {
	return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("swapBody", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		req, ok := in.Request.(*smithyhttp.Request)
		if !ok {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("unexpected request type %T", in.Request)
		}
		swapped, err := req.SetStream(strings.NewReader(body))
		if err != nil {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, err
		}
		in.Request = swapped
		return next.HandleFinalize(ctx, in)
	}), middleware.After)
}

// recordingClient notes the x-amz-content-sha256 of the last request.
type recordingClient struct {
	c    *http.Client
	sent *string
}

func (r recordingClient) Do(req *http.Request) (*http.Response, error) {
	*r.sent = req.Header.Get("X-Amz-Content-Sha256")
	return r.c.Do(req)
}

// awsStreamingExample is AWS's documented signed streaming PUT; corrupt
// flips one byte of the second chunk.
func awsStreamingExample(corrupt bool) *http.Request {
	var body bytes.Buffer
	for _, c := range []struct {
		size int
		sig  string
	}{
		{65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"},
		{1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"},
		{0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"},
	} {
		fmt.Fprintf(&body, "%x;chunk-signature=%s\r\n", c.size, c.sig)
		data := bytes.Repeat([]byte("a"), c.size)
		if corrupt && c.size == 1024 {
			data[3] = 'b'
		}
		body.Write(data)
		body.WriteString("\r\n")
	}
	r := httptest.NewRequest(http.MethodPut, "http://s3.amazonaws.com/examplebucket/chunkObject.txt", bytes.NewReader(body.Bytes()))
	r.Host = "s3.amazonaws.com"
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"+
		"SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"+
		"Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
	r.Header.Set("Content-Length", strconv.Itoa(body.Len()))
	r.ContentLength = int64(body.Len())
	return r
}

func TestS3FaultsArchiveAndSymlinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("FaultsUseTheSameOperationNames", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		putOSS(t, tb.bucket(t), "k", []byte("v"))
		c := tb.s3(t)
		tb.srv.InjectFault(ossemu.Fault{Op: "GetObject", API: "OSS", Status: 500})
		tb.srv.InjectFault(ossemu.Fault{Op: "GetObject", Key: "k", Status: 503, Code: "SlowDown", Times: 1})
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k")})
		requireS3Error(t, err, 503, "SlowDown")
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k")})
		if err != nil {
			t.Fatalf("second GET (the OSS-only fault must not match): %v", err)
		}
		out.Body.Close()
		_, err = tb.bucket(t).GetObject("k")
		requireServiceError(t, err, 500, "InternalError")
	})

	t.Run("ArchivedObjectNeedsRestore", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		putOSS(t, tb.bucket(t), "cold", []byte("frozen"), oss.ObjectStorageClass(oss.StorageArchive))
		c := tb.s3(t)
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("cold")})
		requireS3Error(t, err, 403, "InvalidObjectState")
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("cold")})
		if err != nil || h.StorageClass != types.StorageClassGlacier || h.Restore != nil {
			t.Fatalf("HEAD before restore: %v %+v", err, h)
		}
		if _, err := c.RestoreObject(ctx, &s3.RestoreObjectInput{Bucket: aws.String(testBucket), Key: aws.String("cold"),
			RestoreRequest: &types.RestoreRequest{Days: aws.Int32(2)}}); err != nil {
			t.Fatal(err)
		}
		h, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("cold")})
		if err != nil || !strings.HasPrefix(aws.ToString(h.Restore), `ongoing-request="false", expiry-date=`) {
			t.Fatalf("HEAD after restore: %v %q", err, aws.ToString(h.Restore))
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("cold")})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(data) != "frozen" {
			t.Fatalf("restored body %q", data)
		}
	})

	t.Run("SymlinkReadsTheTarget", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		putOSS(t, b, "target", []byte("pointed at"))
		if err := b.PutSymlink("link", "target", oss.Meta("Via", "link")); err != nil {
			t.Fatal(err)
		}
		out, err := tb.s3(t).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("link"), Range: aws.String("bytes=0-6")})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(data) != "pointed" || out.Metadata["via"] != "link" || aws.ToString(out.ETag) != `"`+md5Hex([]byte("pointed at"))+`"` {
			t.Fatalf("GET link: %q %v %q", data, out.Metadata, aws.ToString(out.ETag))
		}
	})
}
