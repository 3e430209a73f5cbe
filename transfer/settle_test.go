package transfer

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestSettle pins the job contract: what a worker's error makes of the job,
// without NATS, with the clock and the jitter injected.
func TestSettle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	p := retryPolicy{base: time.Second, max: 8 * time.Second, maxAttempts: 5,
		now:    func() time.Time { return now },
		jitter: func(n time.Duration) time.Duration { return n - 1 }} // the most it may add
	transient := errors.New("connection reset by peer")
	throttle := fmt.Errorf("s3 put: %w: SlowDown", ErrThrottled)
	type want struct {
		act       action
		delay     time.Duration
		notBefore time.Time
	}
	for _, c := range []struct {
		name       string
		attempts   int    // failed attempts before this one
		deliveries uint64 // JetStream's count for this message
		err        error
		stopping   bool
		want       want
	}{
		{name: "done", err: nil, want: want{act: actAck}},
		{name: "done while stopping is still done", err: nil, stopping: true, want: want{act: actAck}},
		{name: "any error while stopping is handed back", err: transient, stopping: true, want: want{act: actHandBack}},
		{name: "a permanent error while stopping is handed back too", err: Permanent(transient), stopping: true, want: want{act: actHandBack}},
		{name: "snooze waits its time", err: Snooze(3*time.Second, "object busy", ErrBusy), want: want{act: actWait, delay: 3 * time.Second}},
		{name: "snooze on the last attempt spends nothing", attempts: 4, err: Snooze(time.Hour, "restore in progress", nil),
			want: want{act: actWait, delay: time.Hour}},
		{name: "a wrapped snooze is a snooze", err: fmt.Errorf("shard: %w", Snooze(time.Minute, "no reconciler", nil)),
			want: want{act: actWait, delay: time.Minute}},
		{name: "throttled, first delivery: the base backoff", deliveries: 1, err: throttle, want: want{act: actWait, delay: time.Second}},
		{name: "throttled, third delivery: grows", deliveries: 3, err: throttle, want: want{act: actWait, delay: 4 * time.Second}},
		{name: "throttled, 50th delivery: capped", deliveries: 50, err: throttle, want: want{act: actWait, delay: 8 * time.Second}},
		{name: "throttled on the last attempt spends nothing", attempts: 4, deliveries: 1, err: throttle,
			want: want{act: actWait, delay: time.Second}},
		{name: "throttled but permanent is dead-lettered", err: Permanent(throttle), want: want{act: actDeadLetter}},
		{name: "permanent is dead-lettered at once", err: Permanent(errors.New("AccessDenied")), want: want{act: actDeadLetter}},
		{name: "first failure is retried after the base", err: transient,
			want: want{act: actRetry, delay: time.Second, notBefore: now.Add(time.Second)}},
		{name: "third failure waits longer", attempts: 2, err: transient,
			want: want{act: actRetry, delay: 4 * time.Second, notBefore: now.Add(4 * time.Second)}},
		{name: "fourth failure, one attempt left", attempts: 3, err: transient,
			want: want{act: actRetry, delay: 8 * time.Second, notBefore: now.Add(8 * time.Second)}},
		{name: "fifth failure is dead-lettered", attempts: 4, err: transient, want: want{act: actDeadLetter}},
		{name: "a redelivery does not spend an attempt", attempts: 0, deliveries: 9, err: transient,
			want: want{act: actRetry, delay: time.Second, notBefore: now.Add(time.Second)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := p.settle(Job{Attempts: c.attempts}, max(c.deliveries, 1), c.err, c.stopping)
			got := want{act: s.act, delay: s.delay, notBefore: s.notBefore}
			if got != c.want {
				t.Fatalf("settle = %v delay %v not before %v, want %v delay %v not before %v",
					got.act, got.delay, got.notBefore, c.want.act, c.want.delay, c.want.notBefore)
			}
		})
	}
}

// TestBackoffJitter: half the backoff is fixed, half random.
func TestBackoffJitter(t *testing.T) {
	t.Parallel()
	low := retryPolicy{base: time.Second, max: time.Minute, jitter: func(time.Duration) time.Duration { return 0 }}
	high := low
	high.jitter = func(n time.Duration) time.Duration { return n - 1 }
	for attempt, full := range map[uint64]time.Duration{1: time.Second, 2: 2 * time.Second, 7: time.Minute, 30: time.Minute} {
		if lo, hi := low.backoff(attempt), high.backoff(attempt); lo != full/2 || hi != full {
			t.Errorf("attempt %d: backoff in [%v, %v], want [%v, %v]", attempt, lo, hi, full/2, full)
		}
	}
}

// A snooze's error is what the log says of the wait: why, and what was
// seen if anything.
func TestSnoozeSaysWhy(t *testing.T) {
	t.Parallel()
	if got := Snooze(time.Minute, "restore in progress", nil).Error(); got != "restore in progress" {
		t.Errorf("without a cause: %q", got)
	}
	if got := Snooze(time.Minute, "object busy", ErrBusy).Error(); got != "object busy: "+ErrBusy.Error() {
		t.Errorf("with a cause: %q", got)
	}
}
