package reconcile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// jobLog is the copy-job queue of the resume tests: it records each job
// (deduplicated by its Nats-Msg-Id, as JetStream does) and forwards only the
// shard jobs to the real queue, so no worker copies anything.
type jobLog struct {
	mu   sync.Mutex
	seen map[string]bool
	keys map[string][]string // nonce -> keys, in publish order, no duplicates
}

type jobLogQueue struct {
	*jobLog
	q *transfer.Queue
}

func (l jobLogQueue) Publish(ctx context.Context, jobs []transfer.Job) (transfer.PublishResult, error) {
	var res transfer.PublishResult
	var shards []transfer.Job
	var at []int // at[k] is the index in jobs of shards[k]
	l.mu.Lock()
	for i, j := range jobs {
		if j.Kind == transfer.KindReconcile {
			shards = append(shards, j)
			at = append(at, i)
			continue
		}
		if id := j.MsgID(); l.seen[id] {
			res.Duplicate++
			res.NotQueued = append(res.NotQueued, i)
		} else {
			l.seen[id] = true
			l.keys[j.Nonce] = append(l.keys[j.Nonce], j.Key)
			res.Queued++
		}
	}
	l.mu.Unlock()
	if len(shards) > 0 {
		r, err := l.q.Publish(ctx, shards)
		res.Queued += r.Queued
		res.Duplicate += r.Duplicate
		for _, k := range r.NotQueued {
			res.NotQueued = append(res.NotQueued, at[k])
		}
		slices.Sort(res.NotQueued)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func (l *jobLog) of(run string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(slices.Values(l.keys["reconcile-"+run]))
}

// tapLister records the queries of a lister and counts its pages; onPage,
// if set, runs before each page is handed on (n counts the pages of every
// List call of this lister).
type tapLister struct {
	reconcile.Lister
	mu      sync.Mutex
	queries []reconcile.Query
	pages   int
	onPage  func(ctx context.Context, n int) error
}

func (l *tapLister) List(ctx context.Context, q reconcile.Query, fn func([]reconcile.Entry) error) error {
	l.mu.Lock()
	l.queries = append(l.queries, q)
	l.mu.Unlock()
	return l.Lister.List(ctx, q, func(es []reconcile.Entry) error {
		l.mu.Lock()
		l.pages++
		n := l.pages
		l.mu.Unlock()
		if l.onPage != nil {
			if err := l.onPage(ctx, n); err != nil {
				return err
			}
		}
		return fn(es)
	})
}

func (l *tapLister) seen() ([]reconcile.Query, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.queries), l.pages
}

// A replica dies in the middle of a shard of five ranges; the shard is
// redelivered to another replica, which lists both sides from the key after
// the shard's checkpoint, not from the start, and the run ends with the
// totals, the jobs and the report lines of a run that was not interrupted.
func TestRedeliveredShardResumesAtItsCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		sse  string // aws:kms: no listed ETag is comparable, every pair is HEADed
		// verify decides the HEADed pairs: size calls the listing's
		// different ETags same (they are the same size).
		verify                string
		missing, diff, extras int // per 100 keys
	}{
		{name: "listing decides", verify: reconcile.VerifyETag, missing: 1, diff: 1, extras: 1},
		{name: "every pair HEADed", sse: "aws:kms", verify: reconcile.VerifySize, missing: 1, diff: 0, extras: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testResume(t, tc.sse, tc.verify, tc.missing, tc.diff, tc.extras)
		})
	}
}

func testResume(t *testing.T, sse, verify string, wantMissing, wantDiff, wantExtra int) {
	const count, page = 5000, 100
	// A message a report line: the lines of the keys after the checkpoint
	// reach the stream before replica A dies, and the resume must delete
	// them.
	t.Cleanup(reconcile.SetReportChunk(1))
	ns := jstest.Start(t)
	e := newEnv(t, page)
	e.emu.SetGenerated("src", ossemu.Generated{Count: count})
	e.emu.SetGenerated("dst", ossemu.Generated{Count: count, Missing: 1, Different: 1, Extra: 1})
	e.task.Destination.Prefix = "" // generated keys have none
	e.task.Destination.SSE = sse
	// Five ranges of 1000 keys, one shard.
	for d := range 5 {
		e.task.Source.Prefixes = append(e.task.Source.Prefixes, fmt.Sprintf("g0000000%d", d))
	}
	cfg := reconcile.ServiceConfig{LockTTL: 3 * time.Second, Poll: 50 * time.Millisecond, Shards: 1,
		CheckpointKeys: 250, CheckpointEvery: time.Hour}
	jobs := &jobLog{seen: map[string]bool{}, keys: map[string][]string{}}
	pub := func(q *transfer.Queue) reconcile.Publisher { return jobLogQueue{jobs, q} }
	ctx := context.Background()

	coord := startReplicaWith(t, e, ns.ClientURL(), false, replicaOpts{cfg: cfg, pub: pub})
	st, err := coord.svc.Start(ctx, "t1", reconcile.Options{Verify: verify}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Shards != 1 {
		t.Fatalf("shards = %d, want 1", st.Shards)
	}

	a, aSrc := interruptShard(t, e, ns.ClientURL(), st.ID, replicaOpts{cfg: cfg, pub: pub})
	kv, err := a.js.KeyValue(ctx, reconcile.RunsBucket)
	if err != nil {
		t.Fatal(err)
	}
	shardKey := "shard." + st.ID + ".0"
	cp := assertInterruptedAtCheckpoint(t, a, aSrc, kv, st.ID)

	// Replica B takes the redelivered shard.
	e.emu.ResetRequests()
	bTaps := map[string]*tapLister{}
	startReplicaWith(t, e, ns.ClientURL(), true, replicaOpts{cfg: cfg, pub: pub,
		tap: func(side string, l reconcile.Lister) reconcile.Lister {
			bTaps[side] = &tapLister{Lister: l}
			return bTaps[side]
		}})
	st = waitRun(t, coord.svc, st.ID)
	assertResumedAtCheckpoint(t, e, bTaps, cp, count, page)
	if ent, err := kv.Get(ctx, shardKey); err != nil || !strings.Contains(string(ent.Value()), `"resumed":1`) {
		t.Fatalf("final shard state (%v): %s", err, ent.Value())
	}

	// (b) The same data, not interrupted.
	again := runWith(t, coord, reconcile.Options{Verify: verify})
	if st.Error != "" || again.Error != "" {
		t.Fatalf("errors: %q, %q", st.Error, again.Error)
	}
	if st.Counts != again.Counts {
		t.Fatalf("totals after a resume:\n %+v\nuninterrupted:\n %+v", st.Counts, again.Counts)
	}
	want := reconcile.Counts{Listed: count, DstListed: int64(count - count/100*wantMissing + count/100*wantExtra),
		Missing: int64(count / 100 * wantMissing), Different: int64(count / 100 * wantDiff), Extraneous: int64(count / 100 * wantExtra)}
	want.Queued = want.Missing + want.Different
	if sse != "" {
		want.Heads = int64(count - count/100*wantMissing)
	}
	for i := range int64(count) {
		want.ListedBytes += ossemu.GeneratedSize(i)
		if r := int(i % 100); r < wantMissing || r < 2 && wantDiff > 0 {
			want.QueuedBytes += ossemu.GeneratedSize(i)
		}
	}
	if st.Counts != want {
		t.Fatalf("totals %+v, want %+v", st.Counts, want)
	}

	// (c) Every missing or different key got its job, once.
	var wantJobs []string
	for i := range int64(count) {
		if r := int(i % 100); r < wantMissing || r < 2 && wantDiff > 0 {
			wantJobs = append(wantJobs, ossemu.GeneratedKey(i))
		}
	}
	eq(t, "jobs of the resumed run", jobs.of(st.ID), wantJobs)
	// The keys the dead attempt handled after its checkpoint were queued
	// again, as duplicates: the run's jobs count each once (its restored
	// checkpoint did not count them), what its copies' wait compares with.
	if st.Jobs != int64(len(wantJobs)) || again.Jobs != int64(len(wantJobs)) {
		t.Fatalf("jobs %d (resumed), %d (uninterrupted): want %d distinct", st.Jobs, again.Jobs, len(wantJobs))
	}
	eq(t, "jobs of the uninterrupted run", jobs.of(again.ID), wantJobs)

	// The report has each line once, as the uninterrupted run's.
	got, wantLines := reportLines(t, coord.svc, st.ID), reportLines(t, coord.svc, again.ID)
	if len(wantLines) != int(want.Missing+want.Different+want.Extraneous) {
		t.Fatalf("uninterrupted report has %d lines, want %d", len(wantLines), want.Missing+want.Different+want.Extraneous)
	}
	eq(t, "report lines", got, wantLines)
}

// interruptShard starts replica A, which takes run's shard and, at its 27th
// source page (the third range's seventh), once the march has reported
// g00000002502x (on page 26), is told to stop; that listing hangs until
// the shutdown grace is over and the shard's context ends, as a replica
// going away mid-shard. Range 2's keys take 101 handler calls a hundred
// (one extra destination key): its checkpoints fall at calls 250
// (g00000002246) and 500 (g00000002494); the march can reach g00000002599
// (call 606) at most, so the last checkpoint is g00000002494, and the
// lines of g00000002500 to g00000002502x are in the report stream after
// it. It returns A, stopped, and A's source lister.
func interruptShard(t *testing.T, e *env, url, run string, o replicaOpts) (*replica, *tapLister) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reported, err := nc.SubscribeSync(reconcile.ReportSubject + run + ".0")
	if err != nil {
		t.Fatal(err)
	}
	var a *replica
	var aSrc *tapLister
	var aErr error
	aStarted := make(chan struct{})
	o.tap = func(side string, l reconcile.Lister) reconcile.Lister {
		tl := &tapLister{Lister: l}
		if side == "source" {
			aSrc = tl
			tl.onPage = func(ctx context.Context, n int) error {
				if n < 27 {
					return nil
				}
				<-aStarted
				aErr = awaitReportLine(reported, `"key":"g00000002502x"`)
				a.cancel()
				<-ctx.Done()
				return ctx.Err()
			}
		}
		return tl
	}
	a = startReplicaWith(t, e, url, true, o)
	close(aStarted)
	<-a.done
	if aErr != nil {
		t.Fatal(aErr)
	}
	return a, aSrc
}

// awaitReportLine waits for a report message that holds want.
func awaitReportLine(reported *nats.Subscription, want string) error {
	for {
		m, err := reported.NextMsg(time.Minute)
		if err != nil {
			return fmt.Errorf("waiting for the report line of g00000002502x: %w", err)
		}
		if strings.Contains(string(m.Data), want) {
			return nil
		}
	}
}

// savedCheckpoint is a shard's checkpoint, as its state in KV holds it.
type savedCheckpoint struct {
	Range     int    `json:"range"`
	After     string `json:"after"`
	ReportSeq uint64 `json:"report_seq"`
}

// assertInterruptedAtCheckpoint checks the state replica A left run's shard
// in (see interruptShard), and returns its checkpoint.
func assertInterruptedAtCheckpoint(t *testing.T, a *replica, aSrc *tapLister, kv jetstream.KeyValue, run string) savedCheckpoint {
	t.Helper()
	ctx := context.Background()
	ent, err := kv.Get(ctx, "shard."+run+".0")
	if err != nil {
		t.Fatalf("no shard state after the interruption: %v", err)
	}
	var saved struct {
		Done       bool `json:"done"`
		Listed     int64
		Checkpoint *savedCheckpoint `json:"checkpoint"`
		Resumed    int              `json:"resumed"`
	}
	if err := json.Unmarshal(ent.Value(), &saved); err != nil {
		t.Fatal(err)
	}
	cp := saved.Checkpoint
	if saved.Done || cp == nil || cp.After == "" {
		t.Fatalf("state after the interruption: %s", ent.Value())
	}
	if _, aPages := aSrc.seen(); aPages != 27 {
		t.Fatalf("replica A listed %d source pages, want 27", aPages)
	}
	// The listing fetches two pages ahead of the march: when it asked for
	// page 27, the march had handled pages 21 to 24 (range 2's keys 2000 to
	// 2399), so it had saved its checkpoints at 150 and 300 keys of range 2;
	// it never saw page 27's keys.
	if cp.Range != 2 || cp.After != ossemu.GeneratedKey(2494) {
		t.Fatalf("checkpoint %+v: want range 2, after %s", *cp, ossemu.GeneratedKey(2494))
	}
	// The report lines A wrote past its checkpoint are in the stream.
	rs, err := a.js.Stream(ctx, reconcile.ReportStream)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := rs.GetLastMsgForSubject(ctx, reconcile.ReportSubject+run+".0"); err != nil || m.Sequence <= cp.ReportSeq {
		t.Fatalf("no report line past the checkpoint (report_seq %d): %v", cp.ReportSeq, err)
	}
	t.Logf("checkpoint: range %d after %s", cp.Range, cp.After)
	return *cp
}

// assertResumedAtCheckpoint checks how replica B, through its listers
// taps, listed the shard it took over from checkpoint cp.
func assertResumedAtCheckpoint(t *testing.T, e *env, taps map[string]*tapLister, cp savedCheckpoint, count, page int) {
	t.Helper()
	srcQ, srcPages := taps["source"].seen()
	dstQ, _ := taps["destination"].seen()
	prefix := e.task.Source.Prefixes[cp.Range]
	// (a) Both listings of the second attempt start at the checkpoint, and
	// it lists only the ranges from the checkpoint's on.
	if len(srcQ) != 5-cp.Range || srcQ[0].Prefix != prefix || srcQ[0].StartAfter != cp.After {
		t.Fatalf("second attempt's source listings: %+v, want %d from prefix %s after %s", srcQ, 5-cp.Range, prefix, cp.After)
	}
	if len(dstQ) != 5-cp.Range || dstQ[0].Prefix != prefix || dstQ[0].StartAfter != cp.After {
		t.Fatalf("second attempt's destination listings: %+v", dstQ)
	}
	for _, q := range srcQ[1:] {
		if q.StartAfter != "" {
			t.Fatalf("a later range started after %q", q.StartAfter)
		}
	}
	// The emulator's count agrees: the source pages past the checkpoint,
	// not the 50 of the whole shard.
	after := 0
	if _, err := fmt.Sscanf(cp.After, "g%d", &after); err != nil {
		t.Fatal(err)
	}
	// The rest of range 2, ranges 3 and 4, and an empty last page each at most.
	s3Lists := e.emu.S3Requests()["ListObjectsV2"]
	ossLists := e.emu.Requests()["ListObjectsV2"] - s3Lists
	if want := (2999-after+page-1)/page + 2*count/5/page + 3; srcPages > want || ossLists != srcPages || s3Lists > want+1 {
		t.Fatalf("second attempt listed %d source pages (emulator: %d OSS, %d S3 requests), want at most %d",
			srcPages, ossLists, s3Lists, want)
	}
}

// reportLines is run id's report, its lines sorted.
func reportLines(t *testing.T, svc *reconcile.Service, id string) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := svc.WriteReport(context.Background(), id, &buf); err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(strings.SplitSeq(strings.TrimSuffix(buf.String(), "\n"), "\n"))
}
