package ossemu_test

import (
	"bytes"
	"context"
	"hash/crc64"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// syntheticBytes reads n bytes of a synthetic object's content from off.
func syntheticBytes(t *testing.T, size int64, seed uint64, off, n int64) []byte {
	t.Helper()
	data, err := io.ReadAll(io.LimitReader(ossemu.SyntheticReader(size, seed, off), n))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSyntheticReader(t *testing.T) {
	t.Parallel()
	const size = 1<<20 + 3
	whole := syntheticBytes(t, size, 1, 0, size)
	if len(whole) != size {
		t.Fatalf("read %d bytes, want %d", len(whole), size)
	}
	t.Run("AnyOffsetContinuesTheSameContent", func(t *testing.T) {
		for _, off := range []int64{0, 1, 7, 8, 9, 65535, 65536, 65537, size - 9, size - 1, size} {
			if got := syntheticBytes(t, size, 1, off, size); !bytes.Equal(got, whole[off:]) {
				t.Fatalf("offset %d: %d bytes differ from the whole read", off, len(got))
			}
		}
	})
	t.Run("SmallReadsMatchWriteTo", func(t *testing.T) {
		r := ossemu.SyntheticReader(size, 1, 3)
		var got []byte
		buf := make([]byte, 5)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, whole[3:]) {
			t.Fatal("5-byte reads differ from WriteTo")
		}
	})
	t.Run("SeedsGiveUnrelatedContent", func(t *testing.T) {
		other := syntheticBytes(t, size, 2, 0, size)
		same := 0
		for i := range other {
			if other[i] == whole[i] {
				same++
			}
		}
		// Independent random bytes agree 1 time in 256.
		if same > size/128 {
			t.Fatalf("seeds 1 and 2 agree on %d of %d bytes", same, size)
		}
	})
}

func TestSyntheticObjects(t *testing.T) {
	t.Parallel()
	const size = 40<<20 + 13 // three 16 MiB parts
	const seed = 7
	tb := setup(t)
	rec := tb.recordHooks(t, "s")
	h := http.Header{}
	h.Set("Content-Type", "application/x-synthetic")
	h.Set("x-oss-meta-Kind", "generated")
	info, err := tb.srv.PutSynthetic(testBucket, "big/synth.bin", size, seed, h)
	if err != nil {
		t.Fatal(err)
	}
	crc := crc64.New(crcTable)
	if _, err := io.Copy(crc, ossemu.SyntheticReader(size, seed, 0)); err != nil {
		t.Fatal(err)
	}
	wantCRC := strconv.FormatUint(crc.Sum64(), 10)
	if !regexp.MustCompile(`^[0-9A-F]{32}-3$`).MatchString(info.ETag) || info.Size != size || info.ObjectType != "Multipart" ||
		!info.Synthetic || info.Seed != seed || info.CRC64 != crc.Sum64() || info.ContentType != "application/x-synthetic" {
		t.Fatalf("PutSynthetic info %+v, want CRC %s", info, wantCRC)
	}
	b := tb.bucket(t)

	t.Run("WholeGetStreamsTheExactBytes", func(t *testing.T) {
		res, err := b.DoGetObject(&oss.GetObjectRequest{ObjectKey: "big/synth.bin"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Response.Close()
		n, err := io.Copy(io.Discard, res.Response)
		if err != nil || n != size {
			t.Fatalf("read %d, %v", n, err)
		}
		if res.ClientCRC.Sum64() != res.ServerCRC || strconv.FormatUint(res.ServerCRC, 10) != wantCRC {
			t.Fatalf("client CRC %d, server CRC %d, want %s", res.ClientCRC.Sum64(), res.ServerCRC, wantCRC)
		}
		hd := res.Response.Headers
		if hd.Get("X-Oss-Object-Type") != "Multipart" || hd.Get("ETag") != `"`+info.ETag+`"` || hd.Get("X-Oss-Meta-Kind") != "generated" ||
			hd.Get("Content-Type") != "application/x-synthetic" || hd.Get("Content-Md5") != "" {
			t.Fatalf("GET headers %v", hd)
		}
	})

	t.Run("RangesAnywhere", func(t *testing.T) {
		for _, r := range [][2]int64{{0, 0}, {1, 100}, {16<<20 - 3, 16<<20 + 4}, {size - 1000, size - 1}} {
			got := getAll(t, b, "big/synth.bin", oss.Range(r[0], r[1]))
			if !bytes.Equal(got, syntheticBytes(t, size, seed, r[0], r[1]-r[0]+1)) {
				t.Fatalf("range %v: %d bytes differ", r, len(got))
			}
		}
		out, err := tb.s3(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("big/synth.bin"), Range: aws.String("bytes=-777")})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, syntheticBytes(t, size, seed, size-777, 777)) || aws.ToString(out.ETag) != `"`+info.ETag+`"` {
			t.Fatal("S3 suffix range differs")
		}
	})

	t.Run("HeadListAndCopy", func(t *testing.T) {
		hd, err := b.GetObjectDetailedMeta("big/synth.bin")
		if err != nil || hd.Get("Content-Length") != strconv.Itoa(size) || hd.Get("X-Oss-Hash-Crc64ecma") != wantCRC {
			t.Fatalf("HEAD %v %v", err, hd)
		}
		res, err := b.ListObjectsV2(oss.Prefix("big/"))
		if err != nil || len(res.Objects) != 1 || res.Objects[0].Size != size || res.Objects[0].Type != "Multipart" || res.Objects[0].ETag != `"`+info.ETag+`"` {
			t.Fatalf("list %v %+v", err, res.Objects)
		}
		if _, err := b.CopyObject("big/synth.bin", "big/copy.bin"); err != nil {
			t.Fatal(err)
		}
		ci, data, ok := tb.srv.Object(testBucket, "big/copy.bin")
		if !ok || data != nil || !ci.Synthetic || ci.Size != size || ci.ETag != info.ETag || ci.CRC64 != info.CRC64 {
			t.Fatalf("copy %+v (%d bytes held)", ci, len(data))
		}
		if got := getAll(t, b, "big/copy.bin", oss.Range(size-10, size-1)); !bytes.Equal(got, syntheticBytes(t, size, seed, size-10, 10)) {
			t.Fatal("the copy serves different bytes")
		}
	})

	t.Run("CutBodyFaultAppliesToSyntheticContent", func(t *testing.T) {
		tb.srv.InjectFault(ossemu.Fault{Op: "GetObject", Key: "big/synth.bin", CutBodyAfter: 1 << 20, Times: 1})
		rc, err := b.GetObject("big/synth.bin")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err == nil || len(got) != 1<<20 || !bytes.Equal(got, syntheticBytes(t, size, seed, 0, 1<<20)) {
			t.Fatalf("cut read: %d bytes, err %v", len(got), err)
		}
	})

	t.Run("PutSyntheticSendsACompleteMultipartUploadEvent", func(t *testing.T) {
		if err := tb.srv.WaitWebhooks(context.Background()); err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.bodies) == 0 {
			t.Fatal("no event")
		}
		doc, err := ossevent.Parse(rec.bodies[0])
		if err != nil {
			t.Fatal(err)
		}
		ev := doc.Events[0]
		if ev.EventName != "ObjectCreated:CompleteMultipartUpload" || ev.OSS.Object.Key != "big/synth.bin" || ev.OSS.Object.Size != size || ev.OSS.Object.ETag != info.ETag {
			t.Fatalf("event %+v", ev)
		}
	})
}

// TestLargeObjectsStream serves a multi-GiB synthetic object and a large
// stored one and checks that neither costs memory in proportion to its size.
func TestLargeObjectsStream(t *testing.T) {
	const big = 5<<30 + 17 // past OSS's 5 GiB single-PUT limit
	tb := setup(t)
	info, err := tb.srv.PutSynthetic(testBucket, "huge", big, 99, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := tb.bucket(t)
	hd, err := b.GetObjectDetailedMeta("huge")
	if err != nil || hd.Get("Content-Length") != strconv.Itoa(big) || hd.Get("X-Oss-Hash-Crc64ecma") != strconv.FormatUint(info.CRC64, 10) {
		t.Fatalf("HEAD %v %v", err, hd)
	}
	// The tail of a 5 GiB object comes without generating what precedes it.
	if got := getAll(t, b, "huge", oss.Range(big-4096, big-1)); !bytes.Equal(got, syntheticBytes(t, big, 99, big-4096, 4096)) {
		t.Fatal("tail range differs")
	}

	stored := bytes.Repeat([]byte("0123456789abcdef"), 8<<20) // 128 MiB
	if _, err := tb.srv.PutObject(testBucket, "stored", stored, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		size int64
	}{{"huge", 1 << 30}, {"stored", int64(len(stored))}} {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rc, err := b.GetObject(tc.key, oss.Range(0, tc.size-1), oss.AcceptEncoding("identity"))
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		runtime.ReadMemStats(&after)
		if err != nil || n != tc.size {
			t.Fatalf("%s: read %d, %v", tc.key, n, err)
		}
		t.Logf("%s: %d bytes served, %d allocated", tc.key, n, after.TotalAlloc-before.TotalAlloc)
		// Client and server share this process: together they may allocate
		// buffers, never the object (a GiB costs about 300 KB).
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
			t.Fatalf("%s: serving %d bytes allocated %d bytes", tc.key, tc.size, alloc)
		}
	}
}
