package main

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// TestTheAPISpeaksTheReconcilersWords: the modes and verify methods the
// admin API takes are the reconciler's, all of them.
func TestTheAPISpeaksTheReconcilersWords(t *testing.T) {
	t.Parallel()
	for _, m := range handlers.ReconcileModes {
		if !reconcile.ValidMode(m) {
			t.Errorf("the API takes mode %q, the reconciler does not", m)
		}
	}
	for _, m := range []string{reconcile.ModeReport, reconcile.ModeCopy, reconcile.ModeSync, reconcile.ModeCopyAll} {
		if !slices.Contains(handlers.ReconcileModes, m) {
			t.Errorf("the reconciler has mode %q, the API does not take it", m)
		}
	}
	for _, v := range handlers.ReconcileVerifies {
		if !reconcile.ValidVerify(v) {
			t.Errorf("the API takes verify %q, the reconciler does not", v)
		}
	}
	for _, v := range []string{reconcile.VerifySize, reconcile.VerifyETag, reconcile.VerifyContent} {
		if !slices.Contains(handlers.ReconcileVerifies, v) {
			t.Errorf("the reconciler has verify %q, the API does not take it", v)
		}
	}
}

// TestReconcilerErrorsAreTheAPIs: the reconciler's errors reach handlers
// as the ones it answers 404 and 409 for.
func TestReconcilerErrorsAreTheAPIs(t *testing.T) {
	t.Parallel()
	if _, err := reconcileRun(reconcile.RunState{}, fmt.Errorf("%w: %q", reconcile.ErrNoTask, "x")); !errors.Is(err, handlers.ErrNoTask) {
		t.Errorf("no task: %v", err)
	}
	if _, err := reconcileRun(reconcile.RunState{}, reconcile.ErrNoRun); !errors.Is(err, handlers.ErrNoRun) {
		t.Errorf("no run: %v", err)
	}
	var running *handlers.ReconcileRunning
	if _, err := reconcileRun(reconcile.RunState{}, &reconcile.RunningError{ID: "r1"}); !errors.As(err, &running) || running.ID != "r1" {
		t.Errorf("running: %v", err)
	}
	run, err := reconcileRun(reconcile.RunState{ID: "r2", Task: "t"}, nil)
	if st, ok := run.State.(reconcile.RunState); err != nil || run.ID != "r2" || !ok || st.Task != "t" {
		t.Errorf("a run: %+v %v", run, err)
	}
}
