package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// The implementations of the interfaces handlers declares: the gateway's
// HTTP side over ingest, the queue and the reconciler.

// deadLetters is the admin API's view of the queue's dead-letter stream.
type deadLetters struct{ q *transfer.Queue }

var _ handlers.DeadLetterQueue = deadLetters{}

func (d deadLetters) DeadLetters(ctx context.Context, f handlers.DeadLetterFilter, limit int) ([]any, error) {
	dls, err := d.q.DeadLetters(ctx, transfer.DeadLetterFilter(f), limit)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(dls))
	for i := range dls {
		out[i] = dls[i]
	}
	return out, nil
}

func (d deadLetters) Redrive(ctx context.Context, f handlers.DeadLetterFilter) (int, error) {
	return d.q.Redrive(ctx, transfer.DeadLetterFilter(f))
}

// reconciler is the admin API's reconciler: runs it starts are triggered
// by "api".
type reconciler struct{ s *reconcile.Service }

var _ handlers.Reconciler = reconciler{}

func (r reconciler) Start(ctx context.Context, task string, req handlers.ReconcileRequest) (handlers.ReconcileRun, error) {
	st, err := r.s.Start(ctx, task, reconcile.Options{Mode: req.Mode, Verify: req.Verify,
		MaxDeletes: req.MaxDeletes, Prefixes: req.Prefixes}, "api")
	return reconcileRun(st, err)
}

func (r reconciler) Get(ctx context.Context, id string) (handlers.ReconcileRun, error) {
	return reconcileRun(r.s.Get(ctx, id))
}

func (r reconciler) WriteReport(ctx context.Context, id string, w io.Writer) error {
	return r.s.WriteReport(ctx, id, w)
}

func (r reconciler) List(ctx context.Context, task string, limit int) ([]handlers.ReconcileRun, error) {
	sts, err := r.s.List(ctx, task, limit)
	runs := make([]handlers.ReconcileRun, len(sts))
	for i, st := range sts {
		runs[i] = handlers.ReconcileRun{ID: st.ID, State: st}
	}
	return runs, err
}

// reconcileRun is a run and an error of the reconciler as handlers reads
// them.
func reconcileRun(st reconcile.RunState, err error) (handlers.ReconcileRun, error) {
	var running *reconcile.RunningError
	switch {
	case err == nil:
		return handlers.ReconcileRun{ID: st.ID, State: st}, nil
	case errors.As(err, &running):
		return handlers.ReconcileRun{}, &handlers.ReconcileRunning{ID: running.ID}
	case errors.Is(err, reconcile.ErrNoTask):
		return handlers.ReconcileRun{}, fmt.Errorf("%w: %w", handlers.ErrNoTask, err)
	case errors.Is(err, reconcile.ErrNoRun):
		return handlers.ReconcileRun{}, fmt.Errorf("%w: %w", handlers.ErrNoRun, err)
	}
	return handlers.ReconcileRun{}, err
}
