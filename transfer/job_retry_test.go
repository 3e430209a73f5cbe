package transfer_test

import (
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/transfer"
)

// TestRetryIsOneJobPerFailedDelivery: the job a failed attempt queues
// counts the attempt, carries on the job's line, and is named by the
// delivery that failed, so that the same delivery failing twice (its ack
// lost) queues one retry, and two deliveries two.
func TestRetryIsOneJobPerFailedDelivery(t *testing.T) {
	t.Parallel()
	j := transfer.Job{Task: "t", Kind: transfer.KindConverge, Nonce: "reconcile-r1-7", Attempts: 1, ObjectArgs: transfer.ObjectArgs{Bucket: "b", Key: "k", ETag: "E"}}
	at := time.Now().Add(time.Minute)
	r := j.Retry(42, at)
	// A retry with no sequence known gets a nonce of its own each time.
	unknown1, unknown2 := j.Retry(0, at), j.Retry(0, at)
	switch {
	case r.Attempts != 2 || !r.NotBefore.Equal(at) || r.Parent != "reconcile-r1-7" || r.Lineage() != j.Lineage():
		t.Fatalf("retry %+v", r)
	case r.MsgID() == j.MsgID():
		t.Fatal("the retry has the failed job's id: it would be dropped as a duplicate")
	case j.Retry(42, at).MsgID() != r.MsgID():
		t.Fatal("the same delivery failing twice queues two retries")
	case j.Retry(43, at).MsgID() == r.MsgID() || unknown1.MsgID() == unknown2.MsgID():
		t.Fatal("two failed deliveries share one retry id")
	}
}
