package reconcile_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

func TestReadPrefixesReportsABadLineWithItsNumber(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", reconcile.MaxPrefixLen+1)
	for name, tc := range map[string]struct{ list, want string }{
		"InvalidUTF8":          {"a/\nb/\n\xff\xfe/\n", "line 3: not valid UTF-8"},
		"TooLongForAKey":       {"# list\n\na/\n" + long + "\n", fmt.Sprintf("line 4: %d bytes", len(long))},
		"TooLongToScan":        {"a/\n" + strings.Repeat("k", 1<<17) + "\n", "line 2: longer than 65536 bytes"},
		"LeadingSlash":         {"a/\r\n/b/\r\n", `line 2: "/b/" starts with '/'`},
		"LeadingBackslash":     {`\b/`, `line 1: "\\b/" starts with '\\'`},
		"ControlCharacter":     {"a/\nb\x01/\n", "line 2: \"b\\x01/\" holds a control character"},
		"CommentsAndBlanksAre": {"#x\n  \n\n#y\n\x00\n", "line 5:"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := reconcile.ReadPrefixes(strings.NewReader(tc.list), func(string) {})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	var got []string
	err := reconcile.ReadPrefixes(strings.NewReader("# DTH list\r\n\r\na b/\r\nc/\n  \n#d/\ne"), func(p string) { got = append(got, p) })
	if err != nil || !slices.Equal(got, []string{"a b/", "c/", "e"}) {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestDisjointSortsAndDropsCoveredPrefixes(t *testing.T) {
	t.Parallel()
	got := reconcile.Disjoint([]string{"b/", "a/x/", "a/", "b/", "c", "ca/", "a/y"})
	if want := []string{"a/", "b/", "c"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestParsePrefixList(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]string{
		"oss://my-bucket/lists/prefixes.txt": "oss my-bucket lists/prefixes.txt",
		"s3://my.bucket/p.txt":               "s3 my.bucket p.txt",
		"lists/prefixes.txt":                 "file  lists/prefixes.txt",
		"/etc/oss2s3/prefixes.txt":           "file  /etc/oss2s3/prefixes.txt",
		"oss://my-bucket/":                   "names no object",
		"oss://my-bucket":                    "names no object",
		"s3://My_Bucket/p.txt":               "not a bucket name",
		"https://example.com/p.txt":          "want oss://bucket/key, s3://bucket/key or a file path",
		" ":                                  "empty",
	} {
		kind, bucket, key, err := reconcile.ParsePrefixList(s)
		got := kind + " " + bucket + " " + key
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, want) {
			t.Errorf("%q: got %q, want %q", s, got, want)
		}
	}
}

const listURL = "oss://lists/dth/prefixes.txt"

// listEnv is a task whose prefix list is the object listURL in another
// bucket of the source's OSS, with a replica (its workers too) reading it.
func listEnv(t *testing.T) (*env, *replica) {
	t.Helper()
	e := newEnv(t, 1000)
	e.emu.CreateBucket("lists")
	ns := jstest.Start(t)
	r := startReplicaWith(t, e, ns.ClientURL(), true, replicaOpts{
		cfg: reconcile.ServiceConfig{LockTTL: 3 * time.Second, Poll: 50 * time.Millisecond}, list: listURL})
	return e, r
}

func (e *env) putList(t *testing.T, lines ...string) {
	t.Helper()
	e.put(t, "lists", "dth/prefixes.txt", strings.Join(lines, "\n")+"\n", nil)
}

// A DTH list of thousands of lines, in no order, with comments, CRLFs,
// duplicates and a prefix inside another: a run lists exactly the objects
// under its prefixes, not the rest of the bucket.
func TestPrefixListObjectOfThousandsOfLinesReconcilesExactlyThem(t *testing.T) {
	t.Parallel()
	e, r := listEnv(t)
	const n = 2000
	lines := []string{"# exported from DTH", ""}
	for i := range n {
		e.put(t, "src", fmt.Sprintf("p%04d/a", i), "x", nil)
		lines = append(lines, fmt.Sprintf("p%04d/", i))
	}
	for i := range 50 {
		e.put(t, "src", fmt.Sprintf("q%04d/a", i), "not listed", nil)
	}
	e.put(t, "src", "p0001x", "beside p0001/, not under it", nil)
	lines = append(lines, "p0005/\r", "p0007/a", "p0009/")
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(lines)-2, func(i, j int) { lines[i+2], lines[j+2] = lines[j+2], lines[i+2] })
	e.putList(t, lines...)

	st, err := r.svc.Start(context.Background(), "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Shards != (n+63)/64 {
		t.Errorf("%d shards for %d prefixes, want %d", st.Shards, n, (n+63)/64)
	}
	st = waitRun(t, r.svc, st.ID)
	if st.PrefixList != listURL || st.PrefixCount != n {
		t.Errorf("run read %d prefixes from %q, want %d from %s", st.PrefixCount, st.PrefixList, n, listURL)
	}
	if st.Error != "" || st.Listed != n || st.Missing != n || st.Extraneous != 0 {
		t.Fatalf("run: %+v", st)
	}
}

// The list is read at the start of each run: a list changed between two
// runs applies to the second, with no restart.
func TestPrefixListUpdatedBetweenRunsIsReadByTheNext(t *testing.T) {
	t.Parallel()
	e, r := listEnv(t)
	for _, k := range []string{"x/1", "y/1", "y/2", "z/1"} {
		e.put(t, "src", k, k, nil)
	}
	run := func() reconcile.RunState {
		t.Helper()
		st, err := r.svc.Start(context.Background(), "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
		if err != nil {
			t.Fatal(err)
		}
		return waitRun(t, r.svc, st.ID)
	}
	e.putList(t, "x/")
	if st := run(); st.Error != "" || st.Listed != 1 {
		t.Fatalf("first run: %+v", st)
	}
	e.putList(t, "y/", "z/")
	if st := run(); st.Error != "" || st.Listed != 3 {
		t.Fatalf("second run, list updated: %+v", st)
	}
}

// A list with a bad line, or no list at all, fails the run at its start
// with a message that says where and which line; the task is not left
// locked.
func TestPrefixListBadLineOrMissingObjectFailsTheRun(t *testing.T) {
	t.Parallel()
	e, r := listEnv(t)
	e.put(t, "src", "a/1", "a", nil)
	start := func() error {
		_, err := r.svc.Start(context.Background(), "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
		return err
	}
	err := start()
	if !errors.Is(err, reconcile.ErrNoList) || !strings.Contains(err.Error(), listURL) {
		t.Fatalf("no list object: %v", err)
	}
	e.putList(t, "# header", "a/", "/b/", "c/")
	if err := start(); err == nil || !strings.Contains(err.Error(), "prefix list "+listURL+": line 3: ") {
		t.Fatalf("bad line 3: %v", err)
	}
	e.putList(t, "# nothing but comments")
	if err := start(); err == nil || !strings.Contains(err.Error(), "lists no prefixes") {
		t.Fatalf("empty list: %v", err)
	}
	e.putList(t, "a/")
	if err := start(); err != nil {
		t.Fatalf("the failed starts left the task locked: %v", err)
	}
}

type s3Side struct{ c *s3.Client }

func (s s3Side) Client() *s3.Client { return s.c }
func (s s3Side) BucketName() string { return "unused" }

// An s3:// list is read through the destination's S3 client, from any
// bucket it may read.
func TestPrefixListFromS3(t *testing.T) {
	t.Parallel()
	srv, stop, err := s3test.StartFake()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	ctx := context.Background()
	if err := srv.CreateBucket(ctx, "lists"); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	want := make([]string, 3000)
	for i := range want {
		want[i] = fmt.Sprintf("k/%05d/", i)
		fmt.Fprintf(&b, "k/%05d/\n", len(want)-1-i)
	}
	if _, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lists"), Key: aws.String("p.txt"),
		Body: strings.NewReader(b.String())}); err != nil {
		t.Fatal(err)
	}
	l, err := reconcile.NewPrefixList("s3://lists/p.txt", nil, s3Side{srv.Client})
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Read(ctx)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("read %d prefixes (%v), want %d in order", len(got), err, len(want))
	}
	l, _ = reconcile.NewPrefixList("s3://lists/none.txt", nil, s3Side{srv.Client})
	if _, err := l.Read(ctx); !errors.Is(err, reconcile.ErrNoList) {
		t.Fatalf("missing list: %v", err)
	}
}

// shardCounter is a queue that counts shard jobs and their ranges and
// keeps nothing. With measure set, it also notes the live heap (after a
// GC) each time it is called: what the plan holds while it queues.
type shardCounter struct {
	jobs, ranges atomic.Int64
	largest      atomic.Int64 // bytes of the largest shard job
	measure      bool
	live         uint64
}

func (c *shardCounter) Publish(_ context.Context, jobs []transfer.Job) (transfer.PublishResult, error) {
	for _, j := range jobs {
		c.jobs.Add(1)
		c.ranges.Add(int64(strings.Count(j.Shard, `{"prefix":`)))
		if n := int64(len(j.Shard)); n > c.largest.Load() {
			c.largest.Store(n)
		}
	}
	if c.measure {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		c.live = max(c.live, ms.HeapAlloc)
	}
	return transfer.PublishResult{Queued: len(jobs)}, nil
}

// A run given a hundred thousand prefixes (POST /v1/tasks/{task}/reconcile
// takes that many) starts: its shards carry their own ranges, not the whole
// list each, and its state keeps a few of them and their count, within
// the 1 MiB of a KV value.
func TestARunOfAHundredThousandPrefixesStarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000)
	ns := jstest.Start(t)
	q := &shardCounter{}
	r := startReplicaWith(t, e, ns.ClientURL(), false, replicaOpts{
		cfg: reconcile.ServiceConfig{LockTTL: time.Minute, Poll: time.Hour},
		pub: func(*transfer.Queue) reconcile.Publisher { return q }})
	ps := make([]string, 100_000)
	for i := range ps {
		ps[i] = fmt.Sprintf("data/%07d/", i)
	}
	st, err := r.svc.Start(context.Background(), "t1", reconcile.Options{Mode: reconcile.ModeReport, Prefixes: ps}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if q.ranges.Load() != 100_000 || q.jobs.Load() != int64(st.Shards) || q.largest.Load() > 8<<10 {
		t.Fatalf("%d ranges in %d jobs (%d shards), the largest %d bytes", q.ranges.Load(), q.jobs.Load(), st.Shards, q.largest.Load())
	}
	got, err := r.svc.Get(context.Background(), st.ID)
	if err != nil || got.PrefixCount != 100_000 || len(got.Prefixes) != 100 || got.Prefixes[0] != ps[0] {
		t.Fatalf("run state: %d prefixes shown, count %d (%v)", len(got.Prefixes), got.PrefixCount, err)
	}
}

// Memory bounds of planning a run of a million prefixes (13 bytes each,
// in no order): the list is read line by line, held once as strings
// (about 36 bytes a prefix: 16 of string header, 16 of bytes, the slice's
// spare capacity), sorted in place, and turned into shard jobs a few MiB
// at a time. millionLiveBound is the live heap while the jobs are queued;
// millionPeakBound the peak of the heap (live or not yet collected) above
// where it started, sampled every millisecond.
const (
	millionLiveBound = 48 << 20
	millionPeakBound = 120 << 20
)

// A run of a million prefixes read from a file is planned (read, sorted,
// made disjoint, cut into shards, queued) within the bounds above.
func TestMillionPrefixesArePlannedWithinAMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and plans a list of a million prefixes")
	}
	const n = 1_000_000
	path := filepath.Join(t.TempDir(), "million.txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for _, i := range rand.New(rand.NewPCG(3, 4)).Perm(n) {
		fmt.Fprintf(w, "data/%07d/\n", i)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, 1000)
	ns := jstest.Start(t)
	q := &shardCounter{measure: true}
	r := startReplicaWith(t, e, ns.ClientURL(), false, replicaOpts{
		cfg:  reconcile.ServiceConfig{LockTTL: time.Minute, Poll: time.Hour},
		list: path, pub: func(*transfer.Queue) reconcile.Publisher { return q }})

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := samplePeakHeap()
	st, err := r.svc.Start(context.Background(), "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
	top := stop()
	if err != nil {
		t.Fatal(err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew, live := top-before.HeapAlloc, q.live-before.HeapAlloc
	t.Logf("%d prefixes: %d shards; live heap while queuing %.1f MiB (bound %d MiB), peak heap %.1f MiB (bound %d MiB) above the start; %.1f MiB allocated in all",
		n, st.Shards, float64(live)/(1<<20), millionLiveBound>>20, float64(grew)/(1<<20), millionPeakBound>>20,
		float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	if q.ranges.Load() != n || q.jobs.Load() != int64(st.Shards) || st.Shards > 1024 {
		t.Fatalf("%d ranges in %d jobs, %d shards", q.ranges.Load(), q.jobs.Load(), st.Shards)
	}
	if live > millionLiveBound || grew > millionPeakBound {
		t.Fatalf("live heap grew by %d MiB (bound %d), peak by %d MiB (bound %d)", live>>20, millionLiveBound>>20, grew>>20, millionPeakBound>>20)
	}
}

// samplePeakHeap samples HeapAlloc every millisecond until stop, which
// returns the largest seen.
func samplePeakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}
