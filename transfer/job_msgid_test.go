package transfer

import (
	"testing"
	"time"
)

// TestMsgIDIsStable pins message ids: a job re-sent after an upgrade must
// get the id its first copy got, or the stream's duplicate window would
// not recognise it. The values were made by the first implementation
// (fmt.Fprintf of "%d:%s|" per field into sha256).
func TestMsgIDIsStable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		job  Job
		want string
	}{
		{Job{Task: "t", Kind: KindConverge, ObjectArgs: ObjectArgs{Bucket: "b", Key: "k", ETag: "E"}}, "6121e7375dc0bd457074d6b548fe8449"},
		{Job{Task: "photos", Kind: KindRemove, EventTime: time.Date(2026, 11, 25, 1, 2, 3, 456000000, time.UTC), ObjectArgs: ObjectArgs{Bucket: "src", Key: "a/b c.txt"}}, "3aa8b9816ee89fb0cd95eb40841569f5"},
		{Job{Task: "t", Kind: KindPart, ObjectArgs: ObjectArgs{Bucket: "b", Key: "giant", ETag: "ABC-12"}, PartArgs: PartArgs{UploadID: "up1", Part: 7}}, "9697342500a68d6765cd55246c64e752"},
		// Parent is not in the id: the part jobs of one upload queued for a
		// run's job and for a live event's are the same jobs.
		{Job{Task: "t", Kind: KindPart, Parent: "reconcile-r1", ObjectArgs: ObjectArgs{Bucket: "b", Key: "giant", ETag: "ABC-12"}, PartArgs: PartArgs{UploadID: "up1", Part: 7}}, "9697342500a68d6765cd55246c64e752"},
		{Job{Task: "t", Kind: KindConverge, Nonce: "n1", ObjectArgs: ObjectArgs{Bucket: "b", Key: "k", ETag: "E"}}, "3a7d4448c69e4406751d2471fcad7b25"},
	} {
		if got := tc.job.MsgID(); got != tc.want {
			t.Errorf("%+v: MsgID %s, want %s", tc.job, got, tc.want)
		}
	}
}
