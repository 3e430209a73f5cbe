package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/oss2s3/oss2s3/metrics"
)

// The job contract. A JobWorker's error says what becomes of the job:
//
//	nil                      done: acknowledged
//	Snooze(d, why, err)      look again after d; no attempt spent (an object
//	                         another worker is copying, a restore in progress)
//	an error wrapping ErrThrottled
//	                         asked to slow down: look again after a backoff
//	                         that grows with each delivery; no attempt spent
//	Permanent(err)           no retry can fix it: dead-lettered now
//	any other error          the attempt failed: stored again with one more
//	                         attempt, to start after a backoff; dead-lettered
//	                         with its cause once queue.max_attempts are spent
//
// A job interrupted by shutdown is handed back at once, whatever the error.
// settle turns that into a settlement (pure, table-tested without NATS);
// Workers.apply carries it out on the message.

// snoozeError asks for the job to come back after d, spending no attempt.
type snoozeError struct {
	d   time.Duration
	why string
	err error
}

func (e *snoozeError) Error() string {
	if e.err == nil {
		return e.why
	}
	return e.why + ": " + e.err.Error()
}

func (e *snoozeError) Unwrap() error { return e.err }

// Snooze makes a job come back after d without spending an attempt; why
// says what it waits for (logged), err (optional) what was seen.
func Snooze(d time.Duration, why string, err error) error {
	return &snoozeError{d: d, why: why, err: err}
}

// action is what becomes of one delivery of a job.
type action int

const (
	actAck        action = iota // done
	actHandBack                 // shutdown: back to the queue at once
	actWait                     // back after delay, no attempt spent
	actRetry                    // stored again with one more attempt, from notBefore
	actDeadLetter               // parked with its cause
)

func (a action) String() string {
	return [...]string{"ack", "hand_back", "wait", "retry", "dead_letter"}[a]
}

// settlement is the decision settle makes about one delivery.
type settlement struct {
	act       action
	delay     time.Duration // actWait, actRetry
	notBefore time.Time     // actRetry: when the stored retry may start
	why       string        // actWait: what the job waits for
	throttled bool          // actWait because of a slow-down answer
}

// retryPolicy holds what settle needs: the attempts and the backoff, with
// the clock and the jitter injected.
type retryPolicy struct {
	base, max   time.Duration
	maxAttempts int
	now         func() time.Time
	jitter      func(n time.Duration) time.Duration // a duration in [0, n)
}

func newRetryPolicy(cfg WorkerConfig, maxAttempts int) retryPolicy {
	return retryPolicy{base: cfg.RetryBase, max: cfg.RetryMax, maxAttempts: maxAttempts,
		now: time.Now, jitter: func(n time.Duration) time.Duration { return rand.N(n) }}
}

// settle decides what becomes of a delivery of job (JetStream's delivery
// count deliveries) whose work ended with err; stopping says the process
// is shutting down.
func (p retryPolicy) settle(job Job, deliveries uint64, err error, stopping bool) settlement {
	var snooze *snoozeError
	switch {
	case err == nil:
		return settlement{act: actAck}
	case stopping:
		return settlement{act: actHandBack}
	case errors.As(err, &snooze):
		return settlement{act: actWait, delay: snooze.d, why: snooze.why}
	case errors.Is(err, ErrThrottled) && !IsPermanent(err):
		return settlement{act: actWait, delay: p.backoff(min(deliveries, 10)), throttled: true,
			why: "throttled, will try again (no attempt spent)"}
	case IsPermanent(err) || job.Attempts+1 >= p.maxAttempts:
		return settlement{act: actDeadLetter}
	}
	delay := p.backoff(uint64(max(job.Attempts+1, 1)))
	return settlement{act: actRetry, delay: delay, notBefore: p.now().Add(delay)}
}

// backoff is exponential from base, capped at max, with jitter (half
// fixed, half random) so that retries of a failed burst spread out.
func (p retryPolicy) backoff(attempt uint64) time.Duration {
	d := p.base
	for i := uint64(1); i < attempt && d < p.max; i++ {
		d *= 2
	}
	d = min(d, p.max)
	return d/2 + p.jitter(d/2+1)
}

// apply carries out s on delivery d of job, whose work returned out and
// cause: the message is acknowledged, handed back, delayed, retried or
// dead-lettered, and the metrics and the log say so.
func (w *Workers) apply(ctx context.Context, d delivery, job Job, out outcome, cause error, s settlement, log *slog.Logger) {
	copyJob := isObjectJob(job)
	count := func(result string) {
		if copyJob && result != "" {
			w.m.ObjectsCopied.WithLabelValues(job.Task, result).Inc()
		}
	}
	switch s.act {
	case actAck:
		_ = d.msg.Ack()
		w.done(job, out, log)
	case actHandBack:
		_ = d.msg.Nak()
		what := "copy"
		if !copyJob {
			what = job.Kind + " job"
		}
		log.Warn(what+" interrupted by shutdown, handed back to the queue", "err", cause)
	case actWait:
		_ = d.msg.NakWithDelay(s.delay)
		if s.throttled {
			count(metrics.CopyRetried)
			log.Warn(s.why, "err", cause, "retry_in", s.delay.Round(time.Millisecond))
			return
		}
		count(out.result)
		var snooze *snoozeError
		if errors.As(cause, &snooze) && snooze.err != nil {
			log.Info(s.why, "err", snooze.err, "result", out.result)
		} else {
			log.Info(s.why, "result", out.result)
		}
	case actRetry:
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := w.q.Publish(pctx, []Job{job.Retry(d.seq, s.notBefore)}); err != nil {
			// Not counted: the job comes back as it was, and tries again.
			_ = d.msg.NakWithDelay(s.delay)
			log.Warn("attempt failed; storing the retry failed too, job handed back as it was", "err", cause,
				"store_err", err, "retry_in", s.delay.Round(time.Millisecond))
			return
		}
		_ = d.msg.Ack()
		count(metrics.CopyRetried)
		log.Warn("attempt failed, will retry", "err", cause, "retry_in", s.delay.Round(time.Millisecond),
			"attempts_left", w.q.cfg.MaxAttempts-(job.Attempts+1))
	case actDeadLetter:
		w.deadLetter(ctx, d, job, cause, log)
	}
}

// done counts and logs a job that ended well.
func (w *Workers) done(job Job, out outcome, log *slog.Logger) {
	if !isObjectJob(job) {
		return
	}
	if out.result != "" {
		w.m.ObjectsCopied.WithLabelValues(job.Task, out.result).Inc()
		if w.observer != nil {
			w.observer.JobDone(job, out.result)
		}
	}
	if out.result == metrics.CopyCopied || out.result == metrics.CopyDeleted {
		w.m.ObserveLag(job.Task, job.EventTime, time.Now())
	}
	switch {
	case out.copy != nil:
		w.m.BytesCopied.WithLabelValues(job.Task).Add(float64(out.copy.Bytes))
		w.m.CopyDuration.WithLabelValues(job.Task).Observe(out.copy.Duration.Seconds())
		log.Info("copied", "bytes", out.copy.Bytes, "parts", out.copy.Parts, "resumed_parts", out.copy.Resumed,
			"crc64", out.copy.CRC64, "duration", out.copy.Duration.Round(time.Millisecond))
	case out.why != "":
		log.Info(out.why, "result", out.result)
	}
}

// deadLetter parks the job with its cause in the dead-letter stream and
// removes it from the work queue. If the dead-letter stream cannot take it,
// the job stays in the work queue (never dropped) and is tried again later.
func (w *Workers) deadLetter(ctx context.Context, d delivery, job Job, cause error, log *slog.Logger) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.q.deadLetter(dctx, d.msg.Data(), job.Task, job.Attempts+1, cause); err != nil {
		_ = d.msg.NakWithDelay(w.cfg.RetryMax)
		log.Error("dead-lettering failed, job left in the queue", "err", err, "cause", cause)
		return
	}
	_ = d.msg.TermWithReason("dead-lettered")
	if job.Task != "" {
		w.m.ObjectsCopied.WithLabelValues(job.Task, metrics.CopyFailed).Inc()
		if w.observer != nil {
			w.observer.JobDone(job, metrics.CopyFailed)
		}
	}
	log.Error("copy failed for good, moved to the dead-letter queue", "err", cause, "permanent", IsPermanent(cause))
}

// unknownTask settles a job whose task this process is not configured
// with: a reload removed the task, or this replica's configuration is
// older or newer than that of the replica that queued the job (replicas
// read a changed file one after another). The job is never acknowledged
// away. While it has been in the queue less than UnknownTaskGrace it is
// handed back, spending no attempt, to come again after ack_wait: a
// replica that has the task takes it, or this one does once a reload
// brings the task back. After that it is dead-lettered with a cause that
// says why, and POST /v1/dlq/redrive puts it back once the task is
// configured again. Keeping such jobs for ever instead would keep the
// queue's oldest job as old as the removal (the backlog alert firing with
// nothing to do about it) and the jobs out of every view but the queue's
// count; dead-lettering them at once would park the jobs of a task just
// added whenever a replica that has not read the new file yet takes them.
func (w *Workers) unknownTask(ctx context.Context, d delivery, job Job, log *slog.Logger) {
	grace := w.cfg.UnknownTaskGrace
	age := time.Duration(0)
	if !d.stored.IsZero() {
		age = time.Since(d.stored)
	}
	if d.stored.IsZero() || age >= grace {
		w.deadLetter(ctx, d, job, errTaskNotConfigured(job.Task, grace), log)
		return
	}
	wait := min(w.q.cfg.AckWait, grace-age)
	_ = d.msg.NakWithDelay(wait)
	lvl := slog.LevelDebug
	if d.n == 1 {
		lvl = slog.LevelWarn
	}
	log.Log(ctx, lvl, "no task of this name is configured in this process (removed by a reload, or this replica's configuration differs): handed back, no attempt spent",
		"retry_in", wait, "dead_letter_in", (grace - age).Round(time.Second))
}

// errTaskNotConfigured is the cause a job of an unknown task is
// dead-lettered with.
func errTaskNotConfigured(name string, grace time.Duration) error {
	return Permanent(fmt.Errorf("no task named %q is configured (removed from the configuration?): "+
		"kept %s for a replica or a reload that has it, then dead-lettered; redrive it once the task is configured again", name, grace))
}

// errTaskGone is what a worker returns when the task of its job was there
// when the job was taken and is gone when the worker looks it up (a reload
// in between): the job comes back, and handle decides then.
func errTaskGone(name string, d time.Duration) error {
	return Snooze(d, fmt.Sprintf("task %q is no longer configured", name), nil)
}
