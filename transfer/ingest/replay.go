package ingest

import (
	"hash/maphash"
	"sync"
	"time"
)

// replays remembers the signed requests the gateway stored the jobs of,
// until their signatures expire, so that a request sent again (by an
// attacker who captured it, or by a sender retrying after a 2xx it did not
// see) is answered as a duplicate. JetStream's duplicate window
// (queue.duplicate_window, 2 min by default) recognises the same jobs only
// that long, and a signature is accepted for webhook.tolerance (5 min)
// either side of its time: a replay 2 to 10 minutes later would be queued
// again. Converging a key twice is harmless, but it costs a HEAD and lets
// whoever holds one captured request keep the queue busy.
//
// A request is remembered by its signing time (unix seconds) and a 64-bit
// hash of what was signed, under a per-process random seed. Only requests
// whose jobs were all stored are remembered (a 503 must be retried, with
// the same signature if the sender likes), so what is held grows with the
// legitimate rate, about 25 bytes a request for the tolerance (and 0.2 µs
// of CPU), up to maxReplays requests (about 13 MiB: five minutes at 1,700
// requests a second). Past that the requests signed earliest are
// forgotten first, and a replay of one of them after the duplicate window
// is queued again, which is harmless. It is this process's memory: a replay sent to another
// replica is recognised by JetStream within its duplicate window only.
type replays struct {
	tolerance time.Duration // <= 0: nothing is remembered
	max       int           // requests remembered at most
	seed      maphash.Seed

	mu       sync.Mutex
	bySecond map[int64]map[uint64]struct{} // signing second -> hashes
	n        int                           // hashes in bySecond
	swept    int64                         // the second of the last sweep
}

// maxReplays bounds what replays holds.
const maxReplays = 1 << 19

// replayKey is one signed request.
type replayKey struct {
	at   int64 // signing time, unix seconds
	hash uint64
}

func newReplays(tolerance time.Duration) *replays {
	return &replays{tolerance: tolerance, max: maxReplays, seed: maphash.MakeSeed(), bySecond: map[int64]map[uint64]struct{}{}}
}

// key names the request signed at `at` over the parts.
func (r *replays) key(at int64, parts ...[]byte) replayKey {
	var h maphash.Hash
	h.SetSeed(r.seed)
	for _, p := range parts {
		h.Write(p)
		h.WriteByte(0)
	}
	return replayKey{at: at, hash: h.Sum64()}
}

// seen reports whether k was remembered.
func (r *replays) seen(k replayKey) bool {
	if r == nil || r.tolerance <= 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.bySecond[k.at][k.hash]
	return ok
}

// add remembers k until its signature expires (at + tolerance), and
// forgets what has expired by now, at most once a second.
func (r *replays) add(k replayKey, now time.Time) {
	if r == nil || r.tolerance <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec := now.Unix(); sec != r.swept {
		r.swept = sec
		oldest := now.Add(-r.tolerance).Unix()
		for at, m := range r.bySecond {
			if at < oldest {
				r.n -= len(m)
				delete(r.bySecond, at)
			}
		}
	}
	m := r.bySecond[k.at]
	if m == nil {
		m = map[uint64]struct{}{}
		r.bySecond[k.at] = m
	}
	if _, ok := m[k.hash]; !ok {
		m[k.hash] = struct{}{}
		r.n++
	}
	for r.n > r.max && len(r.bySecond) > 1 {
		first := k.at
		for at := range r.bySecond {
			first = min(first, at)
		}
		r.n -= len(r.bySecond[first])
		delete(r.bySecond, first)
	}
}

// len is the number of requests remembered.
func (r *replays) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
