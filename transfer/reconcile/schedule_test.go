package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLongestGap(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 25, 12, 0, 0, 0, time.Local) // a Wednesday
	cases := []struct {
		spec string
		want time.Duration
	}{
		{"@every 1h", time.Hour},
		{"@hourly", time.Hour},
		{"*/15 * * * *", 15 * time.Minute},
		{"0 9 * * 1-5", 72 * time.Hour}, // Friday 9:00 to Monday 9:00
		{"30 2 * * *", 24 * time.Hour},
	}
	for _, c := range cases {
		sched, err := reconcile.ParseSchedule(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if got := reconcile.LongestGap(sched, from); got != c.want {
			t.Errorf("%s: longest gap %v, want %v", c.spec, got, c.want)
		}
	}
}

// TestScheduleForms: each form of schedule a user may bring (standard cron,
// descriptors, @every, and AWS's cron and rate as DTH and EventBridge
// write them) with its next activations from a fixed time, and the forms
// refused with why.
func TestScheduleForms(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 12, 5, 10, 17, 30, 0, time.UTC) // a Saturday
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		spec string
		want []string // the next activations after from, UTC
	}{
		// DTH's default ec2CronExpression: every hour, on the hour.
		{"0/60 * * * ? *", []string{"2026-12-05T11:00:00Z", "2026-12-05T12:00:00Z", "2026-12-05T13:00:00Z"}},
		{"cron(0/60 * * * ? *)", []string{"2026-12-05T11:00:00Z", "2026-12-05T12:00:00Z"}},
		{"0/15 * * * ? *", []string{"2026-12-05T10:30:00Z", "2026-12-05T10:45:00Z", "2026-12-05T11:00:00Z"}},
		// AWS numbers Sunday 1: "1" is Sunday, "2-6" Monday to Friday.
		{"0 18 ? * 1 *", []string{"2026-12-06T18:00:00Z", "2026-12-13T18:00:00Z"}},
		{"cron(30 2 ? * 2-6 *)", []string{"2026-12-07T02:30:00Z", "2026-12-08T02:30:00Z"}},
		{"0 2 ? * MON,FRI *", []string{"2026-12-07T02:00:00Z", "2026-12-11T02:00:00Z", "2026-12-14T02:00:00Z"}},
		{"0 9 1 * ? 2027", []string{"2027-01-01T09:00:00Z", "2027-02-01T09:00:00Z"}},
		{"0 9 1 1 ? 2026,2028-2029", []string{"2028-01-01T09:00:00Z", "2029-01-01T09:00:00Z"}},
		{"0 9 1 1 ? 2025", nil}, // no activation left
		{"rate(1 hour)", []string{"2026-12-05T11:17:30Z", "2026-12-05T12:17:30Z"}},
		{"rate(30 minutes)", []string{"2026-12-05T10:47:30Z", "2026-12-05T11:17:30Z"}},
		{"rate(1 day)", []string{"2026-12-06T10:17:30Z"}},
		{"rate(2 days)", []string{"2026-12-07T10:17:30Z"}},
		// Standard cron and robfig's forms, in the time of from (UTC here).
		{"*/20 * * * *", []string{"2026-12-05T10:20:00Z", "2026-12-05T10:40:00Z"}},
		{"0 3 * * 0", []string{"2026-12-06T03:00:00Z"}}, // cron's Sunday is 0
		{"@daily", []string{"2026-12-06T00:00:00Z"}},
		{"@every 6h", []string{"2026-12-05T16:17:30Z", "2026-12-05T22:17:30Z"}},
	} {
		sched, err := reconcile.ParseSchedule(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		next := from
		for i, w := range tc.want {
			next = sched.Next(next)
			if !next.Equal(at(w)) {
				t.Errorf("%q: activation %d at %v, want %s", tc.spec, i+1, next.UTC(), w)
				break
			}
		}
		if tc.want == nil && !sched.Next(from).IsZero() {
			t.Errorf("%q: activation at %v, want none", tc.spec, sched.Next(from))
		}
	}
	for spec, why := range map[string]string{
		"0 10 L * ? *":       "L and W",
		"0 10 15W * ? *":     "L and W",
		"0 10 ? * 6L *":      "L and #",
		"0 10 ? * 3#2 *":     "L and #",
		"0 10 ? * 8 *":       "1 (SUN) to 7 (SAT)",
		"0 10 ? * 0 *":       "1 (SUN) to 7 (SAT)",
		"0 10 * * ? 1969":    "year",
		"0 10 * * ? 2030-29": "year",
		"cron(0 10 * * ? *":  "closing parenthesis",
		"cron(0 10 * * ?)":   "6 fields",
		"rate(0 hours)":      "1 to 100000",
		"rate(1 week)":       "rate(N minutes|hours|days)",
		"rate(1 hour":        "rate(N minutes|hours|days)",
		"rate(hour)":         "rate(N minutes|hours|days)",
		"61 * * * *":         "",
	} {
		_, err := reconcile.ParseSchedule(spec)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: error %v, want one that says %q", spec, err, why)
		}
	}
}

// fakeClock is a Clock that moves only when the test says.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	c  chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := fakeWaiter{c.now.Add(d), make(chan time.Time, 1)}
	c.waiters = append(c.waiters, w)
	return w.c
}

// waiting is how many After calls wait.
func (c *fakeClock) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// advance moves the time on by d, firing what is due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.c <- c.now
	}
	c.waiters = kept
}

// runsOf lists the runs of the runs bucket, oldest first.
func runsOf(t *testing.T, js jetstream.JetStream) []reconcile.RunState {
	t.Helper()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, reconcile.RunsBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []reconcile.RunState
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var st reconcile.RunState
		if json.Unmarshal(e.Value(), &st) == nil && st.ID != "" {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b reconcile.RunState) int { return a.Started.Compare(b.Started) })
	return out
}

// TestScheduledRunsStart: with on_start and an AWS rate, a replica's
// Schedule starts a run at once (trigger "start"), none before the rate's
// hour has passed on its clock, then one (trigger "schedule"), and one
// more each hour after.
func TestScheduledRunsStart(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 2)
	seed(t, e)
	e.task.Reconcile = transfer.ReconcileConfig{Schedule: "rate(1 hour)", OnStart: true}
	clk := &fakeClock{now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	r := startReplicaWith(t, e, ns.ClientURL(), true, replicaOpts{cfg: reconcile.ServiceConfig{
		LockTTL: 3 * time.Second, Poll: 50 * time.Millisecond, Clock: clk}})
	ctx, cancel := context.WithCancel(context.Background())
	scheduled := make(chan error, 1)
	go func() { scheduled <- r.svc.Schedule(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-scheduled; err != nil {
			t.Error(err)
		}
	})

	triggers := func() []string {
		var out []string
		for _, st := range runsOf(t, r.js) {
			out = append(out, st.Trigger)
		}
		return out
	}
	testkit.WaitFor(t, 30*time.Second, "the on_start run", func() bool { return len(runsOf(t, r.js)) == 1 })
	waitRun(t, r.svc, runsOf(t, r.js)[0].ID)
	testkit.WaitFor(t, 10*time.Second, "the schedule to wait on the clock", func() bool { return clk.waiting() == 1 })
	clk.advance(59 * time.Minute)
	time.Sleep(300 * time.Millisecond) // a run started now would show by then
	if got := triggers(); !slices.Equal(got, []string{"start"}) {
		t.Fatalf("runs after 59 minutes: %v, want only the on_start one", got)
	}
	for hour, step := range []time.Duration{time.Minute, time.Hour} { // to 11:00, then 12:00
		hour++
		clk.advance(step)
		testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("scheduled run %d", hour), func() bool { return len(runsOf(t, r.js)) == 1+hour })
		runs := runsOf(t, r.js)
		waitRun(t, r.svc, runs[len(runs)-1].ID)
		testkit.WaitFor(t, 10*time.Second, "the schedule to wait again", func() bool { return clk.waiting() == 1 })
	}
	if got := triggers(); !slices.Equal(got, []string{"start", "schedule", "schedule"}) {
		t.Errorf("runs: %v", got)
	}
}

// TestScheduleFollowsAReload: when a reload replaces the tasks, Schedule
// follows the new set: a task added with on_start runs once then, a
// schedule a task gains is followed (and its interval exported), a task
// that existed before does not run on_start again, and a schedule removed
// starts nothing more.
func TestScheduleFollowsAReload(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 2)
	seed(t, e)
	clk := &fakeClock{now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	tasks := &swapTasks{}
	r := startReplicaWith(t, e, ns.ClientURL(), true, replicaOpts{cfg: reconcile.ServiceConfig{
		LockTTL: 3 * time.Second, Poll: 50 * time.Millisecond, Clock: clk}, tasks: tasks})
	ctx, cancel := context.WithCancel(context.Background())
	scheduled := make(chan error, 1)
	go func() { scheduled <- r.svc.Schedule(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-scheduled; err != nil {
			t.Error(err)
		}
	})
	time.Sleep(300 * time.Millisecond)
	if runs := runsOf(t, r.js); len(runs) != 0 || clk.waiting() != 0 {
		t.Fatalf("runs %v and %d schedules without any configured", runs, clk.waiting())
	}

	// The reload: t1 gains a schedule and on_start, t2 comes with on_start.
	t1, _ := tasks.Current()
	sides := func(task *transfer.Task) *reconcile.TaskSides {
		ts := *t1["t1"]
		rt := *ts.Runtime
		rt.Task = task
		ts.Runtime = &rt
		return &ts
	}
	scheduledT1 := *e.task
	scheduledT1.Reconcile = transfer.ReconcileConfig{Schedule: "rate(1 hour)", OnStart: true}
	added := *e.task
	added.Name, added.Reconcile = "t2", transfer.ReconcileConfig{OnStart: true}
	tasks.set(map[string]*reconcile.TaskSides{"t1": sides(&scheduledT1), "t2": sides(&added)})
	testkit.WaitFor(t, 30*time.Second, "the on_start run of the task added", func() bool { return len(runsOf(t, r.js)) == 1 })
	if st := runsOf(t, r.js)[0]; st.Task != "t2" || st.Trigger != "start" {
		t.Fatalf("run %+v, want t2's on_start", st)
	}
	waitRun(t, r.svc, runsOf(t, r.js)[0].ID)
	testkit.WaitFor(t, 10*time.Second, "t1's schedule", func() bool { return clk.waiting() == 1 })
	if got := testutil.ToFloat64(r.m.ReconcileInterval.WithLabelValues("t1")); got != 3600 {
		t.Fatalf("t1's interval %v", got)
	}
	clk.advance(time.Hour)
	testkit.WaitFor(t, 30*time.Second, "t1's scheduled run", func() bool { return len(runsOf(t, r.js)) == 2 })
	if st := runsOf(t, r.js)[1]; st.Task != "t1" || st.Trigger != "schedule" {
		t.Fatalf("run %+v, want t1's scheduled one", st)
	}
	waitRun(t, r.svc, runsOf(t, r.js)[1].ID)

	// Another reload: t1 loses its schedule.
	tasks.set(map[string]*reconcile.TaskSides{"t1": sides(e.task), "t2": sides(&added)})
	testkit.WaitFor(t, 10*time.Second, "t1's interval removed", func() bool { return testutil.CollectAndCount(r.m.ReconcileInterval) == 0 })
	clk.advance(2 * time.Hour)
	time.Sleep(300 * time.Millisecond)
	if n := len(runsOf(t, r.js)); n != 2 {
		t.Fatalf("%d runs after the schedule was removed, want 2", n)
	}
}
