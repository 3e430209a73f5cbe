package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

// sizeRange is a flag value: one size ("10KiB") or a range
// ("20MiB-40MiB"), sizes written as the oss2s3 configuration writes them.
type sizeRange struct{ lo, hi int64 }

func (r *sizeRange) Set(s string) error {
	a, b, isRange := strings.Cut(s, "-")
	lo, err := parseSize(a)
	if err != nil {
		return err
	}
	hi := lo
	if isRange {
		if hi, err = parseSize(b); err != nil {
			return err
		}
	}
	if lo < 0 || hi < lo {
		return fmt.Errorf("%q: want a size or low-high with low <= high", s)
	}
	*r = sizeRange{lo, hi}
	return nil
}

func (r *sizeRange) String() string {
	if r.lo == r.hi {
		return formatSize(r.lo)
	}
	return formatSize(r.lo) + "-" + formatSize(r.hi)
}

// multipartVariants is how many distinct multipart objects (size, content)
// the load spreads over the range: the emulator computes a synthetic
// object's CRC-64 once per size and seed (tens of ms for 30 MiB), which
// 100 new objects a second could not afford.
const multipartVariants = 8

// variants spreads n sizes evenly over the range.
func (r sizeRange) variants(n int) []int64 {
	if r.lo == r.hi || n < 2 {
		return []int64{r.lo}
	}
	out := make([]int64, n)
	for i := range n {
		out[i] = r.lo + (r.hi-r.lo)*int64(i)/int64(n-1)
	}
	return out
}

// lagEvent is one change the pacer asks a sender to make.
type lagEvent struct {
	class int
	size  int64
	seed  uint64 // multipart: the synthetic content's seed
}

// lagLoad is what a step's load generator did.
type lagLoad struct {
	start, end time.Time // of the measured window (after the warm-up)
	loadEnd    time.Time // the last event was sent
	accepted   int       // events the gateway took (202, queued=1), warm-up included
	failed     int
	reasons    map[string]int
	late       int // events the pacer could not start on time (every sender busy)
}

// loadStep writes and announces objects at rate a second for warmup then
// duration: a pacer gives each event its class and size at its planned
// time, senders write the object to the emulator, note the event time and
// post the signed single-record document. window is called at the edges
// of the measured time (after the warm-up, at the end).
func (b *lagBed) loadStep(ctx context.Context, st lagStep, tr *listTracker, post poster, window func()) (*lagLoad, error) {
	o := b.opts
	events := make(chan lagEvent, o.senders)
	var mu sync.Mutex
	res := &lagLoad{reasons: map[string]int{}}
	var wg sync.WaitGroup
	for range o.senders {
		wg.Go(func() {
			for ev := range events {
				reason := b.sendOne(ctx, st, tr, post, ev)
				mu.Lock()
				if reason == "" {
					res.accepted++
				} else {
					res.failed++
					res.reasons[reason]++
				}
				mu.Unlock()
			}
		})
	}

	rng := rand.New(rand.NewPCG(o.seed, uint64(st.index)))
	period := time.Second / time.Duration(st.rate)
	start := time.Now()
	res.start = start.Add(o.warmup)
	stop := res.start.Add(o.duration)
	marked := false
	for i := 0; ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * period)
		if !marked && !at.Before(res.start) {
			window()
			marked = true
		}
		if !at.Before(stop) {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		} else if d < -period {
			res.late++
		}
		ev := lagEvent{class: classSmall}
		if st.share > 0 && rng.Float64() < st.share {
			v := rng.IntN(len(b.multipartSizes))
			ev = lagEvent{class: classMultipart, size: b.multipartSizes[v], seed: 1 << 40 * uint64(v+1)}
		} else {
			ev.size = o.smallSize.lo + rng.Int64N(o.smallSize.hi-o.smallSize.lo+1)
		}
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	}
	if !marked {
		window()
	}
	res.end = time.Now()
	window()
	close(events)
	wg.Wait()
	res.loadEnd = time.Now()
	return res, ctx.Err()
}

// sendOne writes one object to the source and posts its event; it returns
// "" if the gateway accepted it, else why not.
func (b *lagBed) sendOne(ctx context.Context, st lagStep, tr *listTracker, post poster, ev lagEvent) string {
	seq := tr.next(ev.class)
	key := lagKey(st.prefix(), ev.class, seq)
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	var info ossemu.ObjectInfo
	var err error
	name := "ObjectCreated:PutObject"
	if ev.class == classMultipart {
		info, err = b.emu.PutSynthetic(lagSrcBucket, key, ev.size, ev.seed, h)
		name = "ObjectCreated:CompleteMultipartUpload"
	} else {
		off := int64(seq*4099) % int64(len(b.pool)-int(ev.size)+1)
		info, err = b.emu.PutObject(lagSrcBucket, key, b.pool[off:off+ev.size], h)
	}
	if err != nil {
		tr.rejected(ev.class, seq)
		return "emulator: " + err.Error()
	}
	at := time.Now()
	tr.sent(ev.class, seq, at, info.Size)
	body, err := json.Marshal(ossevent.Document{Events: []ossevent.Record{
		ossevent.NewRecord(name, ossRegion, lagSrcBucket, key, info.ETag, info.Size, "application/octet-stream", at)}})
	if err != nil {
		tr.rejected(ev.class, seq)
		return "encode: " + err.Error()
	}
	reason := post(ctx, body, signature.Sign(webhookSecret, time.Now(), body))
	if reason == "" {
		tr.accepted(ev.class, seq, time.Now())
	} else {
		tr.rejected(ev.class, seq)
		if ctx.Err() != nil {
			return "cancelled"
		}
	}
	return reason
}
