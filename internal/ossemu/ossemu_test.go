package ossemu_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/crc64"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

const (
	testAK     = "LTAI-test-access-key"
	testSK     = "test-secret-key"
	testRegion = "cn-hangzhou"
	testBucket = "src"
)

var crcTable = crc64.MakeTable(crc64.ECMA)

// testBundle is what setup hands a test.
type testBundle struct {
	srv      *ossemu.Server
	endpoint string
}

// setup starts an emulator that checks signatures, with bucket "src".
func setup(t *testing.T, opts ...func(*ossemu.Options)) *testBundle {
	t.Helper()
	o := ossemu.Options{Credentials: map[string]string{testAK: testSK}, Region: testRegion}
	for _, f := range opts {
		f(&o)
	}
	srv := ossemu.New(o)
	endpoint, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	srv.CreateBucket(testBucket)
	return &testBundle{srv: srv, endpoint: endpoint}
}

// bucket returns a real SDK client for "src" signing with the test
// credentials (V1 unless options say otherwise).
func (tb *testBundle) bucket(t *testing.T, opts ...oss.ClientOption) *oss.Bucket {
	t.Helper()
	return tb.bucketAs(t, testAK, testSK, opts...)
}

// clientAs returns a real SDK client of the emulator signing with ak/sk.
func (tb *testBundle) clientAs(t *testing.T, ak, sk string, opts ...oss.ClientOption) *oss.Client {
	t.Helper()
	client, err := oss.New(tb.endpoint, ak, sk, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func (tb *testBundle) bucketAs(t *testing.T, ak, sk string, opts ...oss.ClientOption) *oss.Bucket {
	t.Helper()
	b, err := tb.clientAs(t, ak, sk, opts...).Bucket(testBucket)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// getURL GETs u with no signature and gives the response, its body read
// and closed.
func getURL(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

func v4() []oss.ClientOption {
	return []oss.ClientOption{oss.AuthVersion(oss.AuthV4), oss.Region(testRegion)}
}

func requireServiceError(t *testing.T, err error, status int, code string) {
	t.Helper()
	_ = wantServiceError(t, err, status, code)
}

// wantServiceError is requireServiceError for the callers that look further
// into the error.
func wantServiceError(t *testing.T, err error, status int, code string) oss.ServiceError {
	t.Helper()
	var se oss.ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("error = %v, want an OSS service error %d %s", err, status, code)
	}
	if se.StatusCode != status || se.Code != code {
		t.Fatalf("error = %d %s (%s), want %d %s", se.StatusCode, se.Code, se.Message, status, code)
	}
	if se.RequestID == "" {
		t.Errorf("error %s has no request ID", code)
	}
	return se
}

func getAll(t *testing.T, b *oss.Bucket, key string, opts ...oss.Option) []byte {
	t.Helper()
	rc, err := b.GetObject(key, opts...)
	if err != nil {
		t.Fatalf("GetObject(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return data
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func TestObjectRoundTrip(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	body := []byte("hello, oss")
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	err := b.PutObject("docs/readme.txt", bytes.NewReader(body),
		oss.ContentType("text/plain; charset=utf-8"),
		oss.ContentLanguage("en"),
		oss.ContentDisposition(`attachment; filename="readme.txt"`),
		oss.CacheControl("max-age=60"),
		oss.Expires(expires),
		oss.Meta("Color", "blue"),
		oss.Meta("owner-id", "42"),
		oss.ObjectStorageClass(oss.StorageIA),
	)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("GetReturnsBytesAndHeaders", func(t *testing.T) {
		res, err := b.DoGetObject(&oss.GetObjectRequest{ObjectKey: "docs/readme.txt"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(res.Response)
		res.Response.Close()
		if err != nil || !bytes.Equal(data, body) {
			t.Fatalf("body = %q, %v", data, err)
		}
		if got, want := res.ClientCRC.Sum64(), res.ServerCRC; got != want {
			t.Fatalf("client CRC %d != server CRC %d", got, want)
		}
		h := res.Response.Headers
		want := map[string]string{
			"ETag":                 `"` + md5Hex(body) + `"`,
			"Content-Type":         "text/plain; charset=utf-8",
			"Content-Language":     "en",
			"Content-Disposition":  `attachment; filename="readme.txt"`,
			"Cache-Control":        "max-age=60",
			"Expires":              expires.Format(http.TimeFormat),
			"Content-Length":       strconv.Itoa(len(body)),
			"X-Oss-Meta-Color":     "blue",
			"X-Oss-Meta-Owner-Id":  "42",
			"X-Oss-Storage-Class":  "IA",
			"X-Oss-Object-Type":    "Normal",
			"X-Oss-Hash-Crc64ecma": strconv.FormatUint(crc64.Checksum(body, crcTable), 10),
			"Accept-Ranges":        "bytes",
		}
		for k, v := range want {
			if got := h.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if h.Get("X-Oss-Request-Id") == "" {
			t.Error("no x-oss-request-id")
		}
		if _, err := http.ParseTime(h.Get("Last-Modified")); err != nil {
			t.Errorf("Last-Modified %q: %v", h.Get("Last-Modified"), err)
		}
	})

	t.Run("HeadMatchesGet", func(t *testing.T) {
		h, err := b.GetObjectDetailedMeta("docs/readme.txt")
		if err != nil {
			t.Fatal(err)
		}
		if h.Get("ETag") != `"`+md5Hex(body)+`"` || h.Get("Content-Length") != strconv.Itoa(len(body)) || h.Get("X-Oss-Meta-Color") != "blue" {
			t.Fatalf("HEAD headers %v", h)
		}
		exists, err := b.IsObjectExist("docs/readme.txt")
		if err != nil || !exists {
			t.Fatalf("IsObjectExist = %v, %v", exists, err)
		}
	})

	t.Run("ServerStateIsInspectable", func(t *testing.T) {
		info, data, ok := tb.srv.Object(testBucket, "docs/readme.txt")
		if !ok || !bytes.Equal(data, body) {
			t.Fatalf("Object = %v, %q", ok, data)
		}
		if info.ETag != md5Hex(body) || info.Size != int64(len(body)) || info.StorageClass != "IA" || info.ObjectType != "Normal" ||
			info.ContentType != "text/plain; charset=utf-8" || info.Meta["color"] != "blue" || info.Meta["owner-id"] != "42" ||
			info.Header.Get("Cache-Control") != "max-age=60" || info.CRC64 != crc64.Checksum(body, crcTable) {
			t.Fatalf("ObjectInfo = %+v", info)
		}
	})

	t.Run("DeleteRemovesAndIsIdempotent", func(t *testing.T) {
		if err := b.DeleteObject("docs/readme.txt"); err != nil {
			t.Fatal(err)
		}
		_, err := b.GetObject("docs/readme.txt")
		requireServiceError(t, err, 404, "NoSuchKey")
		// HEAD has no body: the SDK reads the error from x-oss-err.
		_, err = b.GetObjectDetailedMeta("docs/readme.txt")
		requireServiceError(t, err, 404, "NoSuchKey")
		if err := b.DeleteObject("docs/readme.txt"); err != nil {
			t.Fatalf("deleting a missing key: %v", err)
		}
		if _, _, ok := tb.srv.Object(testBucket, "docs/readme.txt"); ok {
			t.Fatal("object still stored")
		}
		if exists, err := b.IsObjectExist("docs/readme.txt"); err != nil || exists {
			t.Fatalf("IsObjectExist after delete = %v, %v", exists, err)
		}
	})

	reqs := tb.srv.Requests()
	if reqs["PutObject"] != 1 || reqs["GetObject"] != 2 || reqs["DeleteObject"] != 2 || reqs["HeadObject"] != 2 || reqs["GetObjectMeta"] != 2 {
		t.Fatalf("Requests() = %v", reqs)
	}
}

func TestMissingBucket(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	client := tb.clientAs(t, testAK, testSK)
	b, _ := client.Bucket("nope")
	_, err := b.GetObject("k")
	requireServiceError(t, err, 404, "NoSuchBucket")
	err = b.PutObject("k", strings.NewReader("x"))
	requireServiceError(t, err, 404, "NoSuchBucket")
	_, err = b.ListObjectsV2()
	requireServiceError(t, err, 404, "NoSuchBucket")

	if err := client.CreateBucket("new-bucket"); err != nil {
		t.Fatal(err)
	}
	ok, err := client.IsBucketExist("new-bucket")
	if err != nil || !ok {
		t.Fatalf("IsBucketExist = %v, %v", ok, err)
	}
	if err := client.CreateBucket("Bad_Name"); err == nil {
		t.Fatal("CreateBucket accepted an invalid name")
	}
}

func TestRangeGet(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	body := []byte("0123456789")
	if err := b.PutObject("digits", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, rng string
		standard  bool
		status    int
		want      string
		contRange string
	}{
		{"ClosedRange", "2-5", false, 206, "2345", "bytes 2-5/10"},
		{"OpenEnded", "7-", false, 206, "789", "bytes 7-9/10"},
		{"Suffix", "-3", false, 206, "789", "bytes 7-9/10"},
		{"WholeAsRange", "0-9", false, 206, "0123456789", "bytes 0-9/10"},
		{"EndPastSizeIsIgnoredByDefault", "5-100", false, 200, "0123456789", ""},
		{"EndPastSizeIsClampedWhenStandard", "5-100", true, 206, "56789", "bytes 5-9/10"},
		{"StartPastSizeIsIgnoredByDefault", "20-30", false, 200, "0123456789", ""},
		{"MultipleRangesAreIgnored", "0-1,3-4", false, 200, "0123456789", ""},
		{"ReversedRangeIsIgnored", "5-2", false, 200, "0123456789", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []oss.Option{oss.NormalizedRange(tc.rng)}
			if tc.standard {
				opts = append(opts, oss.RangeBehavior("standard"))
			}
			res, err := b.DoGetObject(&oss.GetObjectRequest{ObjectKey: "digits"}, opts)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(res.Response)
			res.Response.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.Response.StatusCode != tc.status || string(data) != tc.want || res.Response.Headers.Get("Content-Range") != tc.contRange {
				t.Fatalf("got %d %q Content-Range %q, want %d %q %q", res.Response.StatusCode, data,
					res.Response.Headers.Get("Content-Range"), tc.status, tc.want, tc.contRange)
			}
			// The CRC header always describes the whole object.
			if got := res.Response.Headers.Get("X-Oss-Hash-Crc64ecma"); got != strconv.FormatUint(crc64.Checksum(body, crcTable), 10) {
				t.Fatalf("CRC header %s", got)
			}
		})
	}
	t.Run("StartPastSizeIs416WhenStandard", func(t *testing.T) {
		_, err := b.GetObject("digits", oss.NormalizedRange("20-30"), oss.RangeBehavior("standard"))
		requireServiceError(t, err, 416, "InvalidRange")
	})
}

// awkwardKeys need escaping somewhere on the way: in the path, in the
// canonical resource, or in list results.
var awkwardKeys = []string{
	"with space.txt",
	"unicode/中文/été/🙂",
	"percent%2Fliteral%",
	"plus+sign",
	"deep/nested/path/file",
	"question?mark",
	"hash#tag",
	"amp&eq=semi;colon:comma,",
	"tilde~star*quote'paren()",
	"trailing/",
	"dots/../x",
	"a//double",
	"<xml>&\"entities\"",
}

func TestAwkwardKeys(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]oss.ClientOption{"V1": nil, "V4": v4()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			b := tb.bucket(t, opts...)
			for i, key := range awkwardKeys {
				body := []byte("body of " + key)
				if err := b.PutObject(key, bytes.NewReader(body), oss.Meta("n", strconv.Itoa(i))); err != nil {
					t.Fatalf("PutObject(%q): %v", key, err)
				}
				if _, data, ok := tb.srv.Object(testBucket, key); !ok || !bytes.Equal(data, body) {
					t.Fatalf("key %q not stored under its exact name", key)
				}
				if got := getAll(t, b, key); !bytes.Equal(got, body) {
					t.Fatalf("GetObject(%q) = %q", key, got)
				}
				h, err := b.GetObjectDetailedMeta(key)
				if err != nil || h.Get("X-Oss-Meta-N") != strconv.Itoa(i) {
					t.Fatalf("HEAD %q: %v %v", key, err, h)
				}
			}
			res, err := b.ListObjectsV2(oss.MaxKeys(1000))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range res.Objects {
				got = append(got, o.Key)
			}
			want := slices.Clone(awkwardKeys)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("listed %q\nwant     %q", got, want)
			}
			for _, key := range awkwardKeys {
				if err := b.DeleteObject(key); err != nil {
					t.Fatalf("DeleteObject(%q): %v", key, err)
				}
			}
			if res, err := b.ListObjectsV2(); err != nil || len(res.Objects) != 0 {
				t.Fatalf("after deletes: %v %v", res.Objects, err)
			}
		})
	}
}

func listAllV2(t *testing.T, b *oss.Bucket, opts ...oss.Option) (keys, prefixes []string, pages int) {
	t.Helper()
	token := ""
	for {
		o := slices.Clone(opts)
		if token != "" {
			o = append(o, oss.ContinuationToken(token))
		}
		res, err := b.ListObjectsV2(o...)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, obj := range res.Objects {
			keys = append(keys, obj.Key)
		}
		prefixes = append(prefixes, res.CommonPrefixes...)
		if !res.IsTruncated {
			return keys, prefixes, pages
		}
		if res.NextContinuationToken == "" || pages > 1000 {
			t.Fatalf("truncated page %d without a usable token", pages)
		}
		token = res.NextContinuationToken
	}
}

func TestListObjectsV2(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	byteOrder := []string{"A", "a-b", "a.b", "a/b", "a0", "aé", "中文", "🙂"}
	shuffled := slices.Clone(byteOrder)
	rand.New(rand.NewSource(1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, k := range shuffled {
		if err := b.PutObject(k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("PagesComeInUTF8ByteOrder", func(t *testing.T) {
		keys, prefixes, pages := listAllV2(t, b, oss.MaxKeys(3))
		if !slices.Equal(keys, byteOrder) || len(prefixes) != 0 || pages != 3 {
			t.Fatalf("keys %q prefixes %q pages %d", keys, prefixes, pages)
		}
	})

	t.Run("EntriesDescribeObjects", func(t *testing.T) {
		res, err := b.ListObjectsV2(oss.Prefix("a/"))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Objects) != 1 {
			t.Fatalf("objects %+v", res.Objects)
		}
		o := res.Objects[0]
		if o.Key != "a/b" || o.Size != 3 || o.ETag != `"`+md5Hex([]byte("a/b"))+`"` || o.Type != "Normal" || o.StorageClass != "Standard" ||
			time.Since(o.LastModified) > time.Minute || res.Prefix != "a/" {
			t.Fatalf("entry %+v prefix %q", o, res.Prefix)
		}
	})

	t.Run("StartAfterSkipsEarlierKeys", func(t *testing.T) {
		keys, _, _ := listAllV2(t, b, oss.StartAfter("a/b"))
		if !slices.Equal(keys, byteOrder[4:]) {
			t.Fatalf("keys %q", keys)
		}
	})

	t.Run("DelimiterRollsUpCommonPrefixes", func(t *testing.T) {
		tb := setup(t)
		b := tb.bucket(t)
		for _, k := range []string{"dir/x", "dir/y", "dir/sub/z", "dir/sub/zz", "dos/a", "top", "zz/1"} {
			if err := b.PutObject(k, strings.NewReader("x")); err != nil {
				t.Fatal(err)
			}
		}
		keys, prefixes, _ := listAllV2(t, b, oss.Delimiter("/"))
		if !slices.Equal(keys, []string{"top"}) || !slices.Equal(prefixes, []string{"dir/", "dos/", "zz/"}) {
			t.Fatalf("keys %q prefixes %q", keys, prefixes)
		}
		// One entry a page: a common prefix must not come back on the next page.
		keys, prefixes, pages := listAllV2(t, b, oss.Delimiter("/"), oss.MaxKeys(1))
		if !slices.Equal(keys, []string{"top"}) || !slices.Equal(prefixes, []string{"dir/", "dos/", "zz/"}) || pages != 4 {
			t.Fatalf("paged: keys %q prefixes %q pages %d", keys, prefixes, pages)
		}
		keys, prefixes, _ = listAllV2(t, b, oss.Prefix("dir/"), oss.Delimiter("/"))
		if !slices.Equal(keys, []string{"dir/x", "dir/y"}) || !slices.Equal(prefixes, []string{"dir/sub/"}) {
			t.Fatalf("under dir/: keys %q prefixes %q", keys, prefixes)
		}
		res, err := b.ListObjectsV2(oss.Prefix("dir/"), oss.Delimiter("/"))
		if err != nil || res.Prefix != "dir/" || res.Delimiter != "/" {
			t.Fatalf("echoed prefix %q delimiter %q, %v", res.Prefix, res.Delimiter, err)
		}
	})

	t.Run("ListingSeesWritesAndDeletes", func(t *testing.T) {
		tb := setup(t)
		b := tb.bucket(t)
		for _, k := range []string{"b", "d", "a"} {
			if err := b.PutObject(k, strings.NewReader(k)); err != nil {
				t.Fatal(err)
			}
		}
		if keys, _, _ := listAllV2(t, b); !slices.Equal(keys, []string{"a", "b", "d"}) {
			t.Fatalf("keys %q", keys)
		}
		if err := b.DeleteObject("b"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"c", "b", "a"} { // re-put "a" and "b": no duplicates
			if err := b.PutObject(k, strings.NewReader(k)); err != nil {
				t.Fatal(err)
			}
		}
		if keys, _, _ := listAllV2(t, b); !slices.Equal(keys, []string{"a", "b", "c", "d"}) {
			t.Fatalf("keys %q", keys)
		}
	})

	t.Run("RawResponseIsURLEncoded", func(t *testing.T) {
		tb := setup(t, func(o *ossemu.Options) { o.Credentials = nil })
		for _, k := range []string{"a b+c/中", "a b+中"} {
			if _, err := tb.srv.PutObject(testBucket, k, []byte("x"), nil); err != nil {
				t.Fatal(err)
			}
		}
		_, raw := getURL(t, tb.endpoint+"/"+testBucket+"/?list-type=2&encoding-type=url&delimiter=%2F&prefix=a%20b")
		for _, want := range []string{"<Key>a%20b%2B%E4%B8%AD</Key>", "<CommonPrefixes><Prefix>a%20b%2Bc%2F</Prefix></CommonPrefixes>",
			"<Prefix>a%20b</Prefix>", "<Delimiter>%2F</Delimiter>", "<EncodingType>url</EncodingType>", "<KeyCount>2</KeyCount>"} {
			if !strings.Contains(string(raw), want) {
				t.Errorf("response lacks %s:\n%s", want, raw)
			}
		}
	})

	t.Run("MaxKeysOver1000IsRejected", func(t *testing.T) {
		_, err := b.ListObjectsV2(oss.MaxKeys(1001))
		requireServiceError(t, err, 400, "InvalidArgument")
	})

	t.Run("ListObjectsV1PagesWithMarker", func(t *testing.T) {
		var keys []string
		marker := ""
		for {
			res, err := b.ListObjects(oss.MaxKeys(5), oss.Marker(marker))
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range res.Objects {
				keys = append(keys, o.Key)
			}
			if !res.IsTruncated {
				break
			}
			marker = res.NextMarker
		}
		if !slices.Equal(keys, byteOrder) {
			t.Fatalf("keys %q", keys)
		}
	})
}

func TestMultipartUpload(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t) // CRC checking is on by default
	const partSize = 100 << 10
	data := make([]byte, 2*partSize+1234)
	rand.New(rand.NewSource(2)).Read(data)
	chunks := [][]byte{data[:partSize], data[partSize : 2*partSize], data[2*partSize:]}

	upload := func(t *testing.T, key string, chunks [][]byte, opts ...oss.Option) (oss.InitiateMultipartUploadResult, []oss.UploadPart) {
		t.Helper()
		imur, err := b.InitiateMultipartUpload(key, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if imur.Key != key || imur.Bucket != testBucket || imur.UploadID == "" {
			t.Fatalf("initiate result %+v", imur)
		}
		var parts []oss.UploadPart
		for i, c := range chunks {
			p, err := b.UploadPart(imur, bytes.NewReader(c), int64(len(c)), i+1)
			if err != nil {
				t.Fatalf("UploadPart %d: %v", i+1, err)
			}
			if p.ETag != `"`+md5Hex(c)+`"` {
				t.Fatalf("part %d ETag %s", i+1, p.ETag)
			}
			parts = append(parts, p)
		}
		return imur, parts
	}

	t.Run("CompleteBuildsTheObject", func(t *testing.T) {
		imur, parts := upload(t, "big/object.bin", chunks, oss.ContentType("application/x-test"), oss.Meta("Source", "mpu"), oss.ObjectStorageClass(oss.StorageIA))
		listed, err := b.ListUploadedParts(imur)
		if err != nil || len(listed.UploadedParts) != 3 || listed.UploadedParts[2].Size != 1234 || listed.Key != "big/object.bin" {
			t.Fatalf("ListUploadedParts = %+v, %v", listed, err)
		}
		ups, err := b.ListMultipartUploads(oss.Prefix("big/"))
		if err != nil || len(ups.Uploads) != 1 || ups.Uploads[0].UploadID != imur.UploadID || ups.Uploads[0].Key != "big/object.bin" {
			t.Fatalf("ListMultipartUploads = %+v, %v", ups, err)
		}
		res, err := b.CompleteMultipartUpload(imur, parts)
		if err != nil {
			t.Fatal(err)
		}
		etags := md5.New()
		for _, c := range chunks {
			sum := md5.Sum(c)
			etags.Write(sum[:])
		}
		wantETag := strings.ToUpper(hex.EncodeToString(etags.Sum(nil))) + "-3"
		if res.ETag != `"`+wantETag+`"` || res.Key != "big/object.bin" || res.Bucket != testBucket {
			t.Fatalf("complete result %+v, want ETag %s", res, wantETag)
		}
		h, err := b.GetObjectDetailedMeta("big/object.bin")
		if err != nil {
			t.Fatal(err)
		}
		if h.Get("ETag") != `"`+wantETag+`"` || h.Get("X-Oss-Object-Type") != "Multipart" || h.Get("Content-Type") != "application/x-test" ||
			h.Get("X-Oss-Meta-Source") != "mpu" || h.Get("X-Oss-Storage-Class") != "IA" ||
			h.Get("X-Oss-Hash-Crc64ecma") != strconv.FormatUint(crc64.Checksum(data, crcTable), 10) {
			t.Fatalf("HEAD %v", h)
		}
		if got := getAll(t, b, "big/object.bin"); !bytes.Equal(got, data) {
			t.Fatal("content differs")
		}
		info, _, _ := tb.srv.Object(testBucket, "big/object.bin")
		if info.ETag != wantETag || info.ObjectType != "Multipart" || info.Size != int64(len(data)) {
			t.Fatalf("ObjectInfo %+v", info)
		}
		if ups, err := b.ListMultipartUploads(); err != nil || len(ups.Uploads) != 0 {
			t.Fatalf("upload still listed: %+v %v", ups.Uploads, err)
		}
	})

	t.Run("PartsMustBeAscendingAndMatch", func(t *testing.T) {
		imur, parts := upload(t, "bad-order", chunks)
		_, err := b.CompleteMultipartUpload(imur, []oss.UploadPart{parts[0], parts[0], parts[2]})
		requireServiceError(t, err, 400, "InvalidPartOrder")
		wrong := slices.Clone(parts)
		wrong[1].ETag = `"` + md5Hex([]byte("other")) + `"`
		_, err = b.CompleteMultipartUpload(imur, wrong)
		requireServiceError(t, err, 400, "InvalidPart")
		_, err = b.CompleteMultipartUpload(imur, append(slices.Clone(parts), oss.UploadPart{PartNumber: 9, ETag: parts[0].ETag}))
		requireServiceError(t, err, 400, "InvalidPart")
		// The failed attempts leave the upload usable.
		if _, err := b.CompleteMultipartUpload(imur, parts); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("SmallPartsButTheLastAreRejected", func(t *testing.T) {
		imur, parts := upload(t, "too-small", [][]byte{[]byte("tiny"), chunks[0]})
		_, err := b.CompleteMultipartUpload(imur, parts)
		requireServiceError(t, err, 400, "EntityTooSmall")
	})

	t.Run("AbortForgetsTheUpload", func(t *testing.T) {
		imur, parts := upload(t, "aborted", chunks[:1])
		if err := b.AbortMultipartUpload(imur); err != nil {
			t.Fatal(err)
		}
		_, err := b.CompleteMultipartUpload(imur, parts)
		requireServiceError(t, err, 404, "NoSuchUpload")
		_, err = b.UploadPart(imur, strings.NewReader("x"), 1, 2)
		requireServiceError(t, err, 404, "NoSuchUpload")
		if _, _, ok := tb.srv.Object(testBucket, "aborted"); ok {
			t.Fatal("aborted upload created an object")
		}
	})

	t.Run("UploadIDBelongsToItsKey", func(t *testing.T) {
		imur, _ := upload(t, "owner-key", nil)
		other := imur
		other.Key = "another-key"
		_, err := b.UploadPart(other, strings.NewReader("x"), 1, 1)
		requireServiceError(t, err, 404, "NoSuchUpload")
	})

	t.Run("V4SignedMultipartWorks", func(t *testing.T) {
		b4 := tb.bucket(t, v4()...)
		imur, err := b4.InitiateMultipartUpload("v4/mpu")
		if err != nil {
			t.Fatal(err)
		}
		p, err := b4.UploadPart(imur, bytes.NewReader(chunks[2]), int64(len(chunks[2])), 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b4.CompleteMultipartUpload(imur, []oss.UploadPart{p}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSignatures(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if _, err := tb.srv.PutObject(testBucket, "signed/key with space+plus", []byte("payload"), nil); err != nil {
		t.Fatal(err)
	}
	// exercise runs the common operations; name keeps parallel variants
	// off each other's keys.
	exercise := func(b *oss.Bucket, name string) error {
		key := "signed/new-" + name
		if err := b.PutObject(key, strings.NewReader("n"), oss.Meta("k", "v"), oss.ContentType("text/x")); err != nil {
			return err
		}
		if _, err := b.GetObject("signed/key with space+plus", oss.NormalizedRange("0-2")); err != nil {
			return err
		}
		if _, err := b.GetObjectDetailedMeta(key); err != nil {
			return err
		}
		if _, err := b.ListObjectsV2(oss.Prefix("signed/"), oss.Delimiter("/"), oss.StartAfter("a b"), oss.MaxKeys(1)); err != nil {
			return err
		}
		return b.DeleteObject(key)
	}
	variants := map[string][]oss.ClientOption{
		"V1":                  nil,
		"V2":                  {oss.AuthVersion(oss.AuthV2)},
		"V2AdditionalHeaders": {oss.AuthVersion(oss.AuthV2), oss.AdditionalHeaders([]string{"host", "user-agent"})},
		"V4":                  v4(),
		"V4AdditionalHeaders": append(v4(), oss.AdditionalHeaders([]string{"host", "User-Agent"})),
		"V4WithSTSToken":      append(v4(), oss.SecurityToken("sts-token")),
		"V1WithSTSToken":      {oss.SecurityToken("sts-token")},
		"V1WithCRCDisabled":   {oss.EnableCRC(false)},
	}
	for name, opts := range variants {
		t.Run(name+"AcceptsTheRightSecret", func(t *testing.T) {
			t.Parallel()
			if err := exercise(tb.bucket(t, opts...), name); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(name+"RejectsAWrongSecret", func(t *testing.T) {
			t.Parallel()
			b := tb.bucketAs(t, testAK, "wrong-secret", opts...)
			_, err := b.GetObject("signed/key with space+plus")
			se := wantServiceError(t, err, 403, "SignatureDoesNotMatch")
			if !strings.Contains(se.RawMessage, "<StringToSign>") {
				t.Errorf("error document lacks StringToSign: %s", se.RawMessage)
			}
			_, err = b.GetObjectDetailedMeta("signed/key with space+plus")
			requireServiceError(t, err, 403, "SignatureDoesNotMatch")
			err = b.PutObject("signed/rejected", strings.NewReader("x"))
			requireServiceError(t, err, 403, "SignatureDoesNotMatch")
		})
		t.Run(name+"RejectsAnUnknownKey", func(t *testing.T) {
			t.Parallel()
			b := tb.bucketAs(t, "unknown-ak", testSK, opts...)
			_, err := b.ListObjectsV2()
			requireServiceError(t, err, 403, "InvalidAccessKeyId")
		})
	}
	if _, _, ok := tb.srv.Object(testBucket, "signed/rejected"); ok {
		t.Error("a rejected PutObject stored its object")
	}

	t.Run("V4RejectsAnotherRegion", func(t *testing.T) {
		t.Parallel()
		b := tb.bucket(t, oss.AuthVersion(oss.AuthV4), oss.Region("us-west-1"))
		_, err := b.GetObject("signed/key with space+plus")
		requireServiceError(t, err, 403, "SignatureDoesNotMatch")
		// Without a Region the SDK silently signs an empty one.
		b = tb.bucket(t, oss.AuthVersion(oss.AuthV4))
		_, err = b.GetObject("signed/key with space+plus")
		requireServiceError(t, err, 403, "SignatureDoesNotMatch")
	})

	t.Run("AnonymousRequestsAreDenied", func(t *testing.T) {
		t.Parallel()
		resp, raw := getURL(t, tb.endpoint+"/"+testBucket+"/signed/key%20with%20space%2Bplus")
		if resp.StatusCode != 403 || !strings.Contains(string(raw), "<Code>AccessDenied</Code>") {
			t.Fatalf("anonymous GET: %d %s", resp.StatusCode, raw)
		}
	})

	for name, opts := range map[string][]oss.ClientOption{"V1": nil, "V2": {oss.AuthVersion(oss.AuthV2)}, "V4": v4()} {
		t.Run("PresignedURL"+name, func(t *testing.T) {
			t.Parallel()
			b := tb.bucket(t, opts...)
			u, err := b.SignURL("signed/key with space+plus", oss.HTTPGet, 60)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := b.GetObjectWithURL(u)
			if err != nil {
				t.Fatalf("GET %s: %v", u, err)
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			if string(data) != "payload" {
				t.Fatalf("body %q", data)
			}
			bad := tb.bucketAs(t, testAK, "wrong-secret", opts...)
			u, err = bad.SignURL("signed/key with space+plus", oss.HTTPGet, 60)
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.GetObjectWithURL(u)
			requireServiceError(t, err, 403, "SignatureDoesNotMatch")
		})
	}

	for name, opts := range map[string][]oss.ClientOption{"V1": nil, "V2": {oss.AuthVersion(oss.AuthV2)}, "V4": v4()} {
		t.Run("ExpiredPresignedURL"+name+"IsDenied", func(t *testing.T) {
			t.Parallel()
			later := setup(t, func(o *ossemu.Options) { o.Now = func() time.Time { return time.Now().Add(time.Hour) } })
			if _, err := later.srv.PutObject(testBucket, "k", []byte("v"), nil); err != nil {
				t.Fatal(err)
			}
			b := later.bucket(t, opts...)
			u, err := b.SignURL("k", oss.HTTPGet, 60)
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.GetObjectWithURL(u)
			se := wantServiceError(t, err, 403, "AccessDenied")
			if !strings.Contains(se.Message, "expired") {
				t.Fatalf("message %q", se.Message)
			}
		})
	}
}

func TestClockSkew(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(o *ossemu.Options) { o.Now = func() time.Time { return time.Now().Add(time.Hour) } })
	for name, opts := range map[string][]oss.ClientOption{"V1": nil, "V4": v4()} {
		t.Run(name+"RequestTimeTooSkewed", func(t *testing.T) {
			_, err := tb.bucket(t, opts...).ListObjectsV2()
			requireServiceError(t, err, 403, "RequestTimeTooSkewed")
		})
	}
}

func TestWithoutCredentialsSignaturesAreNotChecked(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(o *ossemu.Options) { o.Credentials = nil })
	b := tb.bucketAs(t, "any", "thing")
	if err := b.PutObject("k", strings.NewReader("v")); err != nil {
		t.Fatal(err)
	}
	resp, data := getURL(t, tb.endpoint+"/"+testBucket+"/k")
	if resp.StatusCode != 200 || string(data) != "v" {
		t.Fatalf("anonymous GET = %d %q", resp.StatusCode, data)
	}
}

func TestGzipObjectComesBackAsStored(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	plain := bytes.Repeat([]byte("compressible text "), 200)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(plain); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	stored := gz.Bytes()
	if err := b.PutObject("logs/app.log.gz", bytes.NewReader(stored), oss.ContentEncoding("gzip"), oss.ContentType("text/plain")); err != nil {
		t.Fatal(err)
	}

	t.Run("IdentityRequestGetsTheStoredBytes", func(t *testing.T) {
		res, err := b.DoGetObject(&oss.GetObjectRequest{ObjectKey: "logs/app.log.gz"}, []oss.Option{oss.AcceptEncoding("identity")})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(res.Response)
		res.Response.Close()
		if err != nil || !bytes.Equal(data, stored) {
			t.Fatalf("got %d bytes (%v), want the %d stored", len(data), err, len(stored))
		}
		h := res.Response.Headers
		if h.Get("Content-Encoding") != "gzip" || h.Get("Content-Length") != strconv.Itoa(len(stored)) ||
			h.Get("X-Oss-Hash-Crc64ecma") != strconv.FormatUint(crc64.Checksum(stored, crcTable), 10) {
			t.Fatalf("headers %v", h)
		}
	})

	t.Run("DefaultTransportDecompressesTheTrap", func(t *testing.T) {
		// Go's transport asks for gzip itself and then transparently
		// decompresses: the reason clients must ask for identity.
		data := getAll(t, b, "logs/app.log.gz")
		if !bytes.Equal(data, plain) {
			t.Fatalf("got %d bytes, want the %d decompressed", len(data), len(plain))
		}
	})
}

func TestCRC64MatchesECMA(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	const want uint64 = 0x995DC9BBDF1939FA
	if got := crc64.Checksum([]byte("123456789"), crcTable); got != want {
		t.Fatalf("Go's crc64 ECMA = %X", got)
	}
	var h http.Header
	if err := b.PutObject("check", strings.NewReader("123456789"), oss.GetResponseHeader(&h)); err != nil {
		t.Fatal(err)
	}
	if h.Get("X-Oss-Hash-Crc64ecma") != strconv.FormatUint(want, 10) {
		t.Fatalf("PutObject CRC header %q", h.Get("X-Oss-Hash-Crc64ecma"))
	}
	if info, _, _ := tb.srv.Object(testBucket, "check"); info.CRC64 != want {
		t.Fatalf("stored CRC %X", info.CRC64)
	}
	h, err := b.GetObjectDetailedMeta("check")
	if err != nil || h.Get("X-Oss-Hash-Crc64ecma") != strconv.FormatUint(want, 10) {
		t.Fatalf("HEAD CRC header %q, %v", h.Get("X-Oss-Hash-Crc64ecma"), err)
	}
}

func TestUploadIntegrityChecks(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	sum := md5.Sum([]byte("other"))
	err := b.PutObject("md5", strings.NewReader("body"), oss.ContentMD5(base64.StdEncoding.EncodeToString(sum[:])))
	requireServiceError(t, err, 400, "InvalidDigest")
	sum = md5.Sum([]byte("body"))
	if err := b.PutObject("md5", strings.NewReader("body"), oss.ContentMD5(base64.StdEncoding.EncodeToString(sum[:]))); err != nil {
		t.Fatal(err)
	}
	err = b.PutObject("md5", strings.NewReader("again"), oss.ForbidOverWrite(true))
	requireServiceError(t, err, 409, "FileAlreadyExists")
}

func TestConditionalGet(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	if err := b.PutObject("cond", strings.NewReader("v1")); err != nil {
		t.Fatal(err)
	}
	etag := `"` + md5Hex([]byte("v1")) + `"`
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)

	if got := getAll(t, b, "cond", oss.IfMatch(etag), oss.IfModifiedSince(past)); string(got) != "v1" {
		t.Fatalf("matching preconditions: %q", got)
	}
	_, err := b.GetObject("cond", oss.IfMatch(`"0000"`))
	requireServiceError(t, err, 412, "PreconditionFailed")
	_, err = b.GetObject("cond", oss.IfUnmodifiedSince(past))
	requireServiceError(t, err, 412, "PreconditionFailed")
	for name, opt := range map[string]oss.Option{"IfNoneMatch": oss.IfNoneMatch(etag), "IfModifiedSince": oss.IfModifiedSince(future)} {
		_, err := b.GetObject("cond", opt)
		if err == nil || !strings.Contains(err.Error(), "304") {
			t.Errorf("%s: err = %v, want a 304", name, err)
		}
	}
}

func TestArchivedObjects(t *testing.T) {
	t.Parallel()
	for _, class := range []oss.StorageClassType{oss.StorageArchive, oss.StorageColdArchive, oss.StorageDeepColdArchive} {
		t.Run(string(class)+"NeedsRestoreBeforeGet", func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			b := tb.bucket(t)
			if err := b.PutObject("cold", strings.NewReader("frozen"), oss.ObjectStorageClass(class)); err != nil {
				t.Fatal(err)
			}
			_, err := b.GetObject("cold")
			requireServiceError(t, err, 403, "InvalidObjectState")
			h, err := b.GetObjectDetailedMeta("cold")
			if err != nil || h.Get("X-Oss-Storage-Class") != string(class) || h.Get("X-Oss-Restore") != "" {
				t.Fatalf("HEAD: %v %v", err, h)
			}
			if err := b.RestoreObject("cold"); err != nil {
				t.Fatal(err)
			}
			h, _ = b.GetObjectDetailedMeta("cold")
			if !strings.HasPrefix(h.Get("X-Oss-Restore"), `ongoing-request="false", expiry-date=`) {
				t.Fatalf("x-oss-restore %q", h.Get("X-Oss-Restore"))
			}
			if got := getAll(t, b, "cold"); string(got) != "frozen" {
				t.Fatalf("restored body %q", got)
			}
		})
	}

	t.Run("RestoreTakesRestoreDelay", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, func(o *ossemu.Options) { o.RestoreDelay = time.Hour })
		b := tb.bucket(t)
		if err := b.PutObject("cold", strings.NewReader("frozen"), oss.ObjectStorageClass(oss.StorageArchive)); err != nil {
			t.Fatal(err)
		}
		if err := b.RestoreObject("cold"); err != nil {
			t.Fatal(err)
		}
		h, _ := b.GetObjectDetailedMeta("cold")
		if h.Get("X-Oss-Restore") != `ongoing-request="true"` {
			t.Fatalf("x-oss-restore %q", h.Get("X-Oss-Restore"))
		}
		requireServiceError(t, b.RestoreObject("cold"), 409, "RestoreAlreadyInProgress")
		_, err := b.GetObject("cold")
		requireServiceError(t, err, 403, "InvalidObjectState")
	})

	t.Run("RestoringAStandardObjectIsRefused", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		if err := b.PutObject("warm", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		requireServiceError(t, b.RestoreObject("warm"), 400, "OperationNotSupported")
	})
}

func TestAppendObject(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	next, err := b.AppendObject("log", strings.NewReader("hello "), 0, oss.ContentType("text/plain"))
	if err != nil || next != 6 {
		t.Fatalf("first append: %d, %v", next, err)
	}
	res, err := b.DoAppendObject(&oss.AppendObjectRequest{ObjectKey: "log", Reader: strings.NewReader("world"), Position: next},
		[]oss.Option{oss.InitCRC(crc64.Checksum([]byte("hello "), crcTable))}) // the SDK checks the whole-object CRC
	if err != nil || res.NextPosition != 11 {
		t.Fatalf("second append: %+v, %v", res, err)
	}
	_, err = b.AppendObject("log", strings.NewReader("!"), 3)
	se := wantServiceError(t, err, 409, "PositionNotEqualToLength")
	if !strings.Contains(se.RawMessage, "PositionNotEqualToLength") {
		t.Fatalf("raw %s", se.RawMessage)
	}
	info, data, _ := tb.srv.Object(testBucket, "log")
	if string(data) != "hello world" || info.ObjectType != "Appendable" || info.CRC64 != crc64.Checksum(data, crcTable) || info.ContentType != "text/plain" {
		t.Fatalf("stored %q %+v", data, info)
	}
	if err := b.PutObject("normal", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	_, err = b.AppendObject("normal", strings.NewReader("y"), 1)
	requireServiceError(t, err, 409, "ObjectNotAppendable")
}

func TestCopyDeleteManyAndTagging(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	err := b.PutObject("orig key+", strings.NewReader("copy me"), oss.Meta("m", "1"), oss.ContentType("text/x"),
		oss.SetTagging(oss.Tagging{Tags: []oss.Tag{{Key: "team", Value: "data eng"}}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CopyObject("orig key+", "copy/of it"); err != nil {
		t.Fatal(err)
	}
	info, data, _ := tb.srv.Object(testBucket, "copy/of it")
	if string(data) != "copy me" || info.Meta["m"] != "1" || info.ContentType != "text/x" || info.ETag != md5Hex([]byte("copy me")) || info.Tags["team"] != "data eng" {
		t.Fatalf("copy %q %+v", data, info)
	}
	h, err := b.GetObjectDetailedMeta("copy/of it")
	if err != nil || h.Get("X-Oss-Tagging-Count") != "1" {
		t.Fatalf("HEAD %v %v", h, err)
	}
	tags, err := b.GetObjectTagging("orig key+")
	if err != nil || len(tags.Tags) != 1 || tags.Tags[0].Value != "data eng" {
		t.Fatalf("GetObjectTagging %+v %v", tags, err)
	}
	if err := b.PutObjectTagging("orig key+", oss.Tagging{Tags: []oss.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}}); err != nil {
		t.Fatal(err)
	}
	if tags, err := b.GetObjectTagging("orig key+"); err != nil || len(tags.Tags) != 2 || tags.Tags[0].Key != "a" {
		t.Fatalf("after PutObjectTagging %+v %v", tags, err)
	}
	res, err := b.DeleteObjects([]string{"orig key+", "copy/of it", "never existed"})
	if err != nil || len(res.DeletedObjects) != 3 || !slices.Contains(res.DeletedObjects, "orig key+") {
		t.Fatalf("DeleteObjects %+v %v", res, err)
	}
	if _, _, ok := tb.srv.Object(testBucket, "orig key+"); ok {
		t.Fatal("still there")
	}
}

func TestUnimplementedSubResourcesDoNotTouchObjects(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	if err := b.PutObject("k", strings.NewReader("keep me")); err != nil {
		t.Fatal(err)
	}
	err := b.SetObjectACL("k", oss.ACLPublicRead)
	requireServiceError(t, err, 501, "NotImplemented")
	if got := getAll(t, b, "k"); string(got) != "keep me" {
		t.Fatalf("object became %q", got)
	}
}

func TestErrorDocumentFormat(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(o *ossemu.Options) { o.Credentials = nil })
	resp, raw := getURL(t, tb.endpoint+"/"+testBucket+"/missing")
	id := resp.Header.Get("X-Oss-Request-Id")
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/xml" || id == "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>", "<Code>NoSuchKey</Code>", "<RequestId>" + id + "</RequestId>", "<HostId>", "<EC>", "<Key>missing</Key>"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("error document lacks %q:\n%s", want, raw)
		}
	}
	req, _ := http.NewRequest(http.MethodHead, tb.endpoint+"/"+testBucket+"/missing", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	doc, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Oss-Err"))
	if resp.StatusCode != 404 || err != nil || !strings.Contains(string(doc), "<Code>NoSuchKey</Code>") {
		t.Fatalf("HEAD error: %d x-oss-err %q (%v)", resp.StatusCode, doc, err)
	}
}

func TestVirtualHostedStyle(t *testing.T) {
	t.Parallel()
	srv := ossemu.New(ossemu.Options{})
	t.Cleanup(func() { srv.Close() })
	if _, err := srv.PutObject(testBucket, "dir/file name", []byte("vh"), nil); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/dir/file%20name", nil)
	req.Host = testBucket + ".oss-cn-hangzhou.aliyuncs.com"
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "vh" {
		t.Fatalf("virtual-hosted GET = %d %q", rec.Code, rec.Body.String())
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("0123456789"), 100)

	t.Run("StatusForTwoRequestsThenSuccess", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		if err := b.PutObject("flaky", bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		tb.srv.InjectFault(ossemu.Fault{Op: "GetObject", Bucket: testBucket, Key: "flaky", Status: 503, Times: 2})
		for i := 0; i < 2; i++ {
			_, err := b.GetObject("flaky")
			requireServiceError(t, err, 503, "InternalError")
		}
		if got := getAll(t, b, "flaky"); !bytes.Equal(got, body) {
			t.Fatal("third GET did not succeed")
		}
		if n := tb.srv.Requests()["GetObject"]; n != 3 {
			t.Fatalf("GetObject requests = %d", n)
		}
	})

	t.Run("FaultsMatchOnlyTheirTarget", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		tb.srv.InjectFault(ossemu.Fault{Op: "PutObject", Key: "bad", Status: 500, Code: "SlowDown"})
		if err := b.PutObject("good", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ { // Times 0: every matching request
			requireServiceError(t, b.PutObject("bad", strings.NewReader("x")), 500, "SlowDown")
		}
		tb.srv.ClearFaults()
		if err := b.PutObject("bad", strings.NewReader("x")); err != nil {
			t.Fatalf("after ClearFaults: %v", err)
		}
	})

	t.Run("HeadFaultCarriesItsCodeInXOssErr", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		tb.srv.InjectFault(ossemu.Fault{Op: "HeadObject", Status: 503, Code: "ServiceUnavailable", Times: 1})
		_, err := b.GetObjectDetailedMeta("whatever")
		requireServiceError(t, err, 503, "ServiceUnavailable")
	})

	t.Run("LatencyDelaysAndRespectsTheClient", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		if err := b.PutObject("slow", bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		tb.srv.InjectFault(ossemu.Fault{Op: "GetObject", Key: "slow", Latency: 300 * time.Millisecond})
		start := time.Now()
		if got := getAll(t, b, "slow"); !bytes.Equal(got, body) {
			t.Fatal("wrong body")
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("GET took %v, want >= 300ms", d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := b.GetObject("slow", oss.WithContext(ctx)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the client's deadline", err)
		}
	})

	t.Run("CutBodyFailsTheRead", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		if err := b.PutObject("cut", bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		tb.srv.InjectFault(ossemu.Fault{Op: "GetObject", Key: "cut", CutBodyAfter: 100, Times: 1})
		rc, err := b.GetObject("cut")
		if err != nil {
			t.Fatalf("headers should arrive: %v", err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err == nil || len(data) != 100 {
			t.Fatalf("read %d bytes, err %v; want 100 bytes and an error", len(data), err)
		}
		if got := getAll(t, b, "cut"); !bytes.Equal(got, body) {
			t.Fatal("the fault outlived Times")
		}
	})
}

// hookRecorder is a webhook receiver that fails the first failures requests.
type hookRecorder struct {
	mu       sync.Mutex
	failures int
	bodies   [][]byte
	sigs     []string
	calls    int
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.failures > 0 {
		h.failures--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "content type", http.StatusUnsupportedMediaType)
		return
	}
	h.bodies = append(h.bodies, body)
	h.sigs = append(h.sigs, r.Header.Get(signature.Header))
	w.WriteHeader(http.StatusNoContent)
}

// recordHooks points tb's webhook at a new hookRecorder, signed with
// secret, for the rest of the test.
func (tb *testBundle) recordHooks(t *testing.T, secret string) *hookRecorder {
	t.Helper()
	rec := &hookRecorder{}
	hook := httptest.NewServer(rec)
	t.Cleanup(hook.Close)
	tb.srv.SetWebhook(hook.URL, secret)
	return rec
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	const secret = "hook-secret"

	t.Run("EveryWriteIsDeliveredSignedAndInOrder", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		rec := &hookRecorder{failures: 2} // the first delivery needs retries
		hook := httptest.NewServer(rec)
		defer hook.Close()
		tb.srv.SetWebhook(hook.URL, secret)

		if err := b.PutObject("a/b.txt", strings.NewReader("hello"), oss.ContentType("text/plain"), oss.Meta("k", "v")); err != nil {
			t.Fatal(err)
		}
		imur, err := b.InitiateMultipartUpload("mpu")
		if err != nil {
			t.Fatal(err)
		}
		p, err := b.UploadPart(imur, strings.NewReader("part"), 4, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.CompleteMultipartUpload(imur, []oss.UploadPart{p}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.AppendObject("app", strings.NewReader("12"), 0); err != nil {
			t.Fatal(err)
		}
		if err := b.DeleteObject("a/b.txt"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tb.srv.WaitWebhooks(ctx); err != nil {
			t.Fatal(err)
		}
		if errs := tb.srv.WebhookErrors(); len(errs) != 0 {
			t.Fatalf("webhook errors: %v", errs)
		}

		rec.mu.Lock()
		defer rec.mu.Unlock()
		want := []struct {
			name, key, etag string
			size, delta     int64
		}{
			{"ObjectCreated:PutObject", "a/b.txt", md5Hex([]byte("hello")), 5, 5},
			{"ObjectCreated:CompleteMultipartUpload", "mpu", "", 4, 4},
			{"ObjectCreated:AppendObject", "app", "", 2, 2},
			{"ObjectRemoved:DeleteObject", "a/b.txt", md5Hex([]byte("hello")), 0, -5},
		}
		if len(rec.bodies) != len(want) || rec.calls != len(want)+2 {
			t.Fatalf("received %d documents in %d calls", len(rec.bodies), rec.calls)
		}
		for i, w := range want {
			if err := signature.Verify(rec.sigs[i], rec.bodies[i], []string{secret}, time.Now(), 0); err != nil {
				t.Fatalf("document %d signature: %v", i, err)
			}
			r := fullRecord(t, rec.bodies[i])
			if r.EventName != w.name || r.OSS.Object.Key != w.key || r.OSS.Bucket.Name != testBucket || r.OSS.Object.Size != w.size ||
				r.OSS.Object.DeltaSize != w.delta || r.Region != testRegion || r.ResponseElements["requestId"] == "" {
				t.Fatalf("document %d = %+v", i, r)
			}
			if w.etag != "" && r.ETag() != w.etag {
				t.Fatalf("document %d eTag %q, want %q", i, r.ETag(), w.etag)
			}
		}
		first := fullRecord(t, rec.bodies[0])
		if m := first.OSS.Object.ObjectMeta; m == nil || m.MimeType != "text/plain" || m.UserMeta["k"] != "v" {
			t.Fatalf("objectMeta %+v", m)
		}
		mpu, _ := ossevent.Parse(rec.bodies[1])
		if !strings.HasSuffix(mpu.Events[0].ETag(), "-1") {
			t.Fatalf("multipart eTag %q", mpu.Events[0].ETag())
		}
	})

	t.Run("FailedDeliveriesAreRecorded", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		rec := &hookRecorder{failures: 1000}
		hook := httptest.NewServer(rec)
		defer hook.Close()
		tb.srv.SetWebhook(hook.URL, secret)
		if _, err := tb.srv.PutObject(testBucket, "k", []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tb.srv.WaitWebhooks(ctx); err != nil {
			t.Fatal(err)
		}
		errs := tb.srv.WebhookErrors()
		rec.mu.Lock()
		calls := rec.calls
		rec.mu.Unlock()
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "503") || calls != 4 {
			t.Fatalf("errors %v after %d calls; want one error after 4 attempts", errs, calls)
		}
	})

	t.Run("DisabledWebhookSendsNothing", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		rec := tb.recordHooks(t, secret)
		tb.srv.SetWebhook("", "")
		if _, err := tb.srv.PutObject(testBucket, "k", []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
		if err := tb.srv.WaitWebhooks(context.Background()); err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.calls != 0 {
			t.Fatalf("%d calls", rec.calls)
		}
	})

	t.Run("CloseAbandonsQueuedDeliveries", func(t *testing.T) {
		t.Parallel()
		srv := ossemu.New(ossemu.Options{})
		release := make(chan struct{})
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer hook.Close()
		defer close(release)
		srv.SetWebhook(hook.URL, secret)
		for _, k := range []string{"a", "b", "c"} {
			if _, err := srv.PutObject(testBucket, k, []byte("v"), nil); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := srv.WaitWebhooks(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitWebhooks = %v, want a deadline while the receiver hangs", err)
		}
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		errs := srv.WebhookErrors()
		if len(errs) != 3 {
			t.Fatalf("errors %v, want 3", errs)
		}
		for _, err := range errs {
			if !errors.Is(err, ossemu.ErrWebhookAbandoned) {
				t.Fatalf("error %v is not ErrWebhookAbandoned", err)
			}
		}
		if err := srv.WaitWebhooks(context.Background()); err != nil {
			t.Fatalf("WaitWebhooks after Close: %v", err)
		}
	})
}

func TestBuckets(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	client := tb.clientAs(t, testAK, testSK)
	for _, name := range []string{"bkt-b", "bkt-a", "other"} {
		if err := client.CreateBucket(name); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("ListBucketsPagesByName", func(t *testing.T) {
		res, err := client.ListBuckets(oss.Prefix("bkt-"), oss.MaxKeys(1))
		if err != nil || len(res.Buckets) != 1 || res.Buckets[0].Name != "bkt-a" || !res.IsTruncated || res.NextMarker != "bkt-a" {
			t.Fatalf("page 1 %+v %v", res, err)
		}
		res, err = client.ListBuckets(oss.Prefix("bkt-"), oss.Marker(res.NextMarker))
		if err != nil || len(res.Buckets) != 1 || res.Buckets[0].Name != "bkt-b" || res.IsTruncated {
			t.Fatalf("page 2 %+v %v", res, err)
		}
	})

	t.Run("InfoAndLocation", func(t *testing.T) {
		info, err := client.GetBucketInfo("bkt-a")
		if err != nil || info.BucketInfo.Name != "bkt-a" || info.BucketInfo.Location != "oss-"+testRegion || info.BucketInfo.CreationDate.IsZero() {
			t.Fatalf("GetBucketInfo %+v %v", info, err)
		}
		loc, err := client.GetBucketLocation("bkt-a")
		if err != nil || loc != "oss-"+testRegion {
			t.Fatalf("GetBucketLocation %q %v", loc, err)
		}
		_, err = client.GetBucketInfo("missing")
		requireServiceError(t, err, 404, "NoSuchBucket")
	})

	t.Run("DeleteNeedsAnEmptyBucket", func(t *testing.T) {
		b, _ := client.Bucket("bkt-b")
		if err := b.PutObject("k", strings.NewReader("v")); err != nil {
			t.Fatal(err)
		}
		requireServiceError(t, client.DeleteBucket("bkt-b"), 409, "BucketNotEmpty")
		if err := b.DeleteObject("k"); err != nil {
			t.Fatal(err)
		}
		if err := client.DeleteBucket("bkt-b"); err != nil {
			t.Fatal(err)
		}
		requireServiceError(t, client.DeleteBucket("bkt-b"), 404, "NoSuchBucket")
	})
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	cases := []struct {
		name   string
		call   func() error
		status int
		code   string
	}{
		{"KeyLongerThan1023Bytes", func() error { return b.PutObject(strings.Repeat("k", 1024), strings.NewReader("x")) }, 400, "InvalidObjectName"},
		{"KeyStartingWithBackslash", func() error { return b.PutObject(`\k`, strings.NewReader("x")) }, 400, "InvalidObjectName"},
		{"UnknownStorageClass", func() error {
			return b.PutObject("k", strings.NewReader("x"), oss.ObjectStorageClass("Glacier"))
		}, 400, "InvalidArgument"},
		{"GarbageContinuationToken", func() error { _, err := b.ListObjectsV2(oss.ContinuationToken("!!!")); return err }, 400, "InvalidArgument"},
		{"PartNumberOutOfRange", func() error {
			imur, err := b.InitiateMultipartUpload("k")
			if err != nil {
				return err
			}
			_, err = b.UploadPart(imur, strings.NewReader("x"), 1, 10001)
			return err
		}, 400, "InvalidArgument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireServiceError(t, tc.call(), tc.status, tc.code)
		})
	}
	if n := tb.srv.Requests()["PutObject"]; n != 3 {
		t.Fatalf("PutObject requests = %d", n)
	}
	tb.srv.ResetRequests()
	if n := len(tb.srv.Requests()); n != 0 {
		t.Fatalf("after ResetRequests: %v", tb.srv.Requests())
	}
}

func TestServerSideHelpers(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	rec := tb.recordHooks(t, "s")
	h := http.Header{}
	h.Set("Content-Type", "image/png")
	h.Set("x-oss-meta-Origin", "seed")
	h.Set("x-oss-storage-class", "coldarchive")
	h.Set("x-oss-tagging", "a=1&b=two%20words")
	info, err := tb.srv.PutObject("seeded", "img.png", []byte("png"), h)
	if err != nil {
		t.Fatal(err)
	}
	if info.ContentType != "image/png" || info.Meta["origin"] != "seed" || info.StorageClass != "ColdArchive" || info.Tags["b"] != "two words" || info.ETag != md5Hex([]byte("png")) {
		t.Fatalf("PutObject info %+v", info)
	}
	tb.srv.DeleteObject("seeded", "img.png")
	if _, _, ok := tb.srv.Object("seeded", "img.png"); ok {
		t.Fatal("DeleteObject left the object")
	}
	if err := tb.srv.WaitWebhooks(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var names []string
	for _, body := range rec.bodies {
		doc, err := ossevent.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, doc.Events[0].EventName)
	}
	if !slices.Equal(names, []string{"ObjectCreated:PutObject", "ObjectRemoved:DeleteObject"}) {
		t.Fatalf("events %q", names)
	}
	if _, err := tb.srv.PutObject("seeded", "/abs", nil, nil); err == nil {
		t.Fatal("PutObject accepted a key starting with /")
	}
}

func TestListMultipartUploadsPaging(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t)
	ids := map[string]bool{}
	for _, k := range []string{"x/1", "x/1", "x/2", "y", "dir/a", "dir/b"} {
		imur, err := b.InitiateMultipartUpload(k)
		if err != nil {
			t.Fatal(err)
		}
		ids[imur.UploadID] = true
	}
	var keys []string
	keyMarker, idMarker := "", ""
	for page := 0; ; page++ {
		res, err := b.ListMultipartUploads(oss.MaxUploads(2), oss.KeyMarker(keyMarker), oss.UploadIDMarker(idMarker))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range res.Uploads {
			if !ids[u.UploadID] {
				t.Fatalf("unknown or repeated upload %+v", u)
			}
			delete(ids, u.UploadID)
			keys = append(keys, u.Key)
		}
		if !res.IsTruncated {
			break
		}
		if page > 10 {
			t.Fatal("paging does not end")
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
	if !slices.Equal(keys, []string{"dir/a", "dir/b", "x/1", "x/1", "x/2", "y"}) || len(ids) != 0 {
		t.Fatalf("keys %q, unlisted %v", keys, ids)
	}
	res, err := b.ListMultipartUploads(oss.Delimiter("/"))
	if err != nil || !slices.Equal(res.CommonPrefixes, []string{"dir/", "x/"}) || len(res.Uploads) != 1 || res.Uploads[0].Key != "y" {
		t.Fatalf("with delimiter: %+v %v", res, err)
	}
}

func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.bucket(t, oss.MaxConns(16, 16, 16))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				key := "w" + strconv.Itoa(w) + "/" + strconv.Itoa(i)
				if err := b.PutObject(key, strings.NewReader(key)); err != nil {
					errs <- err
					return
				}
				if _, err := b.ListObjectsV2(oss.Prefix("w"), oss.MaxKeys(7)); err != nil {
					errs <- err
					return
				}
				if i%5 == 0 {
					if err := b.DeleteObject(key); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	keys, _, _ := listAllV2(t, b, oss.MaxKeys(13))
	if len(keys) != 8*20 || !slices.IsSorted(keys) {
		t.Fatalf("%d keys, sorted %v", len(keys), slices.IsSorted(keys))
	}
}

// fullRecord is the one record of a webhook document, every member of it:
// the document must pass ossevent.Parse, as the gateway's check, and is
// then decoded whole with encoding/json, since Parse keeps only the
// members the gateway uses and the emulator writes all of them.
func fullRecord(t *testing.T, body []byte) ossevent.Record {
	t.Helper()
	if _, err := ossevent.Parse(body); err != nil {
		t.Fatalf("document: %v\n%s", err, body)
	}
	var doc ossevent.Document
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Events) != 1 {
		t.Fatalf("document: %v, %d records\n%s", err, len(doc.Events), body)
	}
	return doc.Events[0]
}
