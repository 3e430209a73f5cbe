package ingest

import (
	"testing"
	"time"
)

func TestReplaysAreForgottenWhenTheirSignatureExpires(t *testing.T) {
	t.Parallel()
	r := newReplays(5 * time.Minute)
	now := time.Unix(1_800_000_000, 0)
	old := r.key(now.Add(-4*time.Minute).Unix(), []byte("body"))
	fresh := r.key(now.Unix(), []byte("body"))
	other := r.key(now.Unix(), []byte("other body"))
	r.add(old, now)
	r.add(fresh, now)
	if !r.seen(old) || !r.seen(fresh) || r.seen(other) {
		t.Fatalf("seen: old %v, fresh %v, other %v", r.seen(old), r.seen(fresh), r.seen(other))
	}
	// Two minutes on, the old signature has expired (signed 6 minutes
	// ago): its replay fails verification, it need not be remembered.
	r.add(other, now.Add(2*time.Minute))
	if r.seen(old) || !r.seen(fresh) || !r.seen(other) {
		t.Fatalf("after 2m: old %v, fresh %v, other %v", r.seen(old), r.seen(fresh), r.seen(other))
	}
	if n := r.len(); n != 2 {
		t.Fatalf("%d remembered, want 2", n)
	}
	r.add(r.key(now.Add(10*time.Minute).Unix(), []byte("later")), now.Add(10*time.Minute))
	if n := r.len(); n != 1 {
		t.Fatalf("%d remembered 10m on, want 1", n)
	}
}

func TestReplaysOffRemembersNothing(t *testing.T) {
	t.Parallel()
	r := newReplays(0)
	k := r.key(1, []byte("b"))
	r.add(k, time.Unix(1, 0))
	if r.seen(k) {
		t.Fatal("tolerance 0 remembered a request")
	}
}

func TestReplaysForgetTheEarliestSignedPastTheirBound(t *testing.T) {
	t.Parallel()
	r := newReplays(5 * time.Minute)
	r.max = 10
	now := time.Unix(1_800_000_000, 0)
	var keys []replayKey
	for sec := range 4 {
		for i := range 4 {
			k := r.key(now.Unix()+int64(sec), []byte{byte(sec), byte(i)})
			keys = append(keys, k)
			r.add(k, now)
		}
	}
	if n := r.len(); n > 10 {
		t.Fatalf("%d remembered, bound 10", n)
	}
	// The requests of the first two seconds went; the last two are all there.
	for i, k := range keys {
		if want := i >= 8; r.seen(k) != want {
			t.Errorf("request %d (second %d): seen %v, want %v", i, i/4, r.seen(k), want)
		}
	}
}
