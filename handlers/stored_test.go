package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/transfer"
)

// TestEach202IsAStoredJob: many requests at once, more than the stream
// takes, share the queue's connection and its acknowledgements; every
// request answered 202 (queued) has its own job in the stream, every
// other one was refused, and the stream holds nothing else. A request
// answered on another's acknowledgement, or before its own, would break
// one of the two.
func TestEach202IsAStoredJob(t *testing.T) {
	t.Parallel()
	const room, requests = 40, 120
	b := setup(t, transfer.QueueConfig{MaxMsgs: room})
	var mu sync.Mutex
	accepted := map[string]bool{}
	refused := 0
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			key := fmt.Sprintf("stored/%03d", i)
			rec := b.post(t, doc(record("ObjectCreated:PutObject", "src2", key, fmt.Sprintf("E%03d", i))), nil)
			mu.Lock()
			defer mu.Unlock()
			switch rec.Code {
			case http.StatusAccepted:
				var got handlers.EventsAccepted
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got != (handlers.EventsAccepted{Queued: 1}) {
					t.Errorf("%s: 202 with %s", key, rec.Body)
				}
				accepted[key] = true
			case http.StatusServiceUnavailable:
				refused++
			default:
				t.Errorf("%s: status %d: %s", key, rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
	if len(accepted) != room || refused != requests-room {
		t.Errorf("%d accepted and %d refused, want %d and %d (the stream takes %d)", len(accepted), refused, room, requests-room, room)
	}

	ctx := context.Background()
	js, err := jetstream.New(b.q.Conn())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, transfer.JobStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		var j transfer.Job
		if err := json.Unmarshal(m.Data, &j); err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		stored[j.Key] = true
	}
	for key := range accepted {
		if !stored[key] {
			t.Errorf("%s was answered 202 but is not in the stream", key)
		}
	}
	for key := range stored {
		if !accepted[key] {
			t.Errorf("%s is in the stream but its request was refused", key)
		}
	}
}
