package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/sqsemu"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

func TestQuantileOf(t *testing.T) {
	t.Parallel()
	ms := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		q    float64
		want float64
	}{
		{"TheMedianOfFourIsTheSecond", ms(40, 10, 30, 20), 0.5, 20},
		{"P99OfAHundredIsTheNinetyNinth", ms(slices.Collect(func(yield func(int) bool) {
			for i := 100; i >= 1; i-- {
				if !yield(i) {
					return
				}
			}
		})...), 0.99, 99},
		{"P99OfAFewIsTheirMaximum", ms(5, 1, 3), 0.99, 5},
		{"OneSampleIsEveryQuantile", ms(7), 0.01, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := slices.Clone(tc.in)
			if got := quantileOf(tc.in, tc.q, time.Millisecond); got != tc.want {
				t.Errorf("quantileOf(%v, %v) = %v ms, want %v", tc.in, tc.q, got, tc.want)
			}
			if !slices.Equal(before, tc.in) {
				t.Errorf("the samples were reordered: %v", tc.in)
			}
		})
	}
	t.Run("NoSampleIsNaN", func(t *testing.T) {
		t.Parallel()
		if got := quantileOf(nil, 0.99, time.Second); !math.IsNaN(got) {
			t.Errorf("got %v, want NaN", got)
		}
	})
}

func TestChaosResultLine(t *testing.T) {
	t.Parallel()
	r := chaosResult{minutes: 5, events: 1200, objects: 640, replicaKills: 12, natsKills: 4,
		resumeP99: 11.26, lagP99: 2345.6}
	want := "chaos minutes=5 events=1200 objects=640 replica_kills=12 nats_kills=4 lost=0 stuck=0 orphan_uploads=0 unexpected_dlq=0 resume_p99_s=11.3 lag_p99_ms=2346"
	if got := r.line(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if f := r.failures(12, 4, 15*time.Second); len(f) != 0 {
		t.Errorf("a clean run fails: %v", f)
	}
	t.Run("NoSampleShowsAsNaN", func(t *testing.T) {
		t.Parallel()
		r := chaosResult{minutes: 0.5, resumeP99: math.NaN(), lagP99: math.NaN()}
		if got := r.line(); !strings.HasPrefix(got, "chaos minutes=0.5 ") || !strings.HasSuffix(got, " resume_p99_s=NaN lag_p99_ms=NaN") {
			t.Errorf("got %s", got)
		}
	})
	t.Run("ResumeGoal", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			resume float64
			kills  int
			goal   time.Duration
			want   string // "" passes
		}{
			{11.3, 12, 15 * time.Second, ""},
			{15.1, 12, 15 * time.Second, "resume_p99_s=15.1 over the goal of 15s"},
			{15.1, 12, 20 * time.Second, ""},
			{99, 12, 0, ""},
			{math.NaN(), 12, 15 * time.Second, "resume unmeasured: none of 12 replica kills"},
			{math.NaN(), 3, 15 * time.Second, ""}, // too few kills to be sure one caught a copy (CI's run)
			{math.NaN(), 5, 15 * time.Second, "resume unmeasured: none of 5 replica kills"},
		} {
			r := chaosResult{replicaKills: tc.kills, resumeP99: tc.resume}
			got := strings.Join(r.failures(tc.kills, 0, tc.goal), "; ")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("resume %v after %d kills, goal %v: failures %q, want %q", tc.resume, tc.kills, tc.goal, got, tc.want)
			}
		}
	})
	t.Run("EveryShortfallFails", func(t *testing.T) {
		t.Parallel()
		r := chaosResult{lost: 1, stuck: 2, orphanUploads: 3, unexpectedDLQ: 4, replicaKills: 9, natsKills: 3}
		got := strings.Join(r.failures(10, 3, 0), "; ")
		for _, want := range []string{"lost=1", "stuck=2", "orphan_uploads=3", "unexpected_dlq=4", "9 replica kills of 10"} {
			if !strings.Contains(got, want) {
				t.Errorf("failures %q lack %q", got, want)
			}
		}
		if strings.Contains(got, "NATS") {
			t.Errorf("enough NATS kills reported short: %q", got)
		}
	})
}

func TestBuildSchedule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                 string
		d                    time.Duration
		replicaKills, natsKs int
		from, to             time.Duration // the faults' window: after a warm-up, ending before the load
	}{
		{"TheDefaultFiveMinutes", 5 * time.Minute, 12, 4, 10 * time.Second, 295 * time.Second},
		{"TheShortCIRun", time.Minute, 3, 1, 10 * time.Second, 55 * time.Second},
		{"NoKillsAtAll", 2 * time.Minute, 0, 0, 10 * time.Second, 115 * time.Second},
		{"AHalfMinute", 30 * time.Second, 1, 1, 5 * time.Second, 27500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan := buildSchedule(tc.d, tc.replicaKills, tc.natsKs, 42)
			if from, to := scheduleWindow(tc.d); from != tc.from || to != tc.to {
				t.Fatalf("window [%v, %v], want [%v, %v]", from, to, tc.from, tc.to)
			}
			from, to := tc.from, tc.to
			n := map[faultKind]int{}
			for i, f := range plan {
				n[f.Kind]++
				if f.At < from || f.At > to {
					t.Errorf("%s outside the window [%v, %v]", f, from, to)
				}
				if i > 0 && f.At < plan[i-1].At {
					t.Errorf("%s planned before %s", f, plan[i-1])
				}
				switch f.Kind {
				case faultReplicaKill:
					if f.For < time.Second || f.For > 3*time.Second {
						t.Errorf("%s: a replica stays down 1-3 s", f)
					}
				case faultNATSKill:
					if f.For < 3*time.Second || f.For > 5*time.Second {
						t.Errorf("%s: a NATS node stays down 3-5 s", f)
					}
				case faultSlowDown, faultS3Reset:
					if f.Share <= 0 || f.Share >= 1 || f.For <= 0 {
						t.Errorf("%s: a share of some requests, for a while", f)
					}
				case faultOSSCut:
					if f.CutAfter <= 0 || f.Times < 1 {
						t.Errorf("%s: cuts nothing", f)
					}
				}
			}
			if n[faultReplicaKill] != tc.replicaKills || n[faultNATSKill] != tc.natsKs {
				t.Errorf("%d replica kills and %d NATS kills, want %d and %d", n[faultReplicaKill], n[faultNATSKill], tc.replicaKills, tc.natsKs)
			}
			for _, k := range faultKinds[2:] {
				if n[k] < 1 {
					t.Errorf("no %s planned: %s", k, countKinds(plan))
				}
			}
			if tc.d == 5*time.Minute && (n[faultSlowDown] < 5 || n[faultOSSCut] < 10) {
				t.Errorf("episodes do not grow with the run: %s", countKinds(plan))
			}
		})
	}
	t.Run("KillsAreSpreadOverTheRun", func(t *testing.T) {
		t.Parallel()
		plan := buildSchedule(5*time.Minute, 12, 4, 7)
		var kills []time.Duration
		for _, f := range plan {
			if f.Kind == faultReplicaKill {
				kills = append(kills, f.At)
			}
		}
		// 12 slots of 23.75 s, each kill within 30% of its slot's middle.
		for i := 1; i < len(kills); i++ {
			if gap := kills[i] - kills[i-1]; gap < 9*time.Second {
				t.Errorf("kills %d and %d only %v apart", i-1, i, gap)
			}
		}
	})
	t.Run("TheSeedDecides", func(t *testing.T) {
		t.Parallel()
		a, b, c := buildSchedule(time.Minute, 3, 1, 1), buildSchedule(time.Minute, 3, 1, 1), buildSchedule(time.Minute, 3, 1, 2)
		if !slices.Equal(a, b) {
			t.Error("the same seed gave two plans")
		}
		if slices.Equal(a, c) {
			t.Error("two seeds gave the same plan")
		}
	})
}

func TestOwnerPID(t *testing.T) {
	t.Parallel()
	for owner, want := range map[string]int{
		"host-1234-0a1b2c3d":          1234,
		"host-1234-0a1b2c3d/9f8e7d6c": 1234, // one copy's lease (transfer/multipart.go)
		"my-host-name-77-deadbeef":    77,
		"ip-10-0-0-1-4242-00000000":   4242,
		"":                            -1,
		"host-1234":                   -1,
		"host-abc-0a1b2c3d":           -1,
		"host-1234-0a1b2c3d-garbage":  -1,
		"host-1234-0a1b2c3d/":         -1,
	} {
		pid, ok := ownerPID(owner)
		if want < 0 && ok || want >= 0 && (!ok || pid != want) {
			t.Errorf("ownerPID(%q) = %d, %v; want %d", owner, pid, ok, want)
		}
	}
}

func TestReplicaYAML(t *testing.T) {
	t.Parallel()
	y := replicaConfig{Listen: "127.0.0.1:1", DataDir: "/d", NATSURL: "nats://127.0.0.1:2,nats://127.0.0.1:3",
		SQSURL: "http://127.0.0.1:4/000000000000/q", SQSEndpoint: "http://127.0.0.1:4", OSSURL: "http://127.0.0.1:5",
		SrcBucket: "src", S3URL: "https://127.0.0.1:6", CAFile: "/ca.pem", DstBkt: "dst"}.yaml()
	var cfg struct {
		NATS struct {
			URL      string `yaml:"url"`
			Replicas int    `yaml:"replicas"`
		} `yaml:"nats"`
		Queue   map[string]string `yaml:"queue"`
		Workers map[string]string `yaml:"workers"`
		SQS     []struct {
			Task     string `yaml:"task"`
			Endpoint string `yaml:"endpoint"`
		} `yaml:"sqs"`
		Tasks []struct {
			Name        string            `yaml:"name"`
			Options     map[string]string `yaml:"options"`
			Destination struct {
				Endpoint string `yaml:"endpoint"`
				CAFile   string `yaml:"ca_file"`
			} `yaml:"destination"`
		} `yaml:"tasks"`
	}
	if err := yaml.Unmarshal([]byte(y), &cfg); err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	switch {
	case cfg.NATS.Replicas != 3 || cfg.NATS.URL != "nats://127.0.0.1:2,nats://127.0.0.1:3":
		t.Errorf("nats: %+v", cfg.NATS)
	case len(cfg.Tasks) != 1 || cfg.Tasks[0].Name != chaosTask || cfg.Tasks[0].Options["deletes"] != "propagate":
		t.Errorf("tasks: %+v", cfg.Tasks)
	case cfg.Tasks[0].Destination.Endpoint != "https://127.0.0.1:6" || cfg.Tasks[0].Destination.CAFile != "/ca.pem":
		t.Errorf("destination: %+v", cfg.Tasks[0].Destination)
	case len(cfg.SQS) != 1 || cfg.SQS[0].Task != chaosTask || cfg.SQS[0].Endpoint != "http://127.0.0.1:4":
		t.Errorf("sqs: %+v", cfg.SQS)
	case cfg.Workers["giant_threshold"] != "32MiB" || cfg.Workers["multipart_threshold"] != "6MiB" || cfg.Queue["retry_base"] != "1s" || cfg.Workers["orphan_upload_age"] != "20s":
		t.Errorf("tuning: workers %v queue %v", cfg.Workers, cfg.Queue)
	}
}

// TestSlowDownProxy: with no storm the proxy is transparent (Host kept, so
// signatures made for it verify behind it); in a storm S3 clients see S3's
// own throttling error.
func TestSlowDownProxy(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var hosts []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("ETag", `"0123"`)
		_, _ = w.Write(body)
	}))
	t.Cleanup(backend.Close)
	target, _ := url.Parse(backend.URL)
	p := newSlowDownProxy(target, http.DefaultTransport, 1)
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	ctx := context.Background()
	client, err := newS3Client(ctx, front.URL, front.Client())
	if err != nil {
		t.Fatal(err)
	}
	put := func(client *s3.Client) error {
		_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("hello")})
		return err
	}

	t.Run("NoStormPassesEverythingThroughWithItsHost", func(t *testing.T) {
		if err := put(client); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(hosts) != 1 || hosts[0] != strings.TrimPrefix(front.URL, "http://") {
			t.Errorf("backend saw hosts %v, want the proxy's %s", hosts, front.URL)
		}
		if p.refused.Load() != 0 || p.passed.Load() != 1 {
			t.Errorf("refused %d, passed %d", p.refused.Load(), p.passed.Load())
		}
	})
	t.Run("AStormAnswersSlowDown", func(t *testing.T) {
		p.setShare(1)
		defer p.setShare(0)
		once, err := newS3Client(ctx, front.URL, front.Client())
		if err != nil {
			t.Fatal(err)
		}
		err = put(s3.New(once.Options(), func(o *s3.Options) { o.RetryMaxAttempts = 1 }))
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "SlowDown" {
			t.Fatalf("got %v, want S3's SlowDown", err)
		}
		req, _ := http.NewRequest(http.MethodHead, front.URL+"/b/k", nil)
		resp, err := front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("HEAD: %s, want 503", resp.Status)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(hosts) != 1 {
			t.Errorf("refused requests reached the backend: %v", hosts)
		}
	})
}

// TestSourceSendsEachEventOneWay: a change whose event goes by SQS fires no
// webhook, and the SQS message is the one that way's format.
func TestSourceSendsEachEventOneWay(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var hooked []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, err := ossevent.Parse(must(io.ReadAll(r.Body)))
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		for _, e := range doc.Events {
			hooked = append(hooked, e.EventName+" "+e.OSS.Object.Key)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(hook.Close)
	emu := ossemu.New(ossemu.Options{})
	t.Cleanup(func() { emu.Close() })
	emu.SetWebhook(hook.URL, webhookSecret)
	sqs := sqsemu.New(sqsemu.Options{})
	q := sqs.CreateQueue("q", nil)
	src := newSource(emu, sqs, q, hook.URL, newLagTracker(nil, ""), 1)

	steps := []struct{ key, via, op string }{
		{"a", viaWebhook, "create"}, {"b", viaSQSDTH, "create"}, {"c", viaSQSEvent, "create"},
		{"a", viaSQSEvent, "delete"}, {"b", viaWebhook, "delete"},
	}
	for _, s := range steps {
		var err error
		if s.op == "create" {
			err = src.write(s.key, "small", s.via, "create_small")
		} else {
			err = src.remove(s.key, s.via, "delete")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := emu.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if want := []string{"ObjectCreated:PutObject a", "ObjectRemoved:DeleteObject b"}; !slices.Equal(hooked, want) {
		t.Errorf("webhooks %q, want %q", hooked, want)
	}
	mu.Unlock()
	var bodies []string
	for _, m := range sqs.Messages(q) {
		var probe struct {
			Key    *string           `json:"key"`
			Events []ossevent.Record `json:"events"`
		}
		if err := json.Unmarshal([]byte(m.Body), &probe); err != nil {
			t.Fatal(err)
		}
		switch {
		case probe.Key != nil:
			bodies = append(bodies, "dth "+*probe.Key)
		case len(probe.Events) == 1:
			bodies = append(bodies, probe.Events[0].EventName+" "+probe.Events[0].OSS.Object.Key)
		}
	}
	if want := []string{"dth b", "ObjectCreated:PutObject c", "ObjectRemoved:DeleteObject a"}; !slices.Equal(bodies, want) {
		t.Errorf("SQS messages %q, want %q", bodies, want)
	}
	live, deleted, _ := src.snapshot()
	if _, ok := live["c"]; !ok || len(live) != 1 || !deleted["a"] || !deleted["b"] {
		t.Errorf("model: live %v, deleted %v", live, deleted)
	}
	if n := src.events(); n != len(steps) {
		t.Errorf("%d events counted, want %d", n, len(steps))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestJetStreamReadsLeaveTheQueueAsItIs: the end check reads the jobs left,
// the dead letters and the checkpoints (as transfer writes them) without
// consuming anything, and the resume watch sees only copies in progress:
// main records, not parts; not giant uploads; not checkpoints whose
// heartbeat stopped long ago.
func TestJetStreamReadsLeaveTheQueueAsItIs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := jstest.Start(t)
	q, err := transfer.OpenQueue(ctx, transfer.QueueConfig{URL: ns.ClientURL()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	if _, err := q.Publish(ctx, []transfer.Job{
		{Task: chaosTask, Kind: transfer.KindConverge, ObjectArgs: transfer.ObjectArgs{Bucket: "b", Key: "left/1", ETag: "E1"}},
		{Task: chaosTask, Kind: transfer.KindRemove, EventTime: time.Now(), ObjectArgs: transfer.ObjectArgs{Bucket: "b", Key: "left/2"}},
	}); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(q.Conn())
	if err != nil {
		t.Fatal(err)
	}
	dead := &nats.Msg{Subject: transfer.DeadSubjectPref + chaosTask, Header: nats.Header{},
		Data: must(json.Marshal(transfer.Job{Task: chaosTask, Kind: transfer.KindConverge, ObjectArgs: transfer.ObjectArgs{Key: "dead/1"}}))}
	dead.Header.Set(transfer.HeaderError, "AccessDenied")
	dead.Header.Set(transfer.HeaderAttempts, "1")
	if _, err := js.PublishMsg(ctx, dead); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, cp := range []*transfer.Checkpoint{
		{Task: chaosTask, Key: "mp/live", ETag: "A-2", Owner: "host-100-aa", Heartbeat: now},
		{Task: chaosTask, Key: "mp/stale", ETag: "B-2", Owner: "host-200-bb", Heartbeat: now.Add(-time.Minute)},
		{Task: chaosTask, Key: "giant/1", ETag: "C-9", Giant: true, Heartbeat: now},
	} {
		if _, err := q.Checkpoints().Save(ctx, cp, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Checkpoints().SavePart(ctx, cp, transfer.Part{Number: 1, Size: 5 << 20, ETag: "p1"}); err != nil {
			t.Fatal(err)
		}
	}

	b := &chaosBed{js: js}
	jobs := b.stuckJobs(ctx, 10)
	if len(jobs) != 2 || jobs[0].Key != "left/1" || jobs[1].Key != "left/2" {
		t.Errorf("jobs left: %+v", jobs)
	}
	letters, err := b.deadLetters(ctx)
	if err != nil || len(letters) != 1 || letters[0].job.Key != "dead/1" || letters[0].err != "AccessDenied" || letters[0].attempts != "1" {
		t.Errorf("dead letters: %+v, %v", letters, err)
	}
	for _, name := range []string{transfer.JobStream, transfer.DeadStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if n, want := s.CachedInfo().State.Msgs, map[string]uint64{transfer.JobStream: 2, transfer.DeadStream: 1}[name]; n != want {
			t.Errorf("%s holds %d messages after the reads, want %d", name, n, want)
		}
	}
	cps, err := b.checkpointList(ctx)
	var keys []string
	for _, cp := range cps {
		keys = append(keys, cp.Key)
	}
	slices.Sort(keys)
	if err != nil || !slices.Equal(keys, []string{"giant/1", "mp/live", "mp/stale"}) {
		t.Errorf("checkpoints %q, %v; want the three main records", keys, err)
	}
	owned, err := b.ownedUploads(ctx)
	if err != nil || len(owned) != 1 || len(owned["host-100-aa"]) != 1 || owned["host-100-aa"][0].Key != "mp/live" {
		t.Errorf("copies in progress by owner: %+v, %v; want mp/live by host-100-aa only", owned, err)
	}
}
