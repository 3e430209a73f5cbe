package transfer

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestEncodeJobIsJSONMarshal: the hand-written encoder of the hot path
// writes every kind of job byte for byte as encoding/json does, so the job
// stream's wire format (TestJobWireFormat) is the one every replica, old
// or new, reads.
func TestEncodeJobIsJSONMarshal(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 5, 8, 0, 0, 123456789, time.UTC)
	east := time.FixedZone("CST", 8*3600)
	for name, j := range map[string]Job{
		"zero":    {},
		"webhook": {Task: "photos", Kind: KindConverge, Origin: "oss_webhook", EventTime: at, QueuedAt: at.Add(time.Millisecond), ObjectArgs: ObjectArgs{Bucket: "src", Key: "a/b.jpg", ETag: "5EB63BBBE01EEED093CB22BB8F5ACDC3", Size: 1024, Event: "ObjectCreated:PutObject"}},
		"remove":  {Task: "t", Kind: KindRemove, EventTime: at.In(east), ObjectArgs: ObjectArgs{Bucket: "b", Key: "gone", Event: "ObjectRemoved:DeleteObject"}, Waits: 2},
		"part": {Task: "t", Kind: KindPart, ObjectArgs: ObjectArgs{Bucket: "b", Key: "giant", ETag: "E-9", Size: -1, Force: true},
			PartArgs: PartArgs{UploadID: "up/1", Part: -7, Redo: 3}, NotBefore: at.Add(time.Hour), Attempts: 4, Nonce: "retry-9", Parent: "reconcile-r1"},
		"reconcile": {Task: "t", Kind: KindReconcile, ObjectArgs: ObjectArgs{Bucket: "b", Key: "reconcile:r1:3"}, ShardArgs: ShardArgs{Shard: `{"run":"r1","n":3}`}, Nonce: "reconcile-r1-3"},
		"escapes":   {Task: "t<&>", Kind: "\"\\\b\f\n\r\t\x00\x1f\x7f", ObjectArgs: ObjectArgs{Bucket: "b", Key: "k\u2028\u2029é日本\xff\xfe\xc3(", ETag: "\"quoted\""}},
		"offset":    {Task: "t", Kind: KindConverge, EventTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -(3*3600+30*60)))},
		"nanos":     {Task: "t", Kind: KindConverge, QueuedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), NotBefore: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	} {
		compareWithJSON(t, name, j)
	}
}

// TestEncodeJobRefusesWhatJSONRefuses: a time encoding/json cannot write
// is the same error, not a different document.
func TestEncodeJobRefusesWhatJSONRefuses(t *testing.T) {
	t.Parallel()
	for name, j := range map[string]Job{
		"year 10000":     {Task: "t", EventTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"year -1":        {Task: "t", QueuedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		"offset 24h":     {Task: "t", NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))},
		"offset seconds": {Task: "t", EventTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600+7))},
	} {
		compareWithJSON(t, name, j)
	}
}

// FuzzEncodeJob holds the encoder to encoding/json for any strings (any
// bytes, UTF-8 or not), numbers and times.
func FuzzEncodeJob(f *testing.F) {
	f.Add("photos", "converge", "a/b.jpg", "E1", "<&>\u2028\xff", int64(1024), int32(3), int64(1764921600), int64(5), 28800, true)
	f.Add("", "", "", "", "", int64(0), int32(0), int64(0), int64(0), 0, false)
	f.Add("t", "part", "\x00\n\"\\", "", "é", int64(-1), int32(-9), int64(-62135596800), int64(999999999), -12600, false)
	f.Add("t", "remove", "k", "", "", int64(1), int32(1), int64(253402300800), int64(1), 86400, false)
	f.Fuzz(func(t *testing.T, task, kind, key, etag, other string, size int64, part int32, sec, nsec int64, offset int, force bool) {
		at := time.Unix(sec, nsec).In(time.FixedZone("z", offset))
		j := Job{Task: task, Kind: kind, Origin: other, EventTime: at, QueuedAt: at.Add(time.Duration(nsec)),
			ObjectArgs: ObjectArgs{Bucket: other, Key: key, ETag: etag, Size: size, Event: kind, Force: force},
			PartArgs:   PartArgs{UploadID: etag, Part: part, Redo: int(part) / 2},
			ShardArgs:  ShardArgs{Shard: other}, NotBefore: at.UTC(), Waits: int(size), Attempts: int(part), Nonce: key, Parent: task}
		compareWithJSON(t, "fuzz", j)
	})
}

func compareWithJSON(t *testing.T, name string, j Job) {
	t.Helper()
	want, wantErr := json.Marshal(j)
	got, err := encodeJob(&j)
	if (err != nil) != (wantErr != nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("%s: error %v, encoding/json's %v", name, err, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: encoded as\n%s\nencoding/json writes\n%s", name, got, want)
	}
}

// BenchmarkEncodeJob compares the hot path's encoder with encoding/json on
// a webhook's job.
func BenchmarkEncodeJob(b *testing.B) {
	at := time.Date(2026, 12, 5, 8, 0, 0, 123456789, time.UTC)
	j := Job{Task: "photos", Kind: KindConverge, Origin: "oss_webhook", EventTime: at, QueuedAt: at.Add(time.Millisecond),
		ObjectArgs: ObjectArgs{Bucket: "src-ingest", Key: "ingest/oss2s3-r1-c64/w012/000000123456", ETag: "5EB63BBBE01EEED093CB22BB8F5ACDC3", Size: 1024, Event: "ObjectCreated:PutObject"}}
	b.Run("encodeJob", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeJob(&j); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&j); err != nil {
				b.Fatal(err)
			}
		}
	})
}
