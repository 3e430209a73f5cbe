package transfer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/transfer"
)

// stalledKV is a key-value bucket whose listings send some keys and then
// nothing more, as one does whose server was lost in the middle; its
// lister, like nats.go's, ends its channel when its context ends.
type stalledKV struct {
	jetstream.KeyValue
	keys     []string
	complete bool // the listing ends after keys, as a whole one does
}

type stalledLister struct{ ch chan string }

func (l stalledLister) Keys() <-chan string { return l.ch }
func (l stalledLister) Stop() error         { return nil }

func (kv stalledKV) ListKeysFiltered(ctx context.Context, _ ...string) (jetstream.KeyLister, error) {
	l := stalledLister{ch: make(chan string)}
	go func() {
		defer close(l.ch)
		for _, k := range kv.keys {
			l.ch <- k
		}
		if !kv.complete {
			<-ctx.Done()
		}
	}()
	return l, nil
}

func TestListKeysNeverReturnsAListingCutShort(t *testing.T) {
	t.Parallel()
	keys, err := transfer.ListKeys(context.Background(), stalledKV{keys: []string{"a", "b"}, complete: true}, ">")
	if err != nil || len(keys) != 2 {
		t.Fatalf("a whole listing: %v, %v", keys, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	keys, err = transfer.ListKeys(ctx, stalledKV{keys: []string{"a", "b"}}, ">")
	if err == nil {
		t.Fatalf("a listing whose server went silent after 2 keys returned %v and no error", keys)
	}
}
