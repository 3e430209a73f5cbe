package reconcile

// Checks: the pairs a listing cannot decide, HEADed (or read) by a few
// checkers beside the march.

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/crc64ecma"
)

const checkTimeout = 5 * time.Minute

// checker HEADs (or reads) the pairs the listing could not decide.
func (r *runner) checker(ctx context.Context) {
	defer r.wg.Done()
	for p := range r.checks {
		r.checkOne(ctx, p)
		r.pending.Done()
	}
}

func (r *runner) checkOne(ctx context.Context, p Entry2) {
	if r.err() != nil {
		return // the run failed: drain
	}
	v, why, err := r.check(ctx, p)
	if err != nil {
		r.prog.Errors.Add(1)
		r.log.Warn("reconcile check failed", "key", p.Src.Key, "err", err)
		r.report(ctx, ReportLine{Key: p.Src.Key, Result: "error", Error: err.Error(), Src: &p.Src, Dst: &p.Dst})
		return
	}
	if v == Different {
		_ = r.different(ctx, p.Src, p.Dst, why)
	}
}

func (r *runner) check(ctx context.Context, p Entry2) (Verdict, string, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	r.prog.Heads.Add(1)
	dstKey := r.Task.DestinationKey(p.Src.Key)
	head, err := r.Destination.Head(ctx, dstKey)
	if errors.Is(err, transfer.ErrNotFound) {
		return Different, "gone from the destination since the listing", nil
	}
	if err != nil {
		return 0, "", err
	}
	srcCRC := ""
	if head.Meta[transfer.MetaSourceCRC64] != "" && r.Source != nil && !IsPlainMD5(p.Src.ETag) {
		// Multipart source ETags can repeat for different content only
		// with the same part layout; the CRC-64 settles it.
		if info, err := r.Source.Head(ctx, p.Src.Key); err == nil && info.ETag == p.Src.ETag {
			srcCRC = crcString(info)
		}
	}
	v, why := Decide(p.Src, srcCRC, head, r.cmp)
	if v != NeedContent {
		return v, why, nil
	}
	return r.compareContent(ctx, p.Src, dstKey)
}

// compareContent reads both objects and compares their CRC-64s.
func (r *runner) compareContent(ctx context.Context, src Entry, dstKey string) (Verdict, string, error) {
	if r.Source == nil || r.DstOpener == nil {
		return 0, "", errors.New("verify: content needs readers for both sides")
	}
	sum := func(open func() (io.ReadCloser, error)) (uint64, int64, error) {
		rc, err := open()
		if err != nil {
			return 0, 0, err
		}
		defer rc.Close()
		h := crc64ecma.New()
		n, err := io.Copy(h, rc)
		return h.Sum64(), n, err
	}
	sc, sn, err := sum(func() (io.ReadCloser, error) { return r.Source.Get(ctx, src.Key, src.ETag, 0, -1) })
	if err != nil {
		return 0, "", err
	}
	dc, dn, err := sum(func() (io.ReadCloser, error) { return r.DstOpener.Open(ctx, dstKey) })
	if err != nil {
		return 0, "", err
	}
	if sc != dc || sn != dn {
		return Different, "content crc64", nil
	}
	return Same, "content crc64", nil
}
