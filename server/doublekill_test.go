package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer"
)

// TestKillsDuringOneMultipartCopyLoseNothing is the double kill that once
// lost a job (issue 13), and one kill more: the only replica is killed
// with SIGKILL three times during one multipart copy, restarted each time,
// with the settings of the report (ack_wait 10s, 5 attempts, the default
// lease). Waiting on the dead replica's lease used to spend two of the
// job's five deliveries per kill until JetStream stopped delivering it,
// leaving it in the stream, in no dead-letter queue, with its upload open
// (on the code before the fix this test times out after the third kill;
// the report's double kill hit the same end when its kill fell just after
// a lease renewal). Now each time the lease runs out the copy is resumed
// from its last part, the object ends up in S3, and nothing is left in the
// queue, the dead-letter queue or the destination's open uploads.
func TestKillsDuringOneMultipartCopyLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills oss2s3 twice and waits for its lease to run out each time")
	}
	t.Parallel()
	ctx := context.Background()
	ns := jstest.Start(t) // outside the killed process, as a NATS cluster is
	b := newBed(t, s3test.StartVersity(t), 1)
	b.extraConfig = "nats:\n  url: " + ns.ClientURL() + "\n"
	b.queueConfig = "  ack_wait: 10s\n"
	b.workerConfig = "  parts_in_flight: 1\n"
	b.writeConfig(t, 1)

	// 12 parts of 5 MiB, each a little slow to read, so that the copy
	// outlives three kills.
	o := synthetic{key: "double-kill/big.bin", size: 60 << 20, seed: 13}
	b.emu.InjectFault(ossemu.Fault{Op: "GetObject", Key: o.key, Latency: 300 * time.Millisecond})
	proc := startChild(t, b)
	if _, err := b.emu.PutSynthetic(e2eSrc, o.key, o.size, o.seed, http.Header{"Content-Type": {"application/octet-stream"}}); err != nil {
		t.Fatal(err)
	}
	gets := func() int { return b.emu.Requests()["GetObject"] }
	for kill := 1; kill <= 3; kill++ {
		at := gets()
		testkit.WaitFor(t, 60*time.Second, "the copy to make progress", func() bool { return gets() >= at+2 })
		proc.kill(t)
		killed, before := time.Now(), gets()
		proc = startChild(t, b)
		testkit.WaitFor(t, 60*time.Second, "the copy to be resumed", func() bool { return gets() > before+1 })
		t.Logf("kill %d: the copy was resumed %s after it (ack_wait 10s, lease %s)", kill,
			time.Since(killed).Round(100*time.Millisecond), transfer.DefaultLease)
	}

	testkit.WaitFor(t, 90*time.Second, "the object in S3", func() bool { return checkSynthetic(ctx, b, o) == "" })
	js := jetStreamClient(t, ns.ClientURL())
	testkit.WaitFor(t, 30*time.Second, "an empty job stream", func() bool {
		s, err := js.Stream(ctx, transfer.JobStream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
	dlq, err := js.Stream(ctx, transfer.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := dlq.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("dead letters: %+v, %v", info, err)
	}
	assertNoOpenUploads(t, b)
	// Read at most once more than its 12 parts for each kill (the part
	// each process died in).
	if n := gets(); n > 12+3 {
		t.Fatalf("%d GETs of the source for 12 parts and 3 kills: a resume started over", n)
	}
}
