package reconcile_test

import (
	"context"
	"strings"
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// The task clients a diff lists through.
var (
	_ reconcile.OSSBucket = (*transfer.OSSSource)(nil)
	_ reconcile.S3Bucket  = (*transfer.S3Destination)(nil)
)

// TestRequesterPaysListing: a diff of a requester-pays source lists it
// only when the task says the requester pays (NewTaskSides passes the
// source's setting to its lister).
func TestRequesterPaysListing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	e.put(t, "src", "a", "x", nil)
	e.emu.SetRequesterPays("src", true)
	rt := &transfer.TaskRuntime{Task: e.task, Source: e.src, Destination: e.dst}
	list := func(src reconcile.OSSBucket) error {
		sides, err := reconcile.NewTaskSides(rt, src, e.dst)
		if err != nil {
			return err
		}
		return sides.Src.List(context.Background(), reconcile.Query{}, func([]reconcile.Entry) error { return nil })
	}
	if err := list(e.src); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("listed a requester-pays bucket without saying so: %v", err)
	}
	cfg := e.task.Source
	cfg.RequesterPays = true
	payer, err := transfer.NewOSSSource(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := list(payer); err != nil {
		t.Errorf("requester_pays: %v", err)
	}
}
