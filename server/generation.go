package main

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/handlers/ingestsink"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest"
	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
	"github.com/oss2s3/oss2s3/transfer/ingest/sqsingest"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// generation is one configuration as this process serves it: the file's
// settings, each task with its clients, and what is built from them (the
// routes, the gateway's handler with its secrets and tokens, the SQS
// ingesters). It is never changed once installed: a reload builds the
// next one and installs it with one atomic store (live). Whatever reads
// the configuration reads that pointer once for a unit of work, so a
// request, a job, a reconcile run or an SQS batch sees one configuration,
// old or new, never a mix: the gateway takes the handler of the
// generation in use when a request arrives, the workers look a job's task
// up when they take it, the reconciler and the SQS ingesters read the
// generation at each run and each batch.
//
// The settings a running process cannot change (restartOnlyChanges) are
// the same in every generation: a reload that changes one is refused.
type generation struct {
	cfg      *Config
	loadedAt time.Time
	tasks    map[string]*transfer.TaskRuntime
	sides    map[string]*reconcile.TaskSides // each task as the reconciler lists it
	order    []*transfer.Task                // the tasks in the file's order

	// handler serves every request: the starting one (503 for what needs
	// JetStream) until JetStream is ready, then the gateway's.
	handler http.Handler
	// Built once JetStream is ready (withJetStream); nil before.
	intake   *ingest.Intake
	receiver *ingest.Receiver
	sqs      []*sqsingest.Ingester
	mns      *mns.Verifier // nil: MNS off

	// reload is the reload that installed this generation; nil for the
	// one loaded at start.
	reload *handlers.ReloadStatus

	// replaced is closed when the next generation is installed: the
	// reconcile schedules and the SQS ingesters follow the new one then.
	replaced chan struct{}
}

// task returns the configured task named name, or nil.
func (g *generation) task(name string) *transfer.Task {
	if rt := g.tasks[name]; rt != nil {
		return rt.Task
	}
	return nil
}

// live holds the generation in use: the one atomic pointer every part of
// the process reads the configuration through. It is the workers' and the
// sweeper's transfer.TaskSet and the reconciler's reconcile.Tasks.
type live struct{ p atomic.Pointer[generation] }

func (l *live) load() *generation { return l.p.Load() }

// Tasks returns the tasks of the generation in use (transfer.TaskSet).
func (l *live) Tasks() map[string]*transfer.TaskRuntime { return l.p.Load().tasks }

// Current returns the reconciler's view of the generation in use and the
// channel closed when it is replaced (reconcile.Tasks).
func (l *live) Current() (map[string]*reconcile.TaskSides, <-chan struct{}) {
	g := l.p.Load()
	return g.sides, g.replaced
}

// ServeHTTP serves r with the handler of the generation in use.
func (l *live) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.p.Load().handler.ServeHTTP(w, r)
}

// newGeneration builds the tasks of cfg: the OSS and S3 clients, the
// reconciler's listers. A task the generation prev has with the very same
// settings is taken over as it is (its clients, their caches and
// connections, its bandwidth cap's bucket); the others are built anew, as
// at start, and fail as at start (a Secrets Manager secret that does not
// exist). Nothing is installed, and no metric touched. a.mu is held (or
// nothing runs yet).
func (a *app) newGeneration(ctx context.Context, cfg *Config, prev *generation) (*generation, error) {
	g := &generation{cfg: cfg, loadedAt: time.Now(), tasks: map[string]*transfer.TaskRuntime{},
		sides: map[string]*reconcile.TaskSides{}, replaced: make(chan struct{})}
	for i := range cfg.Tasks {
		t := &cfg.Tasks[i]
		g.order = append(g.order, t)
		if prev != nil {
			if rt := prev.tasks[t.Name]; rt != nil && reflect.DeepEqual(*rt.Task, *t) {
				g.tasks[t.Name], g.sides[t.Name] = rt, prev.sides[t.Name]
				continue
			}
		}
		rt, sides, err := a.openTask(ctx, t)
		if err != nil {
			return nil, err
		}
		g.tasks[t.Name], g.sides[t.Name] = rt, sides
	}
	if a.queue == nil { // withJetStream builds the gateway's once it is ready
		g.handler = handlers.NewStarting(a.log, a.m, a.reg, &a.startup, handlersConfig(cfg))
	}
	return g, nil
}

// openTask builds one task's clients.
func (a *app) openTask(ctx context.Context, t *transfer.Task) (*transfer.TaskRuntime, *reconcile.TaskSides, error) {
	src, err := transfer.OpenOSSSource(ctx, t.Source, nil, a.log.With("task", t.Name))
	if err != nil {
		return nil, nil, fmt.Errorf("task %s: %w", t.Name, err)
	}
	// The counter is created at the first wait: a task of a reload that
	// is refused leaves no series behind.
	wait := sync.OnceValue(func() prometheus.Counter { return a.m.SourceBandwidthWait.WithLabelValues(t.Name) })
	src.SetBandwidth(int64(t.Options.Bandwidth), func(d time.Duration) { wait().Add(d.Seconds()) })
	dst, err := transfer.NewS3Destination(ctx, t.Destination)
	if err != nil {
		return nil, nil, fmt.Errorf("task %s: %w", t.Name, err)
	}
	rt := &transfer.TaskRuntime{Task: t, Source: src, Destination: dst}
	sides, err := reconcile.NewTaskSides(rt, src, dst)
	if err != nil {
		return nil, nil, err
	}
	return rt, sides, nil
}

// withJetStream builds what g serves once JetStream is ready: the intake
// (routing by g's tasks), the receiver (g's secrets and limits; it
// remembers the requests prev's accepted), the gateway's handler and the
// SQS ingesters (prev's, if the sqs section did not change).
func (a *app) withJetStream(ctx context.Context, g, prev *generation) error {
	cfg := g.cfg
	g.intake = ingest.NewIntake(failFast{a.queue}, transfer.NewRouter(g.order), a.m, a.log)
	if cfg.MNS.Enabled {
		if prev != nil && prev.mns != nil && prev.cfg.MNS.CertHostPattern == cfg.MNS.CertHostPattern {
			g.mns = prev.mns // its certificate cache
		} else {
			allowed, _ := mns.HostPattern(cfg.MNS.CertHostPattern) // validated with the configuration
			g.mns = &mns.Verifier{AllowedHost: allowed}
		}
	}
	icfg := ingestConfig(cfg, g.mns)
	if prev != nil && prev.receiver != nil {
		g.receiver = prev.receiver.With(g.intake, icfg)
	} else {
		g.receiver = ingest.NewReceiver(g.intake, icfg)
	}
	if prev != nil && prev.intake != nil && reflect.DeepEqual(prev.cfg.SQS, cfg.SQS) {
		g.sqs = prev.sqs
	} else {
		for _, sc := range cfg.SQS {
			in, err := sqsingest.New(ctx, sc, a.sqsRouting(sc.Task), a.m, a.log)
			if err != nil {
				return err
			}
			g.sqs = append(g.sqs, in)
		}
	}
	hcfg := handlersConfig(cfg)
	if a.recon != nil {
		hcfg.Reconciler = reconciler{a.recon}
	}
	hcfg.Tasks = taskLister{tasks: g.order, queue: a.queue, recon: a.recon, now: time.Now}
	hcfg.ConfigStatus = configStatus{g: g, refused: &a.refused}
	g.handler = handlers.New(a.log, a.m, a.reg, ingestsink.New(g.receiver), readiness{queue: a.queue, draining: &a.draining},
		deadLetters{a.queue}, hcfg)
	return nil
}

// sqsRouting is what an SQS ingester queues each batch with: the intake
// and the task named task of the generation in use.
func (a *app) sqsRouting(task string) func() sqsingest.Routing {
	return func() sqsingest.Routing {
		g := a.live.load()
		return sqsingest.Routing{Intake: g.intake, Task: g.task(task)}
	}
}

// install makes g the generation in use. The metrics learn its tasks
// first, so that the first job of a task it adds counts in series that
// exist; then one store switches everything over, and the previous
// generation's replaced channel tells the reconcile schedules and the SQS
// ingesters.
func (a *app) install(g *generation) {
	names := make([]string, len(g.order))
	for i, t := range g.order {
		names[i] = t.Name
	}
	a.m.SetTasks(names)
	for _, t := range g.order {
		a.m.SourceBandwidth.WithLabelValues(t.Name).Set(float64(t.Options.Bandwidth))
	}
	if prev := a.live.p.Swap(g); prev != nil {
		close(prev.replaced)
	}
}

// runSQS runs the SQS ingesters of the generation in use until ctx is
// done. When a reload changes the sqs section, the ingesters of the
// previous generation stop (each finishes the batch in hand: its jobs are
// queued, its messages deleted) and those of the new one start; an
// ingester both share keeps running.
func (a *app) runSQS(ctx context.Context) {
	running := map[*sqsingest.Ingester]context.CancelFunc{}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		g := a.live.load()
		keep := map[*sqsingest.Ingester]bool{}
		for _, in := range g.sqs {
			keep[in] = true
			if running[in] == nil {
				ictx, cancel := context.WithCancel(ctx)
				running[in] = cancel
				wg.Go(func() { _ = in.Run(ictx) })
			}
		}
		for in, cancel := range running {
			if !keep[in] {
				cancel()
				delete(running, in)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-g.replaced:
		}
	}
}
