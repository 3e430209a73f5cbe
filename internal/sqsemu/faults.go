package sqsemu

import (
	"context"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/internal/faultset"
)

// Fault is a failure injected on demand. It matches requests by operation
// and queue; an empty field matches anything.
//
// aws-sdk-go-v2 retries 5xx answers and throttling codes (3 attempts in
// all by default): a fault meant to reach the caller needs Times of at
// least the client's attempts, or a client with fewer retries.
type Fault struct {
	// Op is an operation name: "ReceiveMessage", "SendMessageBatch",
	// "DeleteMessageBatch", "ChangeMessageVisibility", ...; "" matches any.
	Op string
	// Queue is a queue name (not a URL); "" matches any. Requests that name
	// no queue (ListQueues) match only faults without Queue.
	Queue string

	// Skip lets the first Skip matching requests pass untouched.
	Skip int

	// Status, if non-zero, answers this HTTP status with an SQS error whose
	// code is Code (default "InternalError") instead of serving. Code may
	// be a modeled SQS error ("QueueDoesNotExist", "RequestThrottled",
	// "OverLimit", ...: the SDK then returns its typed error) or any code.
	Status int
	Code   string

	// Latency is slept before serving (or failing); a client that gives up
	// meanwhile ends the request.
	Latency time.Duration

	// FailEntries, if > 0, applies to the batch operations
	// (SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch)
	// when Status is 0: the first FailEntries entries of the batch fail
	// with a per-entry error {Code: "InternalError", SenderFault: false}
	// and are not performed (not sent, not deleted, visibility unchanged);
	// the others are served normally and the request succeeds.
	FailEntries int

	// Times is how many matching requests (after Skip) the fault applies
	// to; 0 means every one until ClearFaults.
	Times int
}

// InjectFault adds f. Several faults may match one request: their
// latencies add up, and the first matching Status and FailEntries (in
// injection order) apply. Each matching fault with an effect on the
// request uses up one of its Times, once its Skip is used up.
func (s *Server) InjectFault(f Fault) { s.faults.Add(f, f.Skip, f.Times) }

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

func isBatchOp(op string) bool { return strings.HasSuffix(op, "Batch") }

// faultEffect is what the faults matching one request add up to.
type faultEffect struct {
	faultset.Outcome
	failEntries int
}

// takeFaults applies the faults matching a request: it sleeps their
// latency (returning ctx's error if the client leaves) and returns the rest.
func takeFaults(ctx context.Context, fs *faultset.Set[Fault], op, queue string) (faultEffect, error) {
	var eff faultEffect
	failsEntries := func(f *Fault) bool { return f.FailEntries > 0 && f.Status == 0 && isBatchOp(op) }
	fs.Take(func(f *Fault) bool {
		return (f.Op == "" || f.Op == op) && (f.Queue == "" || f.Queue == queue) &&
			(f.Status != 0 || f.Latency > 0 || failsEntries(f))
	}, func(f *Fault) {
		eff.Add(f.Status, f.Code, f.Latency)
		if failsEntries(f) && eff.failEntries == 0 {
			eff.failEntries = f.FailEntries
		}
	})
	return eff, eff.Wait(ctx)
}

// injectedEntryError is the per-entry failure of FailEntries.
func injectedEntryError() *apiError {
	return &apiError{status: 500, code: "InternalError", message: "Injected fault.", sender: false}
}
