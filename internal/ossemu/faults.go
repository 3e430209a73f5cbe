package ossemu

import (
	"context"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/internal/faultset"
)

// Fault is a failure injected on demand. It matches requests by API,
// operation, bucket, key and Range header; an empty field matches anything.
type Fault struct {
	// Op is an operation name as Requests reports it: "PutObject",
	// "GetObject", "HeadObject", "GetObjectMeta", "DeleteObject",
	// "ListObjectsV2", "InitiateMultipartUpload", "UploadPart",
	// "CompleteMultipartUpload", "AbortMultipartUpload", ...; "" matches any.
	// Requests through the S3 API carry the same names.
	Op     string
	Bucket string
	Key    string

	// API restricts the fault to requests through one API: "OSS" or "S3";
	// "" matches both.
	API string

	// Range, if set, matches only requests whose Range header is exactly
	// this value (surrounding spaces ignored), e.g. "bytes=0-1048575".
	Range string

	// Skip lets the first Skip matching requests pass untouched: they
	// neither run Before nor use up Times. With Skip: 2, Times: 1 only the
	// third matching request fails.
	Skip int

	// Before, if set, is called once for each request the fault applies to,
	// before its other effects (latency, status, cut body) and before the
	// request is served, on the request's goroutine with no emulator lock
	// held: it may call PutObject, DeleteObject, InjectFault and so on, e.g.
	// to overwrite the object in the middle of a multi-range download.
	Before func()

	// Status, if non-zero, answers this status with an error document (OSS
	// or S3 format, as the request's API) whose code is Code (default
	// "InternalError") instead of serving.
	Status int
	Code   string

	// Latency is slept before serving (or failing); a client that gives up
	// meanwhile ends the request.
	Latency time.Duration

	// CutBodyAfter, if > 0, applies to GetObject only: the response headers
	// announce the full Content-Length, CutBodyAfter body bytes are sent and
	// the connection is aborted, as a network failure mid-download would.
	CutBodyAfter int64

	// OutOfOrder, for listings (ListObjects, ListObjectsV2, either API),
	// swaps the first two entries of the page it answers, as a faulty
	// server or proxy would: a client that trusts the order skips keys.
	OutOfOrder bool

	// Times is how many matching requests (after Skip) the fault applies
	// to; 0 means every one until ClearFaults.
	Times int
}

// InjectFault adds f. Several faults may match one request: their Before
// hooks run in injection order, their latencies add up, and the first
// matching Status and CutBodyAfter (in injection order) apply. Each
// matching fault with an effect on the request (Before, Status, Latency,
// or CutBodyAfter on a GetObject) uses up one of its Times, once its Skip
// is used up.
func (s *Server) InjectFault(f Fault) { s.faults.Add(f, f.Skip, f.Times) }

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// faultTarget is what a fault is matched against.
type faultTarget struct {
	api, op, bucket, key, rangeHeader string
}

func (f *Fault) matches(t faultTarget) bool {
	return (f.API == "" || strings.EqualFold(f.API, t.api)) &&
		(f.Op == "" || f.Op == t.op) &&
		(f.Bucket == "" || f.Bucket == t.bucket) &&
		(f.Key == "" || f.Key == t.key) &&
		(f.Range == "" || strings.TrimSpace(f.Range) == strings.TrimSpace(t.rangeHeader))
}

// faultEffect is what the faults matching one request add up to.
type faultEffect struct {
	faultset.Outcome
	cutBodyAfter int64
	outOfOrder   bool
}

// takeFaults applies the faults matching a request: it runs their Before
// hooks, sleeps their latency (returning ctx's error if the client leaves)
// and returns the rest.
func takeFaults(ctx context.Context, fs *faultset.Set[Fault], t faultTarget) (faultEffect, error) {
	var eff faultEffect
	var before []func()
	cuts := func(f *Fault) bool { return f.CutBodyAfter > 0 && t.op == "GetObject" }
	fs.Take(func(f *Fault) bool {
		return f.matches(t) && (f.Status != 0 || f.Latency > 0 || cuts(f) || f.Before != nil || f.OutOfOrder)
	}, func(f *Fault) {
		if f.Before != nil {
			before = append(before, f.Before)
		}
		eff.Add(f.Status, f.Code, f.Latency)
		eff.outOfOrder = eff.outOfOrder || f.OutOfOrder
		if cuts(f) && eff.cutBodyAfter == 0 {
			eff.cutBodyAfter = f.CutBodyAfter
		}
	})
	for _, fn := range before {
		fn()
	}
	return eff, eff.Wait(ctx)
}
