package reconcile_test

import (
	"context"
	"slices"
	"testing"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// At every checkpoint, every key through the checkpoint's is fully
// handled: with SSE-KMS no listed ETag is comparable, so every pair goes
// through the HEAD checkers (and, lacking oss2s3's identity, is found
// different), and still its job is queued and its report line written
// when the checkpoint passes it.
func TestCheckpointWaitsForChecksAndJobs(t *testing.T) {
	const count = 2000
	e := newEnv(t, 100)
	e.emu.SetGenerated("src", ossemu.Generated{Count: count})
	e.emu.SetGenerated("dst", ossemu.Generated{Count: count, Missing: 1, Extra: 1})
	e.task.Destination.Prefix = ""
	e.task.Destination.SSE = "aws:kms"
	d, rep := e.diff(reconcile.Options{Verify: reconcile.VerifyETag})
	d.CheckpointKeys = 97
	var cps []reconcile.Checkpoint
	d.OnCheckpoint = func(_ context.Context, cp reconcile.Checkpoint) error {
		cps = append(cps, cp)
		var want []string
		for i := range int64(count) {
			if k := ossemu.GeneratedKey(i); k <= cp.Key {
				want = append(want, k)
			}
		}
		upTo := func(ks []string) []string {
			var out []string
			for _, k := range ks {
				if k <= cp.Key {
					out = append(out, k)
				}
			}
			return out
		}
		eq(t, "jobs queued through "+cp.Key, upTo(e.pub.keys()), want)
		got := upTo(append(rep.keys("missing"), rep.keys("different")...))
		slices.Sort(got)
		eq(t, "report lines through "+cp.Key, got, want)
		if c := cp.Counts; c.Queued != int64(len(want)) || c.Missing+c.Different != int64(len(want)) {
			t.Errorf("counts at %s: %+v, want %d queued", cp.Key, c, len(want))
		}
		return nil
	}
	if _, err := d.RunRange(context.Background(), reconcile.Range{}); err != nil {
		t.Fatal(err)
	}
	if len(cps) < count/97-1 {
		t.Fatalf("%d checkpoints, want about %d", len(cps), count/97)
	}
	if c := d.Progress.Snapshot(); c.Heads != count-count/100 || c.Queued != count {
		t.Fatalf("counts %+v", c)
	}
}
