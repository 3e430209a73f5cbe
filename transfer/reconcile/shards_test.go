package reconcile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// A replica takes a shard and dies without a word: after AckWait the shard
// is delivered to another replica, which runs it to the end.
func TestShardOfADeadReplicaIsRedelivered(t *testing.T) {
	ns := jstest.Start(t)
	e := newEnv(t, 2)
	seed(t, e)
	coord := startReplica(t, e, ns.ClientURL(), false)
	ctx := context.Background()
	st, err := coord.svc.Start(ctx, "t1", reconcile.Options{Mode: reconcile.ModeReport}, "test")
	if err != nil {
		t.Fatal(err)
	}
	// The dead replica: it pulls every shard and never acknowledges.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	c, err := js.Consumer(ctx, transfer.JobStream, transfer.WorkerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	taken := 0
	for m := range batch.Messages() {
		if strings.Contains(string(m.Data()), `"kind":"reconcile"`) {
			taken++
		}
	}
	if taken != st.Shards {
		t.Fatalf("dead replica took %d of %d shards", taken, st.Shards)
	}
	nc.Close()
	startReplica(t, e, ns.ClientURL(), true) // the survivor
	st = waitRun(t, coord.svc, st.ID)
	if st.Error != "" || st.Listed != 9 || st.Missing != 1 || st.Different != 2 || st.Extraneous != 2 {
		t.Fatalf("run after redelivery: %+v", st)
	}
}
