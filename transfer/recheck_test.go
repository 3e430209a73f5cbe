package transfer_test

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// TestAWriteOvertakenByANewerEventIsCorrected: two jobs for one key run at
// once, the older one's write lands last; the look at the source after
// the write puts the key back in the queue, and the destination ends up
// as the source is. (Found by the chaos soak: a delete that overtook a
// copy in flight left the deleted object in S3.)
func TestAWriteOvertakenByANewerEventIsCorrected(t *testing.T) {
	t.Parallel()
	// holdFirstPut makes the first PUT of the bed wait until release is
	// closed, after its bytes were read from the source.
	holdFirstPut := func(b *workerBed) (held <-chan struct{}, release chan struct{}) {
		h, r := make(chan struct{}), make(chan struct{})
		var n atomic.Int32
		b.dst.putErr = func(string) error {
			if n.Add(1) == 1 {
				close(h)
				<-r
			}
			return nil
		}
		return h, r
	}
	deletes := transfer.TaskOptions{Deletes: transfer.DeletesPropagate}

	t.Run("ADeleteThatOvertookTheCopy", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{}, bedOptions{task: deletes})
		b.src.put("k", randomBytes(2<<20, 51), nil) // a streamed PUT, not a create-only one
		held, release := holdFirstPut(b)
		publish(t, b.q, job("t", "k", ""))
		<-held
		b.src.del("k")
		publish(t, b.q, removeJob("k"))
		testkit.WaitFor(t, waitLimit, "the delete's job, with no copy yet to delete", func() bool { return b.count(metrics.CopySourceGone) == 1 })
		close(release)
		testkit.WaitFor(t, waitLimit, "the late copy to be deleted", func() bool { return b.count(metrics.CopyDeleted) == 1 })
		if _, ok := b.dst.object("copy/k"); ok {
			t.Fatal("the destination still holds an object the source deleted")
		}
		testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
	})

	t.Run("AnOverwriteThatOvertookTheCopy", func(t *testing.T) {
		t.Parallel()
		b := startWorkers(t, transfer.QueueConfig{})
		v1, v2 := randomBytes(2<<20, 52), randomBytes(2<<20, 53)
		b.src.put("k", v1, nil)
		held, release := holdFirstPut(b)
		publish(t, b.q, job("t", "k", "v1"))
		<-held
		b.src.put("k", v2, nil)
		publish(t, b.q, job("t", "k", "v2"))
		testkit.WaitFor(t, waitLimit, "the newer version's copy", func() bool { got, _ := b.dst.object("copy/k"); return bytes.Equal(got, v2) })
		close(release)
		testkit.WaitFor(t, waitLimit, "the older version's late write", func() bool { return b.count(metrics.CopyCopied) >= 2 })
		testkit.WaitFor(t, waitLimit, "the destination to hold the newer version again", func() bool {
			got, _ := b.dst.object("copy/k")
			return bytes.Equal(got, v2) && depth(t, b.q) == 0
		})
		time.Sleep(50 * time.Millisecond)
		if got, _ := b.dst.object("copy/k"); !bytes.Equal(got, v2) {
			t.Fatal("the destination holds the older version")
		}
	})
}
