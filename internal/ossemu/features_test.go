package ossemu_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

func TestSymlinks(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	rec := tb.recordHooks(t, "s")
	b := tb.bucket(t)
	const target = "dir/target 1+é.txt"
	body := []byte("the target's bytes")
	putOSS(t, b, target, body, oss.ContentType("text/plain"), oss.Meta("Owner", "target"))
	if err := b.PutSymlink("links/l", target, oss.Meta("Kind", "link"), oss.ContentType("application/x-link")); err != nil {
		t.Fatal(err)
	}
	targetETag := `"` + md5Hex(body) + `"`
	sum := md5.Sum([]byte(target))
	linkETag := `"` + strings.ToUpper(hex.EncodeToString(sum[:])) + `"`

	t.Run("GetSymlinkNamesTheTarget", func(t *testing.T) {
		h, err := b.GetSymlink("links/l")
		if err != nil {
			t.Fatal(err)
		}
		if h.Get(oss.HTTPHeaderOssSymlinkTarget) != target || h.Get("ETag") != linkETag || h.Get("ETag") == targetETag || h.Get("X-Oss-Meta-Kind") != "link" {
			t.Fatalf("GetSymlink headers %v", h)
		}
		info, data, ok := tb.srv.Object(testBucket, "links/l")
		if !ok || data != nil || info.ObjectType != "Symlink" || info.SymlinkTarget != target || info.Size != 0 {
			t.Fatalf("Object(link) = %+v", info)
		}
	})

	t.Run("HeadAndGetServeTheTarget", func(t *testing.T) {
		h, err := b.GetObjectDetailedMeta("links/l")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"Content-Length":       strconv.Itoa(len(body)),
			"ETag":                 targetETag,
			"X-Oss-Object-Type":    "Symlink",
			"X-Oss-Meta-Kind":      "link",
			"X-Oss-Meta-Owner":     "",
			"Content-Type":         "application/x-link",
			"X-Oss-Hash-Crc64ecma": strconv.FormatUint(crc64.Checksum(body, crcTable), 10),
		}
		for k, v := range want {
			if h.Get(k) != v {
				t.Errorf("HEAD %s = %q, want %q", k, h.Get(k), v)
			}
		}
		if got := getAll(t, b, "links/l"); !bytes.Equal(got, body) {
			t.Fatalf("GET link = %q", got)
		}
		if got := getAll(t, b, "links/l", oss.Range(4, 9)); string(got) != "target" {
			t.Fatalf("ranged GET link = %q", got)
		}
		res, err := b.ListObjectsV2(oss.Prefix("links/"))
		if err != nil || len(res.Objects) != 1 || res.Objects[0].Type != "Symlink" || res.Objects[0].Size != 0 || res.Objects[0].ETag != linkETag {
			t.Fatalf("listing %v %+v", err, res.Objects)
		}
	})

	t.Run("LinkFollowsTheTargetsChanges", func(t *testing.T) {
		putOSS(t, b, target, []byte("rewritten"))
		if got := getAll(t, b, "links/l"); string(got) != "rewritten" {
			t.Fatalf("GET link after overwrite = %q", got)
		}
		if err := b.DeleteObject(target); err != nil {
			t.Fatal(err)
		}
		_, err := b.GetObject("links/l")
		requireServiceError(t, err, 404, "SymlinkTargetNotExist")
		_, err = b.GetObjectDetailedMeta("links/l")
		requireServiceError(t, err, 404, "SymlinkTargetNotExist")
		if h, err := b.GetSymlink("links/l"); err != nil || h.Get(oss.HTTPHeaderOssSymlinkTarget) != target {
			t.Fatalf("the dangling link itself: %v %v", err, h)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		putOSS(t, b, "plain", []byte("x"))
		if err := b.PutSymlink("link-to-link", "links/l"); err != nil {
			t.Fatal(err)
		}
		putOSS(t, b, target, body)
		_, err := b.GetObject("link-to-link")
		requireServiceError(t, err, 400, "InvalidTargetType")
		_, err = b.GetSymlink("plain")
		requireServiceError(t, err, 400, "NotSymlink")
		_, err = b.GetSymlink("no-such-link")
		requireServiceError(t, err, 404, "NoSuchKey")
		requireServiceError(t, b.PutSymlink("links/l", "x", oss.ForbidOverWrite(true)), 409, "FileAlreadyExists")
	})

	t.Run("PutSymlinkSendsItsEvent", func(t *testing.T) {
		if err := tb.srv.WaitWebhooks(context.Background()); err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		var found bool
		for _, raw := range rec.bodies {
			doc, err := ossevent.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			ev := doc.Events[0]
			if ev.EventName == "ObjectCreated:PutSymlink" && ev.OSS.Object.Key == "links/l" {
				found = true
			}
		}
		if !found {
			t.Fatal("no ObjectCreated:PutSymlink event for links/l")
		}
	})

	if n := tb.srv.Requests()["PutSymlink"]; n != 3 {
		t.Fatalf("PutSymlink requests = %d", n)
	}
}

func TestFaultHooks(t *testing.T) {
	t.Parallel()
	const size = 3 << 20
	original := bytes.Repeat([]byte("A"), size)

	t.Run("BeforeOverwritesTheObjectMidDownload", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		putOSS(t, b, "obj", original)
		etag := `"` + md5Hex(original) + `"`
		var calls atomic.Int32
		tb.srv.InjectFault(ossemu.Fault{Op: "GetObject", Key: "obj", Skip: 1, Times: 1, Before: func() {
			calls.Add(1)
			if _, err := tb.srv.PutObject(testBucket, "obj", bytes.Repeat([]byte("B"), size), nil); err != nil {
				t.Error(err)
			}
		}})
		// A copier reading three 1 MiB ranges, each pinned to the ETag it
		// started with.
		part := func(i int64) ([]byte, error) {
			rc, err := b.GetObject("obj", oss.Range(i<<20, (i+1)<<20-1), oss.IfMatch(etag))
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
		if got, err := part(0); err != nil || !bytes.Equal(got, original[:1<<20]) {
			t.Fatalf("first range: %v", err)
		}
		_, err := part(1)
		requireServiceError(t, err, 412, "PreconditionFailed")
		if got := getAll(t, b, "obj", oss.Range(2<<20, 3<<20-1)); !bytes.Equal(got, bytes.Repeat([]byte("B"), 1<<20)) {
			t.Fatal("the third range does not see the new object")
		}
		if calls.Load() != 1 {
			t.Fatalf("Before ran %d times, want 1", calls.Load())
		}
	})

	t.Run("RangeMatchesOnlyThatRange", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		putOSS(t, b, "obj", original)
		tb.srv.InjectFault(ossemu.Fault{Op: "GetObject", Range: "bytes=100-199", Status: 503, Code: "ServiceUnavailable"})
		for range 2 {
			_, err := b.GetObject("obj", oss.Range(100, 199))
			requireServiceError(t, err, 503, "ServiceUnavailable")
		}
		if got := getAll(t, b, "obj", oss.Range(0, 99)); len(got) != 100 {
			t.Fatalf("another range got %d bytes", len(got))
		}
		if got := getAll(t, b, "obj"); len(got) != size {
			t.Fatalf("whole object got %d bytes", len(got))
		}
	})

	t.Run("SkipLetsTheFirstRequestsThrough", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		putOSS(t, b, "obj", []byte("x"))
		tb.srv.InjectFault(ossemu.Fault{Op: "HeadObject", Skip: 2, Times: 1, Status: 500})
		var failed []int
		for i := range 5 {
			if _, err := b.GetObjectDetailedMeta("obj"); err != nil {
				requireServiceError(t, err, 500, "InternalError")
				failed = append(failed, i)
			}
		}
		if len(failed) != 1 || failed[0] != 2 {
			t.Fatalf("failed requests %v, want only #2", failed)
		}
	})

	t.Run("BeforeAloneUsesUpTimes", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		b := tb.bucket(t)
		putOSS(t, b, "obj", []byte("x"))
		var calls atomic.Int32
		tb.srv.InjectFault(ossemu.Fault{Op: "HeadObject", Times: 2, Before: func() { calls.Add(1) }})
		for range 4 {
			if _, err := b.GetObjectDetailedMeta("obj"); err != nil {
				t.Fatal(err)
			}
		}
		if calls.Load() != 2 {
			t.Fatalf("Before ran %d times, want 2", calls.Load())
		}
	})
}

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestArchiveRestoreLifecycle(t *testing.T) {
	t.Parallel()
	// No credentials: the clock jumps days ahead, past any signature skew.
	clock := &fakeClock{now: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	tb := setup(t, func(o *ossemu.Options) {
		o.Credentials = nil
		o.RestoreDelay = time.Hour
		o.Now = clock.Now
	})
	b := tb.bucket(t)
	c := tb.s3(t)
	ctx := context.Background()
	putOSS(t, b, "cold", []byte("frozen"), oss.ObjectStorageClass(oss.StorageColdArchive))
	restoreHeader := func() string {
		t.Helper()
		h, err := b.GetObjectDetailedMeta("cold")
		if err != nil {
			t.Fatal(err)
		}
		return h.Get("X-Oss-Restore")
	}
	readable := func() bool {
		t.Helper()
		rc, err := b.GetObject("cold")
		if err != nil {
			requireServiceError(t, err, 403, "InvalidObjectState")
			return false
		}
		defer rc.Close()
		data, _ := io.ReadAll(rc)
		if string(data) != "frozen" {
			t.Fatalf("restored body %q", data)
		}
		return true
	}

	if readable() || restoreHeader() != "" {
		t.Fatal("an archived object is readable before any restore")
	}
	if err := b.RestoreObject("cold"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Minute)
	if readable() || restoreHeader() != `ongoing-request="true"` {
		t.Fatalf("during the restore: x-oss-restore %q", restoreHeader())
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("cold")})
	if err != nil || aws.ToString(h.Restore) != `ongoing-request="true"` {
		t.Fatalf("S3 HEAD during the restore: %v %q", err, aws.ToString(h.Restore))
	}
	requireServiceError(t, b.RestoreObject("cold"), 409, "RestoreAlreadyInProgress")

	clock.Advance(time.Minute)
	expiry := time.Date(2030, 1, 2, 13, 0, 0, 0, time.UTC) // ready at 13:00, restored for a day
	if want := `ongoing-request="false", expiry-date="` + expiry.Format(http.TimeFormat) + `"`; restoreHeader() != want {
		t.Fatalf("after the delay: x-oss-restore %q, want %q", restoreHeader(), want)
	}
	if !readable() {
		t.Fatal("not readable once restored")
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("cold")})
	if err != nil {
		t.Fatalf("S3 GET once restored: %v", err)
	}
	out.Body.Close()

	clock.Advance(24*time.Hour + time.Second)
	if readable() || restoreHeader() != "" {
		t.Fatalf("after expiry: readable, or x-oss-restore %q", restoreHeader())
	}
}

// TestBucketStat: the SDK's GetBucketStat reads the bucket's object count
// and bytes (a reconcile run's totals), stored or generated, signed V1 and
// V4 as every other request.
func TestBucketStat(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, v4 := range []bool{false, true} {
		var opts []oss.ClientOption
		if v4 {
			opts = append(opts, oss.AuthVersion(oss.AuthV4), oss.Region(testRegion))
		}
		b := tb.bucket(t, opts...)
		putOSS(t, b, "a", []byte("12345"))
		putOSS(t, b, "dir/b", []byte("1234567890"))
		st, err := b.Client.GetBucketStat(testBucket)
		if err != nil {
			t.Fatal(err)
		}
		if st.ObjectCount != 2 || st.Storage != 15 {
			t.Fatalf("v4=%v: stat %d objects, %d bytes; want 2 and 15", v4, st.ObjectCount, st.Storage)
		}
	}
	tb.srv.SetGenerated("gen", ossemu.Generated{Count: 200, Missing: 1, Extra: 1})
	st, err := tb.bucket(t).Client.GetBucketStat("gen")
	if err != nil {
		t.Fatal(err)
	}
	// 2 of the 200 base keys are missing; 2 extra keys are added.
	var want int64
	for i := range int64(200) {
		if i%100 >= 1 {
			want += ossemu.GeneratedSize(i)
		}
		if i%100 == 1 {
			want += ossemu.GeneratedSize(i)
		}
	}
	if st.ObjectCount != 200 || st.Storage != want {
		t.Fatalf("generated: stat %d objects, %d bytes; want 200 and %d", st.ObjectCount, st.Storage, want)
	}
	if _, err := tb.bucket(t).Client.GetBucketStat("no-such-bucket"); err == nil || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Fatalf("stat of a missing bucket: %v", err)
	}
}
