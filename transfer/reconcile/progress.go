package reconcile

// Progress a person can read: a run's objects and bytes done and to do,
// a percentage and the time left at a moving rate, for the API, the CLI's
// bar, the status page and the progress gauges.

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

// RunProgress is how far a run is. A run lists (its diff), and queues
// copies as it goes; the copies end after the listing. Each phase tells
// its own figures; the run's Percent is the phase behind (the smaller of
// the two while both go on) and its ETA the later of the two.
type RunProgress struct {
	// Phase is listing (the diff runs), copying (the diff is done, some
	// of its copies are not) or done.
	Phase      string        `json:"phase"`
	Percent    *float64      `json:"percent"`     // null: not known yet
	ETASeconds *float64      `json:"eta_seconds"` // null: not known yet
	Listing    PhaseProgress `json:"listing"`
	Copies     PhaseProgress `json:"copies"`
}

// PhaseProgress is one phase of a run. Listing counts source objects
// listed, out of the source bucket's count when it is known (a run over
// the whole bucket); its rate is objects a second. Copies counts the
// copy jobs that ended, out of those queued so far, and their bytes; its
// rate is bytes a second (objects a second when the objects are empty).
type PhaseProgress struct {
	Objects      int64    `json:"objects"`
	ObjectsTotal int64    `json:"objects_total"` // 0: not known
	Bytes        int64    `json:"bytes"`
	BytesTotal   int64    `json:"bytes_total"` // 0: not known
	Percent      *float64 `json:"percent"`
	Rate         float64  `json:"rate_per_second"` // over the last minute of looks at the run
	ETASeconds   *float64 `json:"eta_seconds"`
}

// Phases of a run.
const (
	PhaseListing = "listing"
	PhaseCopying = "copying"
	PhaseDone    = "done"
)

// rateWindow is how far back the moving rate looks; maxSamples and
// maxMetered bound the meter's memory (samples a run, runs).
const (
	rateWindow  = time.Minute
	minRateSpan = time.Second
	minSpacing  = 250 * time.Millisecond
	maxSamples  = 64
	maxMetered  = 64
	notDonePct  = 99.9 // a phase not done shows at most this, whatever its estimate says
	donePercent = 100.0
)

// sample is one look at a run: when, objects listed, copies ended and
// their bytes.
type sample struct {
	at                   time.Time
	listed, ended, bytes int64
}

// Meter keeps the recent looks at each run (reads of the run, the
// progress loop's, a CLI's polls), for moving rates. It holds at most
// maxMetered runs (the least recently seen goes first) of maxSamples
// looks each. Its zero value is not ready: use NewMeter.
type Meter struct {
	mu   sync.Mutex
	runs map[string][]sample
	seen map[string]time.Time
}

// NewMeter returns an empty Meter.
func NewMeter() *Meter {
	return &Meter{runs: map[string][]sample{}, seen: map[string]time.Time{}}
}

// observe records x for run id and returns the rates over the window:
// objects listed, copies ended and bytes copied a second; ok is false
// until the looks span minRateSpan.
func (m *Meter) observe(id string, x sample) (listed, ended, bytes float64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.runs[id]
	if s == nil && len(m.runs) >= maxMetered {
		m.evictLocked()
	}
	if n := len(s); n == 0 || x.at.Sub(s[n-1].at) >= minSpacing {
		s = append(s, x)
	} else {
		s[n-1] = sample{at: s[n-1].at, listed: x.listed, ended: x.ended, bytes: x.bytes}
	}
	cut := 0
	for cut < len(s)-1 && (x.at.Sub(s[cut].at) > rateWindow || len(s)-cut > maxSamples) {
		cut++
	}
	s = append(s[:0:0], s[cut:]...)
	m.runs[id], m.seen[id] = s, x.at
	first, last := s[0], s[len(s)-1]
	span := last.at.Sub(first.at)
	if span < minRateSpan {
		return 0, 0, 0, false
	}
	sec := span.Seconds()
	return float64(last.listed-first.listed) / sec, float64(last.ended-first.ended) / sec,
		float64(last.bytes-first.bytes) / sec, true
}

func (m *Meter) evictLocked() {
	var oldest string
	for id, at := range m.seen {
		if oldest == "" || at.Before(m.seen[oldest]) {
			oldest = id
		}
	}
	delete(m.runs, oldest)
	delete(m.seen, oldest)
}

// forget drops run id (its progress is final).
func (m *Meter) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.runs, id)
	delete(m.seen, id)
}

// Progress is st's progress at now; it records the look for the rates.
func (m *Meter) Progress(st *RunState, now time.Time) *RunProgress {
	ended := st.Copied + st.Failed + st.Skipped
	listRate, endRate, byteRate, rated := m.observe(st.ID, sample{at: now, listed: st.Listed, ended: ended, bytes: st.BytesDone})
	if !rated {
		listRate, endRate, byteRate = 0, 0, 0
	}
	p := &RunProgress{
		Listing: PhaseProgress{Objects: st.Listed, ObjectsTotal: st.SourceObjects, Bytes: st.ListedBytes, BytesTotal: st.SourceBytes},
		Copies:  PhaseProgress{Objects: ended, ObjectsTotal: st.Jobs, Bytes: st.BytesDone, BytesTotal: st.QueuedBytes},
	}
	report := st.Mode == ModeReport
	switch {
	case st.Done && (report || st.CopiesDone):
		p.Phase = PhaseDone
	case st.Done:
		p.Phase = PhaseCopying
	default:
		p.Phase = PhaseListing
	}
	l := &p.Listing
	l.Rate = listRate
	if st.Done {
		l.Percent, l.ETASeconds = ptr(donePercent), ptr(0)
	} else {
		l.Percent, l.ETASeconds = phase(l.Objects, l.ObjectsTotal, listRate, false)
	}
	c := &p.Copies
	switch {
	case report:
	case c.BytesTotal > 0:
		c.Rate = byteRate
		c.Percent, c.ETASeconds = phase(c.Bytes, c.BytesTotal, c.Rate, st.CopiesDone)
	case c.ObjectsTotal > 0 || st.CopiesDone:
		c.Rate = endRate
		c.Percent, c.ETASeconds = phase(c.Objects, c.ObjectsTotal, c.Rate, st.CopiesDone)
	}
	p.Percent, p.ETASeconds = p.overall(report)
	if p.Phase == PhaseDone {
		m.forget(st.ID)
	}
	return p
}

// overall is the run's percent and time left from its phases': the phase
// behind, and the later end.
func (p *RunProgress) overall(report bool) (pct, eta *float64) {
	l, c := &p.Listing, &p.Copies
	switch {
	case p.Phase == PhaseDone:
		return ptr(donePercent), ptr(0)
	case report || p.Phase == PhaseListing && c.Percent == nil:
		return l.Percent, l.ETASeconds
	case p.Phase == PhaseCopying:
		return c.Percent, c.ETASeconds
	}
	pct = minPtr(l.Percent, c.Percent)
	if l.ETASeconds != nil && c.ETASeconds != nil {
		eta = ptr(math.Max(*l.ETASeconds, *c.ETASeconds))
	}
	return pct, eta
}

// phase is the percent and time left of done out of total at rate.
func phase(done, total int64, rate float64, finished bool) (pct, eta *float64) {
	if finished {
		return ptr(donePercent), ptr(0)
	}
	if total <= 0 {
		return nil, nil
	}
	pct = ptr(math.Min(notDonePct, 100*float64(done)/float64(total)))
	if left := total - done; rate > 0 && left > 0 {
		eta = ptr(float64(left) / rate)
	}
	return pct, eta
}

func ptr(f float64) *float64 { return &f }

func minPtr(a, b *float64) *float64 {
	switch {
	case a == nil:
		return nil // the listing's share is not known: neither is the run's
	case b == nil:
		return a
	}
	return ptr(math.Min(*a, *b))
}

// Statter tells a bucket's object count and bytes (OSSLister).
type Statter interface {
	Stat(ctx context.Context) (objects, bytes int64, err error)
}

// Stat implements Statter with OSS's GetBucketStat, which OSS updates
// about hourly: its figures are an estimate of what a listing will find.
func (l *OSSLister) Stat(ctx context.Context) (objects, bytes int64, err error) {
	var opts []oss.Option
	if l.RequesterPays {
		opts = append(opts, oss.RequestPayer(oss.Requester))
	}
	var st oss.GetBucketStatResult
	send := func() (err error) {
		st, err = l.Bucket.Client.GetBucketStat(l.Bucket.BucketName, opts...)
		return err
	}
	if l.Send != nil {
		err = l.Send(ctx, send)
	} else {
		err = send()
	}
	return st.ObjectCount, st.Storage, err
}

// sourceTotals is the task's source bucket's count and bytes, or zeros
// when its lister cannot tell (not OSS, or the credentials may not read
// the bucket's stat: oss:GetBucketStat), logged.
func (s *Service) sourceTotals(ctx context.Context, ts *TaskSides, task string) (objects, bytes int64) {
	st, ok := ts.Src.(Statter)
	if !ok {
		return 0, 0
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	objects, bytes, err := st.Stat(ctx)
	if err != nil {
		s.log.Info("the source bucket's stat is not available: the run's listing shows no percentage", "task", task, "err", err)
		return 0, 0
	}
	return objects, bytes
}

// activeFor is how long after its diff ends a run's copies are still
// followed by the progress loop (a run whose copies went uncounted ends
// by the idle queue, which a busy queue can put off).
const activeFor = time.Hour

// exportEvery is how often ExportProgress looks at the runs in progress.
const exportEvery = 5 * time.Second

// activeRuns are the runs whose progress this replica exports: those the
// runs bucket shows in progress, or whose copies may be.
type activeRuns struct {
	mu   sync.Mutex
	runs map[string]string // run id -> task
}

func (a *activeRuns) note(st RunState, now time.Time) {
	if st.Done && (st.Mode == ModeReport || now.Sub(st.Finished) > activeFor) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runs == nil {
		a.runs = map[string]string{}
	}
	if _, ok := a.runs[st.ID]; ok || len(a.runs) < maxMetered {
		a.runs[st.ID] = st.Task
	}
}

func (a *activeRuns) remove(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.runs, id)
}

// ids are the runs, oldest first (a run's id begins with its start).
func (a *activeRuns) ids() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]string, 0, len(a.runs))
	for id := range a.runs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ExportProgress keeps oss2s3_reconcile_progress_ratio and
// oss2s3_reconcile_eta_seconds of each task's newest run in progress
// until ctx is done; every replica does, for the runs it sees in the runs
// bucket, whoever coordinates them.
func (s *Service) ExportProgress(ctx context.Context) {
	t := time.NewTicker(exportEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.exportProgress(ctx)
		}
	}
}

func (s *Service) exportProgress(ctx context.Context) {
	newest := map[string]*RunProgress{}
	for _, id := range s.active.ids() {
		st, err := s.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNoRun):
			s.active.remove(id)
			continue
		case err != nil:
			continue
		case st.Progress.Phase == PhaseDone:
			s.active.remove(id)
			continue
		}
		newest[st.Task] = st.Progress
	}
	s.setProgressGauges(newest)
}

// setProgressGauges exports the progress of each task's newest run in
// progress, and removes the series of the tasks with none (or whose share
// or time left is not known).
func (s *Service) setProgressGauges(newest map[string]*RunProgress) {
	if s.m == nil {
		return
	}
	tasks, _ := s.tasks.Current()
	for task := range tasks {
		p := newest[task]
		if p == nil || p.Percent == nil {
			s.m.ReconcileProgress.DeleteLabelValues(task)
		} else {
			s.m.ReconcileProgress.WithLabelValues(task).Set(*p.Percent / 100)
		}
		if p == nil || p.ETASeconds == nil {
			s.m.ReconcileETA.DeleteLabelValues(task)
		} else {
			s.m.ReconcileETA.WithLabelValues(task).Set(*p.ETASeconds)
		}
	}
}
