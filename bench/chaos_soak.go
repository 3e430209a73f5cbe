package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/transfer"
)

// soak runs the load and the faults, then drains, settles and checks, and
// prints what it found; the result is the last line's.
func (b *chaosBed) soak(ctx context.Context, w io.Writer, plan []fault) (chaosResult, error) {
	o := b.opts
	res := chaosResult{minutes: o.minutes}

	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	lagDone := make(chan struct{})
	go func() { b.lag.run(lagCtx); close(lagDone) }()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	b.watchCtx = watchCtx

	t0 := time.Now()
	faultCtx, stopFaults := context.WithCancel(ctx)
	defer stopFaults()
	faultsDone := make(chan struct{})
	go func() { b.faults.run(faultCtx, t0, plan); close(faultsDone) }()
	progressCtx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	go b.progressLoop(progressCtx)

	b.logf("load: %.1f changes/s for %v; %d faults planned", o.rate, o.duration(), len(plan))
	loadErr := b.src.runLoad(ctx, o.duration(), o.rate, b.logf)
	stopFaults()
	<-faultsDone
	b.logf("load over (%d events); waiting for the faults in progress to end and their processes to be back", b.src.events())
	b.faults.wait()
	if loadErr != nil {
		return res, fmt.Errorf("load: %w", loadErr)
	}
	if err := b.settle(ctx); err != nil {
		return res, err
	}

	b.logf("drain: waiting up to %v for the events to be taken and the jobs to be done", o.drainTimeout)
	left, drainTook := b.drain(ctx, o.drainTimeout)
	stopProgress()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	// The last changes may reach the destination a moment after their job
	// is acknowledged by the poller's clock.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, pending := b.lag.counts(); pending == 0 {
			break
		}
	}
	stopLag()
	<-lagDone
	stopWatch()

	var stuckJobs []transfer.Job
	if left.jobs > 0 {
		stuckJobs = b.stuckJobs(ctx, 20)
	}
	res.stuck = int(left.jobs) + left.sqs
	if left.webhooks {
		res.stuck++ // at least one; the emulator does not say how many
	}

	b.logf("orphans: waiting up to %v for open multipart uploads to be completed or aborted", o.orphanWait)
	uploads, err := b.openUploads(ctx)
	for deadline := time.Now().Add(o.orphanWait); err == nil && len(uploads) > 0 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Second)
		uploads, err = b.openUploads(ctx)
	}
	if err != nil {
		return res, err
	}
	res.orphanUploads = len(uploads)
	leftCheckpoints, err := b.checkpointList(ctx)
	if err != nil {
		b.logf("checkpoints: %v", err)
	}

	dead, err := b.deadLetters(ctx)
	if err != nil {
		return res, err
	}
	_, _, unfixable := b.src.snapshot()
	var unexpected []string
	deadKeys := map[string]bool{}
	for _, d := range dead {
		deadKeys[d.job.Key] = true
		if !unfixable[d.job.Key] {
			unexpected = append(unexpected, fmt.Sprintf("%s %q after %s attempts: %s", d.job.Kind, d.job.Key, d.attempts, d.err))
		}
	}
	res.unexpectedDLQ = len(unexpected)

	b.logf("check: listing the source and the destination, reading every destination object in full")
	v, err := b.verify(ctx)
	if err != nil {
		return res, err
	}
	var notDead []problem
	for _, k := range slices.Sorted(maps.Keys(unfixable)) {
		if !deadKeys[k] {
			notDead = append(notDead, problem{key: k})
		}
	}
	res.lost = v.lost() + len(notDead) + len(v.blocked)

	res.events = b.src.events()
	res.objects = v.objects
	res.replicaKills = b.faults.count(faultReplicaKill)
	res.natsKills = b.faults.count(faultNATSKill)
	b.faults.mu.Lock()
	resumes := slices.Clone(b.faults.resumes)
	b.faults.mu.Unlock()
	unresumed := b.faults.unresumed()
	res.resumeP99 = quantileOf(resumes, 0.99, time.Second)
	res.lagP99 = quantileOf(b.lag.samples(""), 0.99, time.Millisecond)

	var stacks []string
	if len(stuckJobs) > 0 {
		b.logf("stuck: ending the replicas with SIGQUIT for the stacks of the workers still in a job")
		stacks = b.replicas.busyWorkerStacks(2)
	}
	b.report(w, reportInput{plan: plan, left: left, drainTook: drainTook, stuckJobs: stuckJobs, stacks: stacks, uploads: uploads,
		dead: dead, unexpected: unexpected, notDead: notDead, v: v, resumes: resumes, unresumed: unresumed, checkpoints: leftCheckpoints})
	return res, nil
}

// settle ends every fault (toxics, storms, OSS faults but the unfixable
// objects') and brings back any process still down, so that the drain
// measures oss2s3 in a healthy bed.
func (b *chaosBed) settle(ctx context.Context) error {
	b.s3Proxy.Toxics.ResetToxics(ctx)
	for _, n := range b.nats.nodes {
		n.proxy.Toxics.ResetToxics(ctx)
	}
	b.slow.setShare(0)
	b.emu.ClearFaults()
	b.src.blockUnfixable()
	for _, i := range b.nats.down() {
		b.logf("settle: NATS node %s is down; starting it", b.nats.nodes[i].spec.Name)
		if err := b.nats.start(i); err != nil {
			return err
		}
	}
	running := b.replicas.running()
	for _, r := range b.replicas.rs {
		if !slices.Contains(slices.Collect(maps.Values(running)), r) {
			b.logf("settle: replica %s is down; starting it", r.name())
			if err := b.replicas.start(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// progressLoop prints a line every 15 s until ctx ends.
func (b *chaosBed) progressLoop(ctx context.Context) {
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		q, err := b.queueState(ctx)
		queue := q.String()
		if err != nil {
			queue = "queue unreadable: " + err.Error()
		}
		conv, pend := b.lag.counts()
		b.logf("progress: events=%d at_destination=%d awaited=%d replica_kills=%d nats_kills=%d slowdown_refused=%d %s",
			b.src.events(), conv, pend, b.faults.count(faultReplicaKill), b.faults.count(faultNATSKill), b.slow.refused.Load(), queue)
	}
}

func (b *chaosBed) header(w io.Writer, revision, versityBin string, plan []fault) {
	o := b.opts
	fmt.Fprintf(w, "oss2s3 chaos soak, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %s, %d CPUs, %.1f GiB RAM, %s/%s, %s\n", cpuModel(), runtime.NumCPU(), float64(memTotal())/(1<<30), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(w, "oss2s3: 3 replicas of `oss2s3 serve` built from this tree (%s); webhooks through a round-robin load balancer in this process; each replica also pulls the SQS queue\n", revision)
	fmt.Fprintf(w, "nats: 3 nodes (child processes of this program, file stores under %s), R3 streams; oss2s3 reaches each node through a toxiproxy\n", b.dir)
	fmt.Fprintf(w, "source: OSS emulator %s (webhook retries outlast a kill); SQS emulator %s\n", b.ossURL, b.sqsURL)
	fmt.Fprintf(w, "destination: versitygw (%s) at %s; oss2s3 goes through toxiproxy %s -> 503 SlowDown proxy -> versitygw; the checks go to versitygw directly\n", versityBin, b.s3.Endpoint, b.s3Proxy.Listen)
	fmt.Fprintf(w, "load: %.1f changes/s for %g minutes (seed %d): new small objects (<= %s), multipart ones (%s-%s, ~10%%), a giant one (%s-%s) every minute, overwrites ~15%%, deletes ~10%%; events by webhook ~75%%, SQS {key,size} ~12.5%%, SQS OSS documents ~12.5%%; one object the source refuses to serve (must be dead-lettered)\n",
		o.rate, o.minutes, o.seed, formatSize(smallMax), formatSize(multipartMin), formatSize(multipartMax), formatSize(giantMin), formatSize(giantMax))
	fmt.Fprintf(w, "faults planned: %s\n", countKinds(plan))
	fmt.Fprintf(w, "replica tuning:\n%s", indent(chaosTuning, "  "))
	fmt.Fprintf(w, "logs: %s\n", b.logs.dir)
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// reportInput is what the report prints beyond the result line.
type reportInput struct {
	plan        []fault
	left        queueState
	drainTook   time.Duration
	stuckJobs   []transfer.Job
	stacks      []string // of the workers still in a job when some were stuck
	uploads     []string
	dead        []deadLetter
	unexpected  []string
	notDead     []problem
	v           verdict
	resumes     []time.Duration
	unresumed   []problem
	checkpoints []checkpoint
}

func (b *chaosBed) report(w io.Writer, in reportInput) {
	s := b.src
	s.mu.Lock()
	vias, ops, written := maps.Clone(s.vias), maps.Clone(s.ops), s.bytes
	s.mu.Unlock()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "load: %d events (%s); changes: %s; %s written\n", b.src.events(), joinCounts(vias), joinCounts(ops), formatSize(written))
	done := map[faultKind]int{}
	b.faults.mu.Lock()
	maps.Copy(done, b.faults.done)
	skipped := slices.Clone(b.faults.skipped)
	b.faults.mu.Unlock()
	var parts []string
	for _, k := range faultKinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, done[k]))
	}
	fmt.Fprintf(w, "faults done: %s; S3 requests refused with 503 SlowDown: %d of %d\n", strings.Join(parts, " "),
		b.slow.refused.Load(), b.slow.refused.Load()+b.slow.passed.Load())
	for _, s := range skipped {
		fmt.Fprintf(w, "  not done: %s\n", s)
	}
	fmt.Fprintf(w, "resume (replica kill -> every multipart copy it held owned by another worker, or finished): %s\n", spread(in.resumes, time.Second, "s"))
	for _, u := range in.unresumed {
		fmt.Fprintf(w, "  never taken over: %s\n", u)
		b.printLogLines(w, u.key)
	}
	fmt.Fprintf(w, "lag (event sent -> destination holds that version, or nothing after a delete; latest change of a key only):\n")
	fmt.Fprintf(w, "  all        %s\n", spread(b.lag.samples(""), time.Millisecond, "ms"))
	for _, via := range allVias {
		fmt.Fprintf(w, "  %-10s %s\n", via, spread(b.lag.samples(via), time.Millisecond, "ms"))
	}
	if _, pending := b.lag.counts(); pending > 0 {
		fmt.Fprintf(w, "  %d changes never reached the destination\n", pending)
	}
	fmt.Fprintf(w, "drain: %.1fs; left: %s\n", in.drainTook.Seconds(), in.left)
	b.reportStuck(w, in)
	v := in.v
	fmt.Fprintf(w, "check (source listed through the OSS API, destination listed and every object read in full from versitygw, CRC-64):\n")
	fmt.Fprintf(w, "  %d source objects expected at the destination: missing %d, wrong bytes %d; deleted at the source but still at the destination %d; at the destination but never at the source %d\n",
		v.objects, len(v.missing), len(v.wrong), len(v.undeleted), len(v.extra))
	for _, l := range []struct {
		what string
		keys []problem
	}{{"missing", v.missing}, {"wrong", v.wrong}, {"not deleted", v.undeleted}, {"extra", v.extra},
		{"unfixable object copied anyway", v.blocked}, {"unfixable object not dead-lettered", in.notDead}} {
		for i, k := range l.keys {
			if i == 10 {
				fmt.Fprintf(w, "  ... %d more %s\n", len(l.keys)-10, l.what)
				break
			}
			fmt.Fprintf(w, "  %s: %s\n", l.what, k)
			if i < 5 {
				b.printLogLines(w, k.key)
			}
		}
	}
	fmt.Fprintf(w, "dead letters: %d (%d unexpected)\n", len(in.dead), len(in.unexpected))
	for i, u := range in.unexpected {
		if i == 10 {
			fmt.Fprintf(w, "  ... %d more\n", len(in.unexpected)-10)
			break
		}
		fmt.Fprintf(w, "  unexpected: %s\n", u)
	}
	fmt.Fprintf(w, "multipart checkpoints left in %s after the drain: %d\n", transfer.CheckpointBucket, len(in.checkpoints))
	for i, cp := range in.checkpoints {
		if i == 10 {
			fmt.Fprintf(w, "  ... %d more\n", len(in.checkpoints)-10)
			break
		}
		done := "the destination does not hold this version"
		if b.destinationHolds(b.ctx, cp.Key, cp.ETag) {
			done = "the destination holds this version: the copy completed, its checkpoint was not deleted"
		}
		fmt.Fprintf(w, "  left: %q ETag %s giant=%v owner %q, last heartbeat %s; %s\n", cp.Key, cp.ETag, cp.Giant, cp.Owner, cp.Heartbeat.Format("15:04:05.0"), done)
	}
	fmt.Fprintf(w, "open multipart uploads at the destination: %d\n", len(in.uploads))
	for i, u := range in.uploads {
		if i == 10 {
			fmt.Fprintf(w, "  ... %d more\n", len(in.uploads)-10)
			break
		}
		fmt.Fprintf(w, "  open: %s\n", u)
	}
}

// reportStuck lists the jobs left after the drain, with their log lines
// and the stacks of the workers that were in a job.
func (b *chaosBed) reportStuck(w io.Writer, in reportInput) {
	for _, j := range in.stuckJobs {
		fmt.Fprintf(w, "  stuck job: %s %q (origin %s, queued %s)\n", j.Kind, j.Key, j.Origin, j.QueuedAt.Format("15:04:05.000"))
		b.printLogLines(w, j.Key)
	}
	if len(in.stuckJobs) > 0 && len(in.stacks) == 0 {
		fmt.Fprintf(w, "  no worker of a live replica was in a job (the message is JetStream's to deliver)\n")
	}
	for _, s := range in.stacks {
		fmt.Fprintf(w, "  worker in a job: %s\n", s)
	}
}

func (b *chaosBed) printLogLines(w io.Writer, key string) {
	for _, l := range b.logLines(key, 6) {
		if len(l) > 400 {
			l = l[:400] + "..."
		}
		fmt.Fprintf(w, "      %s\n", l)
	}
}

func joinCounts(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
