package ossemu

import (
	"context"
	"sync"
	"time"
)

// Fault is a failure injected on demand. It matches requests by operation,
// bucket and key; an empty field matches anything.
type Fault struct {
	// Op is an operation name as Requests reports it: "PutObject",
	// "GetObject", "HeadObject", "GetObjectMeta", "DeleteObject",
	// "ListObjectsV2", "InitiateMultipartUpload", "UploadPart",
	// "CompleteMultipartUpload", "AbortMultipartUpload", ...; "" matches any.
	Op     string
	Bucket string
	Key    string

	// Status, if non-zero, answers this status with an OSS error document
	// whose code is Code (default "InternalError") instead of serving.
	Status int
	Code   string

	// Latency is slept before serving (or failing); a client that gives up
	// meanwhile ends the request.
	Latency time.Duration

	// CutBodyAfter, if > 0, applies to GetObject only: the response headers
	// announce the full Content-Length, CutBodyAfter body bytes are sent and
	// the connection is aborted, as a network failure mid-download would.
	CutBodyAfter int64

	// Times is how many matching requests the fault applies to; 0 means
	// every one until ClearFaults.
	Times int
}

// InjectFault adds f. Several faults may match one request: their
// latencies add up, and the first matching Status and CutBodyAfter (in
// injection order) apply. Each matching fault with an effect on the
// request uses up one of its Times.
func (s *Server) InjectFault(f Fault) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.list = append(s.faults.list, &activeFault{Fault: f, remaining: f.Times})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.list = nil
}

type faultSet struct {
	mu   sync.Mutex
	list []*activeFault
}

type activeFault struct {
	Fault
	remaining int
}

// faultEffect is what the faults matching one request add up to.
type faultEffect struct {
	status       int
	code         string
	cutBodyAfter int64
}

// take applies the faults matching a request: it sleeps their latency
// (returning ctx's error if the client leaves) and returns the rest.
func (fs *faultSet) take(ctx context.Context, op, bucket, key string) (faultEffect, error) {
	var eff faultEffect
	var latency time.Duration
	fs.mu.Lock()
	kept := fs.list[:0]
	for _, f := range fs.list {
		matches := (f.Op == "" || f.Op == op) && (f.Bucket == "" || f.Bucket == bucket) && (f.Key == "" || f.Key == key)
		cut := f.CutBodyAfter > 0 && op == "GetObject"
		if !matches || (f.Status == 0 && f.Latency <= 0 && !cut) {
			kept = append(kept, f)
			continue
		}
		latency += f.Latency
		if f.Status != 0 && eff.status == 0 {
			eff.status, eff.code = f.Status, f.Code
			if eff.code == "" {
				eff.code = "InternalError"
			}
		}
		if cut && eff.cutBodyAfter == 0 {
			eff.cutBodyAfter = f.CutBodyAfter
		}
		if f.Times > 0 {
			f.remaining--
			if f.remaining <= 0 {
				continue
			}
		}
		kept = append(kept, f)
	}
	clear(fs.list[len(kept):])
	fs.list = kept
	fs.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return eff, ctx.Err()
		}
	}
	return eff, nil
}
