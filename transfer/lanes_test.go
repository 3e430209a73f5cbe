package transfer_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer"
)

// TestLaneOf pins which jobs go to the large lane: the parts of giant
// objects and copies of objects of the queue's LargeObject size or more.
// The rest, and every job that does not know its object's size, go to the
// small lane.
func TestLaneOf(t *testing.T) {
	t.Parallel()
	q := openQueue(t, transfer.QueueConfig{LargeObject: 16 * transfer.MiB})
	sized := func(kind string, size int64) transfer.Job {
		j := job("t", "k", "E")
		j.Kind, j.Size = kind, size
		return j
	}
	for _, c := range []struct {
		job  transfer.Job
		want transfer.Lane
	}{
		{sized(transfer.KindConverge, 0), transfer.SmallLane},  // size unknown
		{sized(transfer.KindConverge, 10), transfer.SmallLane}, // small
		{sized(transfer.KindConverge, 16*int64(transfer.MiB)-1), transfer.SmallLane},
		{sized(transfer.KindConverge, 16*int64(transfer.MiB)), transfer.LargeLane},
		{sized(transfer.KindConverge, 5*int64(transfer.GiB)), transfer.LargeLane},
		{sized(transfer.KindPart, 0), transfer.LargeLane},
		{sized(transfer.KindRemove, 5*int64(transfer.GiB)), transfer.SmallLane}, // a delete moves no bytes
		{sized(transfer.KindReconcile, 0), transfer.SmallLane},
	} {
		if got := q.LaneOf(c.job); got != c.want {
			t.Errorf("%s job of %d bytes: lane %s, want %s", c.job.Kind, c.job.Size, got.Name, c.want.Name)
		}
	}
	// The default threshold is the multipart threshold's.
	d := openQueue(t, transfer.QueueConfig{})
	if got := d.LaneOf(sized(transfer.KindConverge, int64(transfer.DefaultMultipartThreshold))); got != transfer.LargeLane {
		t.Errorf("default LargeObject: a %s object goes to the %s lane", transfer.DefaultMultipartThreshold, got.Name)
	}
}

// TestSmallObjectsDoNotWaitBehindLargeOnes: with every large-lane worker
// held in a large object's GET, small objects queued after them are still
// copied, and the large ones finish when their GETs are let go. With one
// lane, the large jobs (queued first) would hold every worker and the small
// ones would wait for them.
func TestSmallObjectsDoNotWaitBehindLargeOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := startWorkers(t, transfer.QueueConfig{LargeObject: 1024}, bedOptions{largeConcurrency: 2})
	release := make(chan struct{})
	var held atomic.Int32
	b.src.getWait = func(ctx context.Context, key string) error {
		if !strings.HasPrefix(key, "big") {
			return nil
		}
		held.Add(1)
		defer held.Add(-1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var jobs []transfer.Job
	for i := range 4 {
		key := fmt.Sprintf("big-%d", i)
		b.src.put(key, randomBytes(4096, uint64(i)), nil)
		j := job("t", key, "")
		j.Size = 4096 // as the event says
		jobs = append(jobs, j)
	}
	if _, err := b.q.Publish(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, waitLimit, "both large-lane workers in a GET", func() bool { return held.Load() == 2 })

	jobs = jobs[:0]
	small := map[string][]byte{}
	for i := range 20 {
		key := fmt.Sprintf("small-%d", i)
		small[key] = randomBytes(100, uint64(100+i))
		b.src.put(key, small[key], nil)
		j := job("t", key, "")
		j.Size = 100
		jobs = append(jobs, j)
	}
	if _, err := b.q.Publish(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, waitLimit, "the small objects copied while the large ones are held", func() bool {
		for key, data := range small {
			if got, ok := b.dst.object("copy/" + key); !ok || !bytes.Equal(got, data) {
				return false
			}
		}
		return true
	})
	if _, ok := b.dst.object("copy/big-0"); ok {
		t.Fatal("a large object was copied while its GET was held")
	}
	close(release)
	testkit.WaitFor(t, waitLimit, "the large objects", func() bool {
		for i := range 4 {
			if _, ok := b.dst.object(fmt.Sprintf("copy/big-%d", i)); !ok {
				return false
			}
		}
		return true
	})
	testkit.WaitFor(t, waitLimit, "an empty queue", func() bool { return depth(t, b.q) == 0 })
}

// TestSmallObjectsHaveAShareOfTheMemoryBudget: a multipart copy whose
// parts fill the part budget, with one more part waiting for it, does not
// hold up a small object read whole (the budget's semaphore is first come,
// first served: with one pool the small object would queue behind the
// waiting part).
func TestSmallObjectsHaveAShareOfTheMemoryBudget(t *testing.T) {
	t.Parallel()
	src, dst := newMemSource(), &memBytesDest{memDest: newMemDest()}
	release := make(chan struct{})
	var gets atomic.Int32
	src.getWait = func(ctx context.Context, key string) error {
		if key != "big" {
			return nil
		}
		gets.Add(1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	src.put("big", randomBytes(15*int(transfer.MiB), 1), nil)
	small := randomBytes(100_000, 2)
	src.put("small", small, nil)
	// 8 MiB: 2 MiB for small objects, 6 MiB for parts: one 5 MiB part at
	// a time, and the second waits.
	c := transfer.NewCopier(8*transfer.MiB, nil, "w")
	cfg := transfer.CopyConfig{PartSize: 5 * transfer.MiB, MultipartThreshold: 5 * transfer.MiB, PartsInFlight: 3}
	bigDone := make(chan error, 1)
	go func() { _, err := copyKey(c, src, dst, "big", "big", cfg); bigDone <- err }()
	testkit.WaitFor(t, waitLimit, "the first part in its GET", func() bool { return gets.Load() == 1 })
	time.Sleep(100 * time.Millisecond) // the copy's loop goes on to the next part, which waits for the budget
	smallDone := make(chan error, 1)
	go func() { _, err := copyKey(c, src, dst, "small", "small", cfg); smallDone <- err }()
	select {
	case err := <-smallDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("the small object waited for the parts' budget")
	}
	if got, ok := dst.object("small"); !ok || !bytes.Equal(got, small) {
		t.Fatal("small object not copied whole")
	}
	close(release)
	if err := <-bigDone; err != nil {
		t.Fatal(err)
	}
}
