package transfer

// The bandwidth cap of a task: a token bucket over the bytes read from
// its source (rclone's --bwlimit, per process).

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/time/rate"
)

// bandwidth paces reads to a rate in bytes per second. Each read is paid
// for after it returns, so a read never waits for tokens it may not use;
// reads are cut to the bucket's burst (a tenth of a second of the rate,
// 16 KiB to 8 MiB), so the pace stays even.
type bandwidth struct {
	lim    *rate.Limiter
	burst  int
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	waited func(time.Duration) // hears every pause; may be nil
}

func newBandwidth(bytesPerSec int64, waited func(time.Duration)) *bandwidth {
	burst := int(min(max(bytesPerSec/10, 16<<10), 8<<20))
	return &bandwidth{lim: rate.NewLimiter(rate.Limit(bytesPerSec), burst), burst: burst,
		now: time.Now, sleep: pause, waited: waited}
}

// take pays for n bytes, waiting as long as the rate says.
func (b *bandwidth) take(ctx context.Context, n int) error {
	now := b.now()
	r := b.lim.ReserveN(now, n)
	if !r.OK() {
		return fmt.Errorf("bandwidth: %d bytes is more than the burst of %d", n, b.burst)
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if b.waited != nil {
		b.waited(d)
	}
	return b.sleep(ctx, d)
}

// wrap returns rc read at the rate.
func (b *bandwidth) wrap(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	return &pacedBody{ReadCloser: rc, b: b, ctx: ctx}
}

type pacedBody struct {
	io.ReadCloser
	b   *bandwidth
	ctx context.Context
}

func (p *pacedBody) Read(buf []byte) (int, error) {
	if len(buf) > p.b.burst {
		buf = buf[:p.b.burst]
	}
	n, err := p.ReadCloser.Read(buf)
	if n > 0 {
		if werr := p.b.take(p.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// pause is sleepCtx that says whether ctx ended it.
func pause(ctx context.Context, d time.Duration) error {
	sleepCtx(ctx, d)
	return ctx.Err()
}
