package reconcile

// Schedules: when each task's runs start, on every replica (the task's
// lock lets one run).

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// ParseSchedule parses a task's reconcile schedule, in any of the forms
// its users write:
//   - standard cron, five fields (minute hour day-of-month month
//     day-of-week, 0 = Sunday), in the replica's time zone; a descriptor
//     (@hourly, @daily); a fixed rate, "@every 6h";
//   - AWS cron, as DTH's ec2CronExpression and EventBridge write it: six
//     fields (minute hour day-of-month month day-of-week year), bare or
//     inside "cron(...)", in UTC; day-of-week 1-7 is SUN-SAT; "?" is any;
//     L, W and # are refused;
//   - AWS rate, "rate(1 hour)", "rate(30 minutes)", "rate(1 day)".
func ParseSchedule(spec string) (cron.Schedule, error) {
	spec = strings.TrimSpace(spec)
	if inner, ok := strings.CutPrefix(spec, "rate("); ok {
		return parseRate(strings.TrimSuffix(inner, ")"), strings.HasSuffix(inner, ")"))
	}
	if inner, ok := strings.CutPrefix(spec, "cron("); ok {
		if !strings.HasSuffix(inner, ")") {
			return nil, errors.New("cron( without its closing parenthesis")
		}
		return parseAWSCron(strings.TrimSuffix(inner, ")"))
	}
	if len(strings.Fields(spec)) == 6 {
		return parseAWSCron(spec)
	}
	return cron.ParseStandard(spec)
}

var rateRE = regexp.MustCompile(`^\s*(\d+)\s+(minutes?|hours?|days?)\s*$`)

// parseRate reads the inside of "rate(N unit)".
func parseRate(inner string, closed bool) (cron.Schedule, error) {
	m := rateRE.FindStringSubmatch(inner)
	if !closed || m == nil {
		return nil, errors.New(`want rate(N minutes|hours|days), e.g. "rate(1 hour)"`)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 || n > 100000 {
		return nil, fmt.Errorf("rate of %s: want a whole number from 1 to 100000", m[1])
	}
	unit := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[m[2][0]]
	return cron.Every(time.Duration(n) * unit), nil
}

// parseAWSCron reads the six fields of an AWS cron expression into a
// robfig schedule in UTC, with the year (the sixth field) as a filter.
func parseAWSCron(expr string) (cron.Schedule, error) {
	f := strings.Fields(expr)
	if len(f) != 6 {
		return nil, fmt.Errorf("AWS cron has 6 fields (minute hour day-of-month month day-of-week year), got %d", len(f))
	}
	dom, dow, year := f[2], f[4], f[5]
	switch {
	case strings.ContainsAny(dom, "LW"):
		return nil, fmt.Errorf("day-of-month %q: L and W (last, weekday) are not supported", dom)
	case strings.ContainsAny(dow, "L#"):
		return nil, fmt.Errorf("day-of-week %q: L and # (last, nth) are not supported", dow)
	}
	dow, err := awsWeekdays(dow)
	if err != nil {
		return nil, err
	}
	years, err := parseYears(year)
	if err != nil {
		return nil, err
	}
	s, err := cron.ParseStandard("CRON_TZ=UTC " + strings.Join([]string{f[0], f[1], dom, f[3], dow}, " "))
	if err != nil {
		return nil, err
	}
	if years == nil {
		return s, nil
	}
	last := 0
	for y := range years {
		last = max(last, y)
	}
	return yearSchedule{s, years, last}, nil
}

// awsWeekdays turns AWS's day-of-week numbers (1-7, Sunday first) into
// cron's (0-6); names (SUN-SAT), * and ? stay as they are.
func awsWeekdays(field string) (string, error) {
	items := strings.Split(field, ",")
	for i, item := range items {
		span, step, hasStep := strings.Cut(item, "/")
		bounds := strings.Split(span, "-")
		for j, b := range bounds {
			n, err := strconv.Atoi(b)
			if err != nil {
				continue // a name, * or ?
			}
			if n < 1 || n > 7 {
				return "", fmt.Errorf("day-of-week %q: AWS numbers the days 1 (SUN) to 7 (SAT)", field)
			}
			bounds[j] = strconv.Itoa(n - 1)
		}
		items[i] = strings.Join(bounds, "-")
		if hasStep {
			items[i] += "/" + step
		}
	}
	return strings.Join(items, ","), nil
}

// parseYears reads the year field: nil for * or ?, else the years named
// (1970-2199, lists and ranges).
func parseYears(field string) (map[int]bool, error) {
	if field == "*" || field == "?" {
		return nil, nil
	}
	years := map[int]bool{}
	for _, item := range strings.Split(field, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 1970 || b > 2199 || a > b {
			return nil, fmt.Errorf("year %q: want *, a year from 1970 to 2199, a list or a range of them", field)
		}
		for y := a; y <= b; y++ {
			years[y] = true
		}
	}
	return years, nil
}

// yearSchedule is a schedule limited to some years.
type yearSchedule struct {
	cron.Schedule
	years map[int]bool
	last  int // the latest of years
}

// Next is the first activation after t in one of the years; zero if none
// is left.
func (y yearSchedule) Next(t time.Time) time.Time {
	for range 250 { // at most one step a year: 1970-2199
		next := y.Schedule.Next(t)
		if next.IsZero() || next.Year() > y.last {
			return time.Time{}
		}
		if y.years[next.Year()] {
			return next
		}
		// A year not named: on from its last second.
		t = time.Date(next.Year()+1, 1, 1, 0, 0, 0, 0, next.Location()).Add(-time.Second)
	}
	return time.Time{}
}

// LongestGap is the longest time between two consecutive activations of
// sched among its next few after from (a weekday-only schedule has a
// longer gap over the weekend than between weekdays).
func LongestGap(sched cron.Schedule, from time.Time) time.Duration {
	var longest time.Duration
	prev := sched.Next(from)
	for range 16 {
		next := sched.Next(prev)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(prev))
		prev = next
	}
	return longest
}

// Clock is the time the schedules follow: the real one, or a test's.
type Clock interface {
	Now() time.Time
	// After sends the time on the channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Schedule starts each task's runs on its schedule (and once now, for
// tasks with on_start) until ctx is done. Every replica schedules; the
// task's lock lets one of them run it, the others skip that time. When a
// reload replaces the tasks, the schedules follow the new set: a task
// whose schedule did not change keeps its timer, a task added with
// on_start runs once then.
func (s *Service) Schedule(ctx context.Context) error {
	sc := &scheduler{s: s, following: map[string]following{}}
	defer sc.stop()
	t := time.NewTicker(s.cfg.LockTTL)
	defer t.Stop()
	for {
		tasks, replaced := s.tasks.Current()
		if err := sc.follow(ctx, tasks); err != nil {
			return err
		}
		if !s.adoptUntil(ctx, replaced, t.C) {
			return nil
		}
	}
}

// adoptUntil adopts the runs whose coordinator went silent at each tick
// until the task set is replaced (true) or ctx is done (false).
func (s *Service) adoptUntil(ctx context.Context, replaced <-chan struct{}, tick <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-replaced:
			return true
		case <-tick:
			s.Adopt(ctx)
		}
	}
}

// scheduler follows the schedules of the set of tasks in use.
type scheduler struct {
	s         *Service
	tasks     map[string]bool      // the set followed last; nil before the first
	following map[string]following // the schedules followed, by task
	wg        sync.WaitGroup
}

// following is one task's schedule being followed.
type following struct {
	spec   string
	cancel context.CancelFunc
}

// follow makes the schedules followed those of tasks: it stops following
// the schedules of the tasks removed (or changed) and starts following the
// new ones. The on_start runs are started for every task of the first set,
// and after that for the tasks a reload added.
func (sc *scheduler) follow(ctx context.Context, tasks map[string]*TaskSides) error {
	s := sc.s
	scheds := map[string]cron.Schedule{}
	for name, ts := range tasks {
		if spec := ts.Runtime.Task.Reconcile.Schedule; spec != "" {
			sched, err := ParseSchedule(spec)
			if err != nil {
				return fmt.Errorf("task %s: reconcile.schedule %q: %w", name, spec, err)
			}
			scheds[name] = sched
		}
	}
	for name, f := range sc.following {
		if ts := tasks[name]; ts == nil || ts.Runtime.Task.Reconcile.Schedule != f.spec {
			f.cancel()
			delete(sc.following, name)
			if s.m != nil {
				s.m.ReconcileInterval.DeleteLabelValues(name)
			}
		}
	}
	var removed []string
	for name := range sc.tasks {
		if tasks[name] == nil {
			removed = append(removed, name)
		}
	}
	for name, ts := range tasks {
		if ts.Runtime.Task.Reconcile.OnStart && !sc.tasks[name] {
			sc.wg.Go(func() { s.startScheduled(ctx, name, "start") })
		}
	}
	for name, sched := range scheds {
		if _, ok := sc.following[name]; ok {
			continue
		}
		spec := tasks[name].Runtime.Task.Reconcile.Schedule
		sc.exportInterval(name, spec, sched)
		fctx, cancel := context.WithCancel(ctx)
		sc.following[name] = following{spec: spec, cancel: cancel}
		sc.wg.Go(func() { s.follow(fctx, name, sched) })
	}
	sc.tasks = map[string]bool{}
	for name := range tasks {
		sc.tasks[name] = true
	}
	s.success.refresh(removed)
	return nil
}

// exportInterval sets the gauge the overdue alert measures against, and
// warns when the runs bucket keeps runs for less than the alert needs.
func (sc *scheduler) exportInterval(task, spec string, sched cron.Schedule) {
	s := sc.s
	gap := LongestGap(sched, s.cfg.Clock.Now())
	if s.m != nil {
		s.m.ReconcileInterval.WithLabelValues(task).Set(gap.Seconds())
	}
	if 2*gap > s.cfg.ReportAge {
		s.log.Warn("reconcile runs are kept for less than twice the schedule: a success may expire before the overdue alert would fire; after a restart the alert then counts from the replicas' start",
			"task", task, "schedule", spec, "kept", s.cfg.ReportAge)
	}
}

// stop stops following every schedule and waits for the runs it was
// starting.
func (sc *scheduler) stop() {
	for _, f := range sc.following {
		f.cancel()
	}
	sc.wg.Wait()
}

// follow starts task's runs at each activation of sched, by the service's
// clock, until ctx is done or the schedule has no activation left.
func (s *Service) follow(ctx context.Context, task string, sched cron.Schedule) {
	for {
		now := s.cfg.Clock.Now()
		next := sched.Next(now)
		if next.IsZero() {
			s.log.Info("reconcile schedule has no run left", "task", task)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.cfg.Clock.After(next.Sub(now)):
		}
		s.startScheduled(ctx, task, "schedule")
	}
}

// startScheduled starts a run of task that no person asked for: a run
// already going is no error, only logged.
func (s *Service) startScheduled(ctx context.Context, task, trigger string) {
	_, err := s.Start(ctx, task, Options{}, trigger)
	var re *RunningError
	switch {
	case errors.As(err, &re):
		s.log.Info("reconcile run already in progress: skipped", "task", task, "running", re.ID, "trigger", trigger)
	case err != nil && ctx.Err() == nil:
		s.log.Error("reconcile run did not start", "task", task, "trigger", trigger, "err", err)
	}
}
