package transfer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NATSReplyTimeout bounds the wait for the answer to one JetStream request
// (a key-value read or write, a publish acknowledgement). nats.go waits for
// a reply until the context ends, and a reply lost with a connection or a
// server (a reset, a killed stream leader) never comes: under a job's
// context, hours away, the job would hang with its message kept in
// progress for ever. Answers take milliseconds; a leader election a few
// seconds.
const NATSReplyTimeout = 15 * time.Second

// BoundedKV returns kv whose single-request operations each end after d
// (NATSReplyTimeout if d <= 0) at the latest, whatever the caller's
// context; a lost reply becomes an error the caller retries. Watches and
// listings keep the caller's context (they bound themselves, see
// kvListTimeout).
func BoundedKV(kv jetstream.KeyValue, d time.Duration) jetstream.KeyValue {
	if d <= 0 {
		d = NATSReplyTimeout
	}
	if b, ok := kv.(boundedKV); ok {
		kv = b.KeyValue
	}
	return boundedKV{KeyValue: kv, d: d}
}

type boundedKV struct {
	jetstream.KeyValue
	d time.Duration
}

func (b boundedKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.KeyValue.Get(ctx, key)
}

func (b boundedKV) GetRevision(ctx context.Context, key string, revision uint64) (jetstream.KeyValueEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.KeyValue.GetRevision(ctx, key, revision)
}

func (b boundedKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.KeyValue.Put(ctx, key, value)
}

func (b boundedKV) PutString(ctx context.Context, key string, value string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.KeyValue.PutString(ctx, key, value)
}

func (b boundedKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.KeyValue.Create(ctx, key, value, opts...)
}

func (b boundedKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.KeyValue.Update(ctx, key, value, revision)
}

func (b boundedKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.KeyValue.Delete(ctx, key, opts...)
}

func (b boundedKV) Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.KeyValue.Purge(ctx, key, opts...)
}
