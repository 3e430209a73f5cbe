package transfer

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// TestBandwidthPacesReads: 10 MiB read through a 1 MiB/s cap pause for
// 10 s less the bucket's burst (a tenth of a second), by a clock the test
// holds; every pause is heard; with the time moved on by the pauses the
// rate never exceeds the cap over any read.
func TestBandwidthPacesReads(t *testing.T) {
	t.Parallel()
	const size, rate = 10 << 20, 1 << 20
	var heard time.Duration
	b := newBandwidth(rate, func(d time.Duration) { heard += d })
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	start := now
	b.now = func() time.Time { return now }
	b.sleep = func(_ context.Context, d time.Duration) error { now = now.Add(d); return nil }

	body := b.wrap(context.Background(), io.NopCloser(bytes.NewReader(make([]byte, size))))
	buf := make([]byte, 4<<20) // more than the burst: reads are cut to it
	read := 0
	for {
		n, err := body.Read(buf)
		if n > b.burst {
			t.Fatalf("a read of %d bytes, more than the burst of %d", n, b.burst)
		}
		read += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if read != size {
		t.Fatalf("read %d bytes, want %d", read, size)
	}
	want := time.Duration(float64(size-b.burst) / rate * float64(time.Second))
	if took := now.Sub(start); took < want-time.Millisecond || took > want+time.Millisecond {
		t.Errorf("10 MiB at 1 MiB/s took %v by the clock, want %v", took, want)
	}
	if heard != now.Sub(start) {
		t.Errorf("pauses heard %v, slept %v", heard, now.Sub(start))
	}
}

// TestBandwidthEndsWithTheJob: a pause ends when the job's context does.
func TestBandwidthEndsWithTheJob(t *testing.T) {
	t.Parallel()
	b := newBandwidth(16<<10, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	body := b.wrap(ctx, io.NopCloser(bytes.NewReader(make([]byte, 1<<20))))
	_, err := io.ReadAll(body)
	if err != context.Canceled {
		t.Errorf("read under a cancelled job: %v, want context.Canceled", err)
	}
}
