package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer"
)

// bareShape is how a bare run publishes the jobs straight to JetStream.
type bareShape struct {
	publishers int // goroutines publishing at once
	// batch is how many jobs a publisher sends with PublishMsgAsync before
	// it awaits all their acks; 0: a plain publish loop, each job sent with
	// PublishMsg, its ack awaited before the next.
	batch int
}

func (s bareShape) String() string {
	if s.batch == 0 {
		return fmt.Sprintf("%d publisher(s), one PublishMsg at a time, each ack awaited", s.publishers)
	}
	return fmt.Sprintf("%d publisher(s) x async batches of %d, all acks awaited", s.publishers, s.batch)
}

// bareResult is one run of the bare JetStream publish loop.
type bareResult struct {
	shape   bareShape
	window  time.Duration
	jobs    int             // acknowledged in the window
	batches []time.Duration // sorted: publish-to-last-ack time of the batches that finished in the window
	acked   int             // every acknowledged job of the run
	cpu     time.Duration   // this process's CPU time in the window (server and publishers)
	stream  int
}

func (r *bareResult) rate() float64 { return float64(r.jobs) / r.window.Seconds() }

func (r *bareResult) summary() string {
	return fmt.Sprintf("%7.0f jobs/s (%d in %.2fs)  publish->(last) ack p50 %.2f  p99 %.2f ms; cpu %.0f%% (%.0f µs/job); stream %d jobs = acked %d",
		r.rate(), r.jobs, r.window.Seconds(), ms(percentile(r.batches, 0.5)), ms(percentile(r.batches, 0.99)),
		100*r.cpu.Seconds()/r.window.Seconds(), perEvent(r.cpu, float64(r.jobs)), r.stream, r.acked)
}

// bareRun starts a nats-server with JetStream on a fresh file store in this
// process, exactly as oss2s3 embeds it, creates the streams and consumer as
// oss2s3 does, and publishes the jobs the gateway would make as shape says.
func (b *ingestBed) bareRun(ctx context.Context, name string, shape bareShape) (res *bareResult, err error) {
	o := b.opts
	dir := filepath.Join(b.dir, name)
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	if o.cpuprofile != "" {
		path := filepath.Join(o.cpuprofile, name+".pprof")
		stop, err := startSelfProfile(path)
		if err != nil {
			return nil, err
		}
		defer func() {
			err = errors.Join(err, stop())
			b.logf("CPU profile of the bare run: %s", path)
		}()
	}
	ns, err := startBareServer(filepath.Join(dir, "jetstream"))
	if err != nil {
		return nil, err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns), nats.Name("bench-bare"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if err := ensureJobStream(ctx, js, o.maxJobs, o.dupWindow); err != nil {
		return nil, err
	}

	var stop atomic.Bool
	base := time.Now()
	outs := make([]bareOut, shape.publishers)
	var wg sync.WaitGroup
	for p := range shape.publishers {
		wg.Go(func() { barePublisher(ctx, js, name, p, shape.batch, base, &stop, &outs[p]) })
	}
	sleep := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	sleep(o.warmup)
	cpu0 := selfCPU()
	mStart := time.Since(base)
	sleep(o.duration)
	mEnd := time.Since(base)
	cpu1 := selfCPU()
	stop.Store(true)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res = &bareResult{shape: shape, window: mEnd - mStart, cpu: cpu1 - cpu0}
	for i := range outs {
		if outs[i].err != nil {
			return nil, outs[i].err
		}
		res.acked += outs[i].acked
		for _, s := range outs[i].samples {
			if s.end >= mStart && s.end < mEnd {
				res.jobs += s.n
				res.batches = append(res.batches, s.lat)
			}
		}
	}
	slices.Sort(res.batches)
	n, err := countStream(ctx, js, transfer.JobStream)
	if err != nil {
		return nil, fmt.Errorf("count the bare job stream: %w", err)
	}
	res.stream = int(n)
	if res.stream != res.acked {
		return nil, fmt.Errorf("bare loop: %d jobs acknowledged, but the stream holds %d", res.acked, res.stream)
	}
	return res, nil
}

// startBareServer starts nats-server with the options oss2s3's embedded
// server has (transfer/queue.go startEmbedded).
func startBareServer(store string) (*server.Server, error) {
	if err := os.MkdirAll(store, 0o750); err != nil {
		return nil, err
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "bench-bare",
		JetStream:  true,
		StoreDir:   store,
		DontListen: true,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("nats-server did not become ready in 30s")
	}
	return ns, nil
}

// ensureJobStream creates the job and dead-letter streams and the workers'
// durable consumer as oss2s3 does (transfer/queue.go ensure), with one
// replica; the consumer is never read from, as with workers.concurrency 0.
func ensureJobStream(ctx context.Context, js jetstream.JetStream, maxJobs int64, dupWindow time.Duration) error {
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       transfer.JobStream,
		Subjects:   []string{transfer.JobSubjectPrefix + ">"},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Replicas:   1,
		Duplicates: dupWindow,
		MaxMsgs:    maxJobs,
		MaxBytes:   8 << 30, // oss2s3's default queue.max_bytes
		Discard:    jetstream.DiscardNew,
	}); err != nil {
		return fmt.Errorf("create stream %s: %w", transfer.JobStream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:      transfer.DeadStream,
		Subjects:  []string{transfer.DeadSubjectPref + ">"},
		Retention: jetstream.LimitsPolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  1,
		MaxAge:    transfer.DefaultDeadLetterAge,
	}); err != nil {
		return fmt.Errorf("create stream %s: %w", transfer.DeadStream, err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, transfer.JobStream, jetstream.ConsumerConfig{
		Durable:       transfer.WorkerConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxDeliver:    5,
		MaxAckPending: transfer.DefaultMaxAckPending,
		FilterSubject: transfer.JobSubjectPrefix + ">",
		Replicas:      1,
	}); err != nil {
		return fmt.Errorf("create consumer %s: %w", transfer.WorkerConsumer, err)
	}
	return nil
}

type bareOut struct {
	samples []sample
	acked   int
	err     error
}

// barePrefix is the key prefix of publisher p's jobs.
func barePrefix(run string, p int) string { return fmt.Sprintf("ingest/%s/p%03d/", run, p) }

// bareJob is the message the gateway makes of the single-record document
// for key seq with prefix, of publisher p (JSON job, Nats-Msg-Id); key and
// ETag are made as the load generator makes them.
func bareJob(prefix string, p, seq int) (*nats.Msg, error) {
	now := time.Now()
	var kb, eb [64]byte
	job := transfer.Job{
		Task:       benchTask,
		Kind:       transfer.KindConverge,
		Origin:     metrics.SourceOSSWebhook,
		EventTime:  now.UTC().Truncate(time.Millisecond),
		QueuedAt:   now.UTC(),
		ObjectArgs: transfer.ObjectArgs{Bucket: ingestBucket, Key: string(appendKey(kb[:0], prefix, seq)), ETag: string(appendETag(eb[:0], p, seq)), Size: ingestSize, Event: ingestEvent},
	}
	data, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	msg := &nats.Msg{Subject: transfer.JobSubjectPrefix + benchTask, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, job.MsgID())
	return msg, nil
}

// barePublisher publishes jobs, each one as the gateway would make it from
// a single-record document: in batches whose acks are all awaited before
// the next, or (batch 0) one at a time, each ack awaited.
func barePublisher(ctx context.Context, js jetstream.JetStream, run string, p, batch int, base time.Time, stop *atomic.Bool, out *bareOut) {
	if batch == 0 {
		serialPublisher(ctx, js, run, p, base, stop, out)
		return
	}
	prefix := barePrefix(run, p)
	futures := make([]jetstream.PubAckFuture, 0, batch)
	out.samples = make([]sample, 0, 1024)
	seq := 0
	for !stop.Load() && ctx.Err() == nil {
		t0 := time.Now()
		futures = futures[:0]
		for range batch {
			msg, err := bareJob(prefix, p, seq)
			seq++
			if err != nil {
				out.err = err
				return
			}
			f, err := js.PublishMsgAsync(msg)
			if err != nil {
				out.err = fmt.Errorf("publish: %w", err)
				return
			}
			futures = append(futures, f)
		}
		n := 0
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					out.err = fmt.Errorf("job %s acknowledged as a duplicate", f.Msg().Header.Get(jetstream.MsgIDHeader))
					return
				}
				n++
			case err := <-f.Err():
				out.err = fmt.Errorf("publish ack: %w", err)
				return
			case <-ctx.Done():
				return
			}
		}
		t1 := time.Now()
		out.acked += n
		out.samples = append(out.samples, sample{end: t1.Sub(base), lat: t1.Sub(t0), n: n})
	}
}

// serialPublisher is the plain publish loop: PublishMsg, which returns
// once JetStream has stored the job and acknowledged it, then the next.
func serialPublisher(ctx context.Context, js jetstream.JetStream, run string, p int, base time.Time, stop *atomic.Bool, out *bareOut) {
	prefix := barePrefix(run, p)
	out.samples = make([]sample, 0, 1<<16)
	for seq := 0; !stop.Load() && ctx.Err() == nil; seq++ {
		t0 := time.Now()
		msg, err := bareJob(prefix, p, seq)
		if err != nil {
			out.err = err
			return
		}
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			if ctx.Err() == nil {
				out.err = fmt.Errorf("publish: %w", err)
			}
			return
		}
		if ack.Duplicate {
			out.err = fmt.Errorf("job %s acknowledged as a duplicate", msg.Header.Get(jetstream.MsgIDHeader))
			return
		}
		t1 := time.Now()
		out.acked++
		out.samples = append(out.samples, sample{end: t1.Sub(base), lat: t1.Sub(t0), n: 1})
	}
}

// startSelfProfile writes a CPU profile of this process to path until the
// returned function is called.
func startSelfProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
