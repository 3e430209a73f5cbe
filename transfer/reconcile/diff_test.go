package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

const ak, sk = "RECONCILEAK", "reconcile-secret"

// env is an OSS source and an S3 destination, both served by one OSS
// emulator (its OSS API for the source, its S3 API for the destination).
type env struct {
	emu  *ossemu.Server
	task *transfer.Task
	src  *transfer.OSSSource
	dst  *transfer.S3Destination
	pub  *recorder
	page int
}

func newEnv(t *testing.T, page int) *env {
	t.Helper()
	emu := ossemu.New(ossemu.Options{Credentials: map[string]string{ak: sk}})
	url, err := emu.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	emu.CreateBucket("src")
	emu.CreateBucket("dst")
	task := &transfer.Task{Name: "t1",
		Source:      transfer.SourceConfig{Endpoint: url, Bucket: "src", AccessKeyID: ak, AccessKeySecret: sk},
		Destination: transfer.DestinationConfig{Endpoint: url, Region: "us-east-1", Bucket: "dst", Prefix: "backup/", AccessKeyID: ak, SecretAccessKey: sk},
	}
	src, err := transfer.NewOSSSource(task.Source, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := transfer.NewS3Destination(context.Background(), task.Destination)
	if err != nil {
		t.Fatal(err)
	}
	return &env{emu: emu, task: task, src: src, dst: dst, pub: &recorder{}, page: page}
}

func (e *env) put(t *testing.T, bucket, key, body string, meta map[string]string) {
	t.Helper()
	h := http.Header{}
	for k, v := range meta {
		h.Set("x-oss-meta-"+k, v)
	}
	if _, err := e.emu.PutObject(bucket, key, []byte(body), h); err != nil {
		t.Fatal(err)
	}
}

func (e *env) diff(o reconcile.Options) (*reconcile.Diff, *memReport) {
	rep := &memReport{}
	return &reconcile.Diff{
		Task: e.task, RunID: "r1", Options: o, Report: rep, Queue: e.pub,
		Src:    &reconcile.OSSLister{Bucket: e.src.Bucket(), PageSize: e.page},
		Dst:    &reconcile.S3Lister{Client: e.dst.Client(), Bucket: "dst", PageSize: e.page},
		Source: e.src, Destination: e.dst, DstOpener: e.dst,
	}, rep
}

func (e *env) exists(t *testing.T, dstKey string) bool {
	t.Helper()
	_, err := e.dst.Head(context.Background(), dstKey)
	if err != nil && !errors.Is(err, transfer.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

type recorder struct {
	mu   sync.Mutex
	jobs []transfer.Job
}

func (r *recorder) Publish(_ context.Context, jobs []transfer.Job) (transfer.PublishResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, jobs...)
	return transfer.PublishResult{Queued: len(jobs)}, nil
}

func (r *recorder) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []string
	for _, j := range r.jobs {
		ks = append(ks, j.Key)
	}
	sort.Strings(ks)
	return ks
}

type memReport struct {
	mu    sync.Mutex
	lines []reconcile.ReportLine
}

func (m *memReport) Report(_ context.Context, l reconcile.ReportLine) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lines = append(m.lines, l)
	return nil
}

func (m *memReport) keys(result string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ks []string
	for _, l := range m.lines {
		if l.Result == result {
			ks = append(ks, l.Key)
		}
	}
	sort.Strings(ks)
	return ks
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// seed fills the source and the destination with every kind of difference.
func seed(t *testing.T, e *env) {
	e.put(t, "src", "a", "same", nil)
	e.put(t, "dst", "backup/a", "same", nil)
	e.put(t, "src", "b", "missing", nil)
	e.put(t, "src", "c", "new content", nil) // overwritten with the same size
	e.put(t, "dst", "backup/c", "old content", nil)
	e.put(t, "src", "d", "longer now", nil)
	e.put(t, "dst", "backup/d", "short", nil)
	e.put(t, "dst", "backup/e", "extra", nil)
	e.put(t, "dst", "backup/f", "extra too", nil)
	e.put(t, "dst", "other/a", "not this task's", nil)
	e.put(t, "dst", "a", "not under the destination prefix", nil)
	for _, k := range []string{"g1", "g2", "g3", "g4", "g5"} {
		e.put(t, "src", k, k, nil)
		e.put(t, "dst", "backup/"+k, k, nil)
	}
}

func TestDiffFindsEveryDifference(t *testing.T) {
	for _, page := range []int{1, 2, 1000} {
		e := newEnv(t, page)
		seed(t, e)
		d, rep := e.diff(reconcile.Options{})
		if err := d.Run(context.Background(), reconcile.Ranges(nil)); err != nil {
			t.Fatal(err)
		}
		eq(t, "queued", e.pub.keys(), []string{"b", "c", "d"})
		eq(t, "missing", rep.keys("missing"), []string{"b"})
		eq(t, "different", rep.keys("different"), []string{"c", "d"})
		eq(t, "extraneous", rep.keys("extraneous"), []string{"e", "f"})
		c := d.Progress.Snapshot()
		if c.Listed != 9 || c.Missing != 1 || c.Different != 2 || c.Extraneous != 2 || c.Queued != 3 || c.Errors != 0 || c.Heads != 0 {
			t.Errorf("page %d: counts %+v", page, c)
		}
		for _, j := range e.pub.jobs {
			if j.Task != "t1" || j.Bucket != "src" || j.Kind != transfer.KindConverge || j.Nonce == "" {
				t.Errorf("job %+v", j)
			}
		}
	}
}

func TestReportModeQueuesNothing(t *testing.T) {
	e := newEnv(t, 2)
	seed(t, e)
	d, rep := e.diff(reconcile.Options{Mode: reconcile.ModeReport})
	d.Queue = nil
	if err := d.Run(context.Background(), reconcile.Ranges(nil)); err != nil {
		t.Fatal(err)
	}
	eq(t, "different", rep.keys("different"), []string{"c", "d"})
	if len(e.pub.jobs) != 0 {
		t.Fatalf("report mode queued %d jobs", len(e.pub.jobs))
	}
}

func TestCopyAllQueuesEverything(t *testing.T) {
	e := newEnv(t, 3)
	seed(t, e)
	d, _ := e.diff(reconcile.Options{Mode: reconcile.ModeCopyAll})
	if err := d.Run(context.Background(), reconcile.Ranges(nil)); err != nil {
		t.Fatal(err)
	}
	eq(t, "queued", e.pub.keys(), []string{"a", "b", "c", "d", "g1", "g2", "g3", "g4", "g5"})
	for _, j := range e.pub.jobs {
		if !j.Force {
			t.Fatalf("copy_all job without Force: %+v", j)
		}
	}
}

// Keys whose order differs between UTF-16 (Java, JavaScript) and UTF-8
// bytes: U+FF61 sorts after U+1F600 as UTF-16 (0xD83D < 0xFF61) and before
// it as bytes (EF < F0). A diff in the wrong order would call both missing
// and extraneous.
func TestByteOrderNotUTF16(t *testing.T) {
	e := newEnv(t, 1)
	keys := []string{"\uFF61", "\U0001F600", "a\uFFFDb", "a\U00010000b", "z", "\u00e9"}
	for _, k := range keys {
		e.put(t, "src", k, "x"+k, nil)
		e.put(t, "dst", "backup/"+k, "x"+k, nil)
	}
	e.put(t, "src", "\U0001F601", "missing", nil)
	d, rep := e.diff(reconcile.Options{})
	if err := d.Run(context.Background(), reconcile.Ranges(nil)); err != nil {
		t.Fatal(err)
	}
	eq(t, "queued", e.pub.keys(), []string{"\U0001F601"})
	eq(t, "extraneous", rep.keys("extraneous"), nil)
}

func TestOutOfOrderPageStopsTheRun(t *testing.T) {
	for _, api := range []string{"OSS", "S3"} {
		e := newEnv(t, 3)
		seed(t, e)
		// One range listed at a time (no split, no probes): the second
		// page of the listing, a full one, comes back out of order.
		e.emu.InjectFault(ossemu.Fault{API: api, Op: "ListObjectsV2", OutOfOrder: true, Skip: 1, Times: 1})
		d, _ := e.diff(reconcile.Options{Mode: reconcile.ModeSync, MaxDeletes: 100, Parallel: 1})
		err := d.Run(context.Background(), reconcile.Ranges(nil))
		if !errors.Is(err, reconcile.ErrOutOfOrder) {
			t.Fatalf("%s: Run = %v, want ErrOutOfOrder", api, err)
		}
		for _, k := range []string{"backup/e", "backup/f", "backup/a", "backup/g5"} {
			if !e.exists(t, k) {
				t.Errorf("%s: %s deleted after an out-of-order listing", api, k)
			}
		}
	}
}

func TestListingErrorMidRunDeletesNothing(t *testing.T) {
	for _, api := range []string{"OSS", "S3"} {
		e := newEnv(t, 2)
		seed(t, e)
		e.emu.InjectFault(ossemu.Fault{API: api, Op: "ListObjectsV2", Status: http.StatusForbidden, Code: "AccessDenied", Skip: 2})
		d, _ := e.diff(reconcile.Options{Mode: reconcile.ModeSync, MaxDeletes: 100})
		err := d.Run(context.Background(), reconcile.Ranges(nil))
		if err == nil {
			t.Fatalf("%s: Run succeeded through a listing error", api)
		}
		t.Logf("%s: %v", api, err)
		if d.Progress.Snapshot().Deleted != 0 {
			t.Fatalf("%s: deleted after a listing error", api)
		}
		for _, k := range []string{"backup/e", "backup/f"} {
			if !e.exists(t, k) {
				t.Errorf("%s: %s deleted after a listing error", api, k)
			}
		}
	}
}

func TestSyncDeletesUpToTheCap(t *testing.T) {
	e := newEnv(t, 2)
	seed(t, e)
	d, _ := e.diff(reconcile.Options{Mode: reconcile.ModeSync, MaxDeletes: 1})
	err := d.Run(context.Background(), reconcile.Ranges(nil))
	if !errors.Is(err, reconcile.ErrDeleteCap) {
		t.Fatalf("Run = %v, want ErrDeleteCap", err)
	}
	if !e.exists(t, "backup/e") || !e.exists(t, "backup/f") {
		t.Fatal("a run over its delete cap deleted something")
	}
	eq(t, "queued over the cap", e.pub.keys(), []string{"b", "c", "d"})

	e.pub.jobs = nil
	d, rep := e.diff(reconcile.Options{Mode: reconcile.ModeSync, MaxDeletes: 2})
	if err := d.Run(context.Background(), reconcile.Ranges(nil)); err != nil {
		t.Fatal(err)
	}
	eq(t, "deleted", rep.keys("deleted"), []string{"e", "f"})
	if e.exists(t, "backup/e") || e.exists(t, "backup/f") {
		t.Fatal("sync left destination-only objects")
	}
	for _, k := range []string{"backup/a", "backup/c", "backup/g1", "other/a", "a"} {
		if !e.exists(t, k) {
			t.Errorf("sync deleted %s", k)
		}
	}
}

func TestPrefixesNestAndSuffixes(t *testing.T) {
	e := newEnv(t, 2)
	for _, k := range []string{"a/1.jpg", "a/b/2.jpg", "a/b/3.txt", "ab/4.jpg", "c/5.jpg"} {
		e.put(t, "src", k, k, nil)
	}
	e.put(t, "dst", "backup/a/b/9.jpg", "extra", nil)
	e.put(t, "dst", "backup/a/b/8.txt", "not a suffix of the task", nil)
	e.task.Source.Prefixes = []string{"a/b/", "a/", "ab/"}
	e.task.Source.Suffixes = []string{".jpg"}
	d, rep := e.diff(reconcile.Options{})
	if err := d.Run(context.Background(), reconcile.Ranges(e.task.Source.Prefixes)); err != nil {
		t.Fatal(err)
	}
	eq(t, "queued", e.pub.keys(), []string{"a/1.jpg", "a/b/2.jpg", "ab/4.jpg"})
	eq(t, "extraneous", rep.keys("extraneous"), []string{"a/b/9.jpg"})
}

// Objects the listing cannot judge (multipart ETags) are judged by the
// source identity oss2s3 writes on every copy.
func TestSourceIdentityDecidesMultipartObjects(t *testing.T) {
	e := newEnv(t, 1000)
	for _, k := range []string{"cur", "old", "foreign"} {
		info, err := e.emu.PutSynthetic("src", k, 10, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch k {
		case "cur":
			e.put(t, "dst", "backup/"+k, "0123456789", map[string]string{transfer.MetaSourceETag: info.ETag})
		case "old":
			e.put(t, "dst", "backup/"+k, "0123456789", map[string]string{transfer.MetaSourceETag: "0123-1"})
		default:
			e.put(t, "dst", "backup/"+k, "0123456789", nil)
		}
	}
	d, rep := e.diff(reconcile.Options{})
	if err := d.Run(context.Background(), reconcile.Ranges(nil)); err != nil {
		t.Fatal(err)
	}
	eq(t, "different", rep.keys("different"), []string{"foreign", "old"})
	if h := d.Progress.Snapshot().Heads; h != 3 {
		t.Errorf("heads = %d, want 3", h)
	}

	e.pub.jobs = nil
	d, rep = e.diff(reconcile.Options{Verify: reconcile.VerifySize})
	if err := d.Run(context.Background(), reconcile.Ranges(nil)); err != nil {
		t.Fatal(err)
	}
	eq(t, "different (verify size)", rep.keys("different"), []string{"old"})

	d, rep = e.diff(reconcile.Options{Verify: reconcile.VerifyContent})
	if err := d.Run(context.Background(), reconcile.Ranges(nil)); err != nil {
		t.Fatal(err)
	}
	// The synthetic source's bytes are not "0123456789": content differs.
	eq(t, "different (verify content)", rep.keys("different"), []string{"foreign", "old"})
}

func TestVerifyContentFindsEqualForeignCopies(t *testing.T) {
	e := newEnv(t, 1000)
	info, err := e.emu.PutSynthetic("src", "k", 4096, 9, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, info.Size)
	if _, err := ossemu.SyntheticReader(info.Size, 9, 0).Read(body); err != nil {
		t.Fatal(err)
	}
	if _, err := e.emu.PutObject("dst", "backup/k", body, nil); err != nil {
		t.Fatal(err)
	}
	d, rep := e.diff(reconcile.Options{Verify: reconcile.VerifyContent})
	if err := d.Run(context.Background(), reconcile.Ranges(nil)); err != nil {
		t.Fatal(err)
	}
	eq(t, "different", rep.keys("different"), nil)
}

func TestGeneratedListings(t *testing.T) {
	e := newEnv(t, 1000)
	e.task.Destination.Prefix = ""
	e.emu.SetGenerated("src", ossemu.Generated{Count: 10_000})
	e.emu.SetGenerated("dst", ossemu.Generated{Count: 10_000, Missing: 1, Different: 1, Extra: 1})
	d, _ := e.diff(reconcile.Options{Mode: reconcile.ModeReport})
	d.Queue = nil
	if err := d.Run(context.Background(), reconcile.Ranges(nil)); err != nil {
		t.Fatal(err)
	}
	c := d.Progress.Snapshot()
	if c.Listed != 10_000 || c.Missing != 100 || c.Different != 100 || c.Extraneous != 100 || c.Heads != 0 {
		t.Fatalf("counts %+v", c)
	}
}

// A flat range (a bucket's top level, when a run is split into its
// top-level prefixes) sees only the keys with no "/" in them.
func TestFlatRange(t *testing.T) {
	e := newEnv(t, 1)
	for _, k := range []string{"a", "b/c", "d", "e/f/g"} {
		e.put(t, "src", k, k, nil)
	}
	e.put(t, "dst", "backup/a", "a", nil)
	e.put(t, "dst", "backup/x/y", "under a prefix", nil)
	e.put(t, "dst", "backup/z", "top level", nil)
	d, rep := e.diff(reconcile.Options{Mode: reconcile.ModeReport})
	d.Queue = nil
	if err := d.Run(context.Background(), []reconcile.Range{{Flat: true}}); err != nil {
		t.Fatal(err)
	}
	eq(t, "missing", rep.keys("missing"), []string{"d"})
	eq(t, "extraneous", rep.keys("extraneous"), []string{"z"})
}

// A prefix file of thousands: each prefix is a listing range, nested
// prefixes are listed once, and the objects outside every prefix are
// neither copied nor called extraneous.
func TestThousandsOfPrefixes(t *testing.T) {
	e := newEnv(t, 1000)
	var prefixes []string
	for i := range 2000 {
		p := fmt.Sprintf("p%04d/", i)
		prefixes = append(prefixes, p)
		if i%100 == 0 {
			prefixes = append(prefixes, p+"nested/")
			e.put(t, "src", p+"nested/x", "x", nil)
		}
		if i%10 == 0 {
			e.put(t, "src", p+"obj", "obj", nil)
			e.put(t, "dst", "backup/"+p+"obj", "obj", nil)
		}
	}
	e.put(t, "src", "outside/a", "not in any prefix", nil)
	e.put(t, "dst", "backup/outside/b", "not in any prefix", nil)
	e.put(t, "dst", "backup/p0005/extra", "extra", nil)
	rs := reconcile.Ranges(prefixes)
	if len(rs) != 2000 {
		t.Fatalf("%d ranges, want 2000", len(rs))
	}
	d, rep := e.diff(reconcile.Options{})
	if err := d.Run(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	c := d.Progress.Snapshot()
	if c.Listed != 220 || c.Missing != 20 || c.Extraneous != 1 || c.Different != 0 {
		t.Fatalf("counts %+v", c)
	}
	eq(t, "extraneous", rep.keys("extraneous"), []string{"p0005/extra"})
}

// Split cuts a range where its keys fan out, and the pieces, listed at
// once, find exactly what one listing finds.
func TestSplitCoversEveryKey(t *testing.T) {
	e := newEnv(t, 7)
	for i := range 300 {
		k := fmt.Sprintf("data/%03d/obj", i)
		e.put(t, "src", k, k, nil)
		if i%7 != 0 {
			e.put(t, "dst", "backup/"+k, k, nil)
		}
	}
	e.put(t, "src", "data/", "the prefix itself", nil)
	e.put(t, "dst", "backup/data/0zz", "between the pieces", nil)
	e.put(t, "dst", "backup/data/9", "after the last source key", nil)
	e.put(t, "dst", "backup/data/", "the prefix itself", nil)
	pieces, err := reconcile.Split(context.Background(), &reconcile.OSSLister{Bucket: e.src.Bucket()}, reconcile.Range{Prefix: "data/"}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(pieces) < 3 {
		t.Fatalf("pieces %v: not split", pieces)
	}
	d, rep := e.diff(reconcile.Options{Mode: reconcile.ModeReport, Parallel: 8})
	d.Queue = nil
	if err := d.Run(context.Background(), []reconcile.Range{{Prefix: "data/"}}); err != nil {
		t.Fatal(err)
	}
	c := d.Progress.Snapshot()
	if c.Listed != 301 || c.Missing != 43 || c.Extraneous != 2 || c.Different != 0 {
		t.Fatalf("counts %+v", c)
	}
	eq(t, "extraneous", rep.keys("extraneous"), []string{"data/0zz", "data/9"})
}

// Keys that fan out into two children at the top (years, or generated
// keys g0000000-g1999999) still make the pieces asked for: each child is
// cut where its own keys fan out, and the pieces cover every key once.
func TestSplitGoesDownWhenTheTopIsTooCoarse(t *testing.T) {
	e := newEnv(t, 7)
	var keys []string
	for y := range 2 {
		for m := range 12 {
			for d := range 3 {
				keys = append(keys, fmt.Sprintf("202%d/%02d/%d.log", y, m+1, d))
			}
		}
	}
	for _, k := range keys {
		e.put(t, "src", k, k, nil)
	}
	src := &reconcile.OSSLister{Bucket: e.src.Bucket()}
	pieces, err := reconcile.Split(context.Background(), src, reconcile.Range{}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(pieces) < 6 || len(pieces) > 10 {
		t.Fatalf("%d pieces %v, want about 8", len(pieces), pieces)
	}
	var listed []string
	for _, p := range pieces {
		err := reconcile.March(context.Background(), reconcile.Sides{Src: src, Dst: src}, p, (*keyCollector)(&listed))
		if err != nil {
			t.Fatal(err)
		}
	}
	eq(t, "keys of the pieces", listed, keys)
}

// keyCollector is a march handler that notes the keys both sides have.
type keyCollector []string

func (c *keyCollector) SrcOnly(context.Context, reconcile.Entry) error { return nil }
func (c *keyCollector) DstOnly(context.Context, reconcile.Entry) error { return nil }
func (c *keyCollector) Match(_ context.Context, s, _ reconcile.Entry) error {
	*c = append(*c, s.Key)
	return nil
}

// Cuts make as many pieces as asked for, as even as they can be, and the
// pieces follow one another with no gap.
func TestGroupMakesThePiecesAskedFor(t *testing.T) {
	var cuts []string
	for i := range 20 {
		cuts = append(cuts, fmt.Sprintf("k%02d", i))
	}
	for _, want := range []int{2, 7, 8, 20, 30} {
		pieces := reconcile.Group(reconcile.Range{Prefix: "k"}, cuts, want)
		if n := min(want, len(cuts)); len(pieces) != n {
			t.Errorf("want %d: %d pieces %v", want, len(pieces), pieces)
		}
		after := ""
		for i, p := range pieces {
			if p.Prefix != "k" || p.After != after || (i == len(pieces)-1) != (p.Through == "") {
				t.Errorf("want %d: piece %d is %v after %q", want, i, p, after)
			}
			after = p.Through
		}
	}
}
