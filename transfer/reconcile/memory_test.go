package reconcile_test

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// heapProbe wraps a Lister and, every few pages, collects the garbage and
// reads the live heap: what the diff holds at that point, whatever the
// timing. Its peak is the most the run ever held.
type heapProbe struct {
	reconcile.Lister
	every int

	mu    sync.Mutex
	pages int
	peak  uint64
}

func (p *heapProbe) List(ctx context.Context, q reconcile.Query, page func([]reconcile.Entry) error) error {
	return p.Lister.List(ctx, q, func(es []reconcile.Entry) error {
		p.mu.Lock()
		p.pages++
		if p.pages%p.every == 0 {
			p.peak = max(p.peak, liveHeap())
		}
		p.mu.Unlock()
		return page(es)
	})
}

// liveHeap is the heap the last collection found alive, after collecting.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// A diff holds a few pages per side, whatever the bucket's size: 500,000
// generated keys a side (pages of 250, one range) are diffed while the
// live heap, read after a collection every 50 pages of either side, grows
// by less than 6 MiB, about 12 bytes a key: less than the key set alone
// takes (a 12-byte key is 16 bytes of string data and a 16-byte header).
// The march measures +2.3 MiB. Replacing it with a hash join (the
// destination's entries in a map) measured +155 MiB, and keeping only the
// source keys in a slice while marching +18 MiB: both fail here.
//
// It is skipped with -race (slow there); .ci/run runs it on its own.
func TestDiffMemoryIsFlat(t *testing.T) {
	if raceEnabled {
		t.Skip("500,000 keys a side: run without -race (.ci/run does)")
	}
	const n = 500_000
	const bound = 6 << 20
	e := newEnv(t, 250)
	e.task.Destination.Prefix = ""
	e.emu.SetGenerated("src", ossemu.Generated{Count: n})
	e.emu.SetGenerated("dst", ossemu.Generated{Count: n, Missing: 1, Different: 1, Extra: 1})
	d, _ := e.diff(reconcile.Options{Mode: reconcile.ModeReport, Parallel: 1})
	d.Queue, d.Report = nil, nil
	src := &heapProbe{Lister: d.Src, every: 50}
	dst := &heapProbe{Lister: d.Dst, every: 50}
	d.Src, d.Dst = src, dst

	base := liveHeap()
	if err := d.Run(context.Background(), reconcile.Ranges(nil)); err != nil {
		t.Fatal(err)
	}
	c := d.Progress.Snapshot()
	if c.Listed != n || c.Missing != n/100 || c.Different != n/100 || c.Extraneous != n/100 {
		t.Fatalf("counts %+v", c)
	}
	if src.pages < 4*src.every || dst.pages < 4*dst.every {
		t.Fatalf("the heap was read too rarely: %d source pages, %d destination pages", src.pages, dst.pages)
	}
	peak := max(src.peak, dst.peak)
	grew := int64(peak) - int64(base)
	t.Logf("%d keys a side: live heap %.1f MiB before, peak %.1f MiB (+%.1f MiB)", n,
		float64(base)/(1<<20), float64(peak)/(1<<20), float64(grew)/(1<<20))
	if grew > bound {
		t.Fatalf("the diff's live heap grew by %.1f MiB; a march holds a few pages (< %d MiB)",
			float64(grew)/(1<<20), bound>>20)
	}
}
