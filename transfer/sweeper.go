package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/metrics"
)

// The defaults of SweeperConfig (its Lease defaults to DefaultLease).
const (
	DefaultOrphanAge   = 24 * time.Hour
	DefaultOrphanEvery = 15 * time.Minute
)

// SweeperConfig says how often the sweeper looks, and what it takes for
// dead.
type SweeperConfig struct {
	// Lease is the copies' lease (CopyConfig.Lease); expired leases are
	// looked for every Lease/8.
	Lease time.Duration
	// OrphanAge is how old an upload no live copy owns must be before it
	// is aborted; OrphanEvery is how often the destinations are listed.
	OrphanAge   time.Duration
	OrphanEvery time.Duration
}

func (c SweeperConfig) withDefaults() SweeperConfig {
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.OrphanAge <= 0 {
		c.OrphanAge = DefaultOrphanAge
	}
	if c.OrphanEvery <= 0 {
		c.OrphanEvery = DefaultOrphanEvery
	}
	return c
}

// Sweeper finds what no worker will finish by itself and sees to it:
//   - a multipart copy whose worker died (its lease expired) is queued
//     again, so that another worker resumes it from its last part within
//     seconds rather than when the dead worker's job comes back;
//   - a job JetStream will never deliver again (left by a consumer with a
//     delivery limit, as oss2s3's had before attempts were its own) is
//     queued afresh;
//   - a multipart upload oss2s3 started that no live copy owns any more
//     (its worker died before a checkpoint named it, or its copy was given
//     up) is aborted once it is OrphanAge old.
//
// Every replica with workers runs one. What they do is idempotent: the
// jobs they queue are deduplicated by message id, and aborting an upload
// twice is harmless.
type Sweeper struct {
	q      *Queue
	copier *Copier
	tasks  TaskSet
	cfg    SweeperConfig
	m      *metrics.Metrics
	log    *slog.Logger
	now    func() time.Time

	// stuck holds the stream sequences the last stuck sweep found: a job
	// is taken for stuck only when two sweeps in a row find it (an ack
	// and the removal of the message it acknowledges are not one step).
	stuck map[uint64]bool
}

// NewSweeper prepares a sweeper for the tasks; Run starts it.
func NewSweeper(q *Queue, copier *Copier, tasks TaskSet, cfg SweeperConfig, m *metrics.Metrics, log *slog.Logger) *Sweeper {
	return &Sweeper{q: q, copier: copier, tasks: tasks, cfg: cfg.withDefaults(), m: m, log: log, now: time.Now}
}

// Run sweeps until ctx is done: expired leases every Lease/8, stuck jobs
// every QueueConfig.StuckSweep (and at once), orphan uploads every
// OrphanEvery (the first time after a random part of it, so that replicas
// started together do not list the destinations together).
func (s *Sweeper) Run(ctx context.Context) error {
	leases := time.NewTicker(max(s.cfg.Lease/8, 10*time.Millisecond))
	defer leases.Stop()
	stuck := time.NewTicker(s.q.cfg.StuckSweep)
	defer stuck.Stop()
	orphans := time.NewTimer(rand.N(s.cfg.OrphanEvery) + time.Millisecond)
	defer orphans.Stop()
	s.sweepStuck(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-leases.C:
			// A pass stuck on a JetStream leader that was just lost is
			// given up and tried afresh at the next tick, rather than
			// waiting out a request's 5 s timeout: a dead replica's
			// copy may be waiting on it.
			pctx, cancel := context.WithTimeout(ctx, max(s.cfg.Lease/4, 10*time.Millisecond))
			s.resumeExpired(pctx)
			cancel()
		case <-stuck.C:
			s.sweepStuck(ctx)
		case <-orphans.C:
			s.abortOrphans(ctx)
			orphans.Reset(s.cfg.OrphanEvery)
		}
	}
}

// resumeExpired queues a job for each multipart copy whose worker has not
// renewed its lease for a whole lease. The job's id is made of the
// upload and the last heartbeat, so every replica that sees the same
// expired lease queues the same job, once.
func (s *Sweeper) resumeExpired(ctx context.Context) {
	cps, _, err := s.q.ckpt.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("lease sweep: list checkpoints", "err", err)
		}
		return
	}
	now := s.now()
	tasks := s.tasks.Tasks()
	for _, cp := range cps {
		rt := tasks[cp.Task]
		if rt == nil || !cp.Expired(now, s.cfg.Lease) {
			continue
		}
		job := Job{
			Task:       cp.Task,
			Kind:       KindConverge,
			Origin:     originLeaseExpired,
			Nonce:      "resume-" + digest(cp.UploadID, strconv.FormatInt(cp.Heartbeat.UnixNano(), 10))[:16],
			ObjectArgs: ObjectArgs{Bucket: rt.Task.Source.Bucket, Key: cp.Key, ETag: cp.ETag, Size: cp.Size},
		}
		res, err := s.q.Publish(ctx, []Job{job})
		if err != nil {
			s.log.Warn("lease sweep: queue the resume", "task", cp.Task, "key", cp.Key, "err", err)
			continue
		}
		if res.Queued > 0 {
			s.m.LeasesExpired.WithLabelValues(cp.Task).Inc()
			s.log.Info("copy's lease ran out: queued for another worker to resume", "task", cp.Task, "key", cp.Key,
				"owner", cp.Owner, "heartbeat_age", now.Sub(cp.Heartbeat).Round(time.Millisecond))
		}
	}
}

// sweepStuck queues afresh the jobs the workers' consumer will never
// deliver again: JetStream gives up, silently, on a job that reached the
// consumer's MaxDeliver, and leaves it in the stream (see stuckJobs).
func (s *Sweeper) sweepStuck(ctx context.Context) {
	found, err := s.q.stuckJobs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("stuck-job sweep", "err", err)
		}
		return
	}
	seen := make(map[uint64]bool, len(found))
	for _, m := range found {
		if !s.stuck[m.Sequence] {
			seen[m.Sequence] = true // again next time, to be sure
			continue
		}
		if err := s.q.requeueStuck(ctx, m); err != nil {
			s.log.Warn("stuck-job sweep: requeue", "seq", m.Sequence, "err", err)
			seen[m.Sequence] = true
			continue
		}
		s.m.StuckJobs.Inc()
		s.log.Warn("job the queue would never have delivered again: queued afresh", "seq", m.Sequence, "subject", m.Subject)
	}
	s.stuck = seen
}

// stuckJobs returns the jobs in the stream the workers' consumers will not
// deliver again, lane by lane: those at or below the lane consumer's ack
// floor (on a work-queue stream an acknowledged job is gone) and, when it
// has no job out for acknowledgement, those at or below the last it
// delivered. The floor passes a job the consumer gave up on only when a
// later job is acknowledged; the second rule finds it on a quiet queue
// too.
func (q *Queue) stuckJobs(ctx context.Context) ([]*jetstream.RawStreamMsg, error) {
	stream, err := q.js.Stream(ctx, JobStream)
	if err != nil {
		return nil, err
	}
	si, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []*jetstream.RawStreamMsg
	for _, l := range Lanes {
		ci, err := q.consumerOf(l).Info(ctx)
		if err != nil {
			return nil, err
		}
		floor := ci.AckFloor.Stream
		if ci.NumAckPending == 0 {
			floor = max(floor, ci.Delivered.Stream)
		}
		for seq := si.State.FirstSeq; si.State.Msgs > 0 && seq <= floor && len(out) < 1000; {
			m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(l.Subject+">"))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return nil, err
			}
			if m.Sequence > floor {
				break
			}
			out = append(out, m)
			seq = m.Sequence + 1
		}
	}
	return out, nil
}

// requeueStuck publishes a stuck job again, as a new message the consumer
// delivers, and removes the stuck one. The new job's id is made of the
// old one's sequence, so two replicas requeueing it queue it once; an
// undecodable job is dead-lettered instead.
func (q *Queue) requeueStuck(ctx context.Context, m *jetstream.RawStreamMsg) error {
	job, err := decodeJob(m.Data)
	if err != nil {
		if err := q.deadLetter(ctx, m.Data, job.Task, job.Attempts, fmt.Errorf("stuck in the job stream, and %w", err)); err != nil {
			return err
		}
	} else {
		job.Parent = job.Lineage()
		job.Nonce = "stuck-" + strconv.FormatUint(m.Sequence, 10)
		job.QueuedAt = time.Time{}
		if _, err := q.Publish(ctx, []Job{job}); err != nil {
			return err
		}
	}
	stream, err := q.js.Stream(ctx, JobStream)
	if err != nil {
		return err
	}
	if err := stream.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return err
	}
	return nil
}

// abortOrphans aborts, in every task's destination, the multipart uploads
// oss2s3 started that no live copy owns and that are older than OrphanAge.
// An upload is oss2s3's when a checkpoint names it, or when a note made
// just before it was created says a worker was about to create an upload
// of that key (the worker died before the checkpoint named it). Uploads of
// anyone else under the same prefix are left alone.
func (s *Sweeper) abortOrphans(ctx context.Context) {
	cps, _, err := s.q.ckpt.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("orphan sweep: list checkpoints", "err", err)
		}
		return
	}
	byUpload := make(map[string]*Checkpoint, len(cps))
	for _, cp := range cps {
		byUpload[cp.UploadID] = cp
	}
	for name, rt := range s.tasks.Tasks() {
		lister, ok := rt.Destination.(UploadLister)
		if !ok {
			continue
		}
		if err := s.abortOrphansOf(ctx, name, rt, lister, byUpload); err != nil && ctx.Err() == nil {
			s.log.Warn("orphan sweep", "task", name, "err", err)
		}
	}
}

func (s *Sweeper) abortOrphansOf(ctx context.Context, task string, rt *TaskRuntime, lister UploadLister, byUpload map[string]*Checkpoint) error {
	now := s.now()
	var old []Upload
	open := map[string]bool{}
	err := lister.ListUploads(ctx, rt.Task.Destination.Prefix, func(u Upload) bool {
		open[u.UploadID] = true
		if now.Sub(u.Initiated) >= s.cfg.OrphanAge {
			old = append(old, u)
		}
		return true
	})
	if err != nil {
		return err
	}
	s.forgetLitter(ctx, rt, task, open, byUpload, now)
	for _, u := range old {
		cp, notes, why, err := s.orphan(ctx, task, u, byUpload[u.UploadID], now)
		if err != nil {
			return err
		}
		if why == "" {
			continue
		}
		if cp != nil {
			// The job that copies the object again is queued before the
			// abort, so that a sweeper dying between the two cannot leave
			// an object whose upload is gone and that no job will copy
			// (a giant's part jobs drop themselves once the upload is
			// gone). The job gives this upload up itself, should it come
			// first: it does not resume it.
			if err := s.restart(ctx, rt, cp, "orphan-"+digest(u.UploadID)[:16]); err != nil {
				return err
			}
		}
		if err := rt.Destination.AbortUpload(ctx, u.Key, u.UploadID); err != nil && !errors.Is(err, ErrNoSuchUpload) {
			return fmt.Errorf("abort upload of %q: %w", u.Key, err)
		}
		for _, n := range notes {
			s.q.ckpt.donePending(ctx, n)
		}
		if cp != nil {
			s.copier.forget(ctx, cp)
		}
		s.m.OrphansAborted.WithLabelValues(task).Inc()
		s.log.Info("orphan upload aborted", "task", task, "dst_key", u.Key, "upload_id", u.UploadID,
			"initiated", u.Initiated, "why", why)
	}
	return nil
}

// forgetLitter forgets the checkpoints of task whose upload is no longer
// open at the destination: a worker that completed or aborted it died
// before it could forget the checkpoint. Only checkpoints no live worker
// holds, and older than the listing (by a minute, for the clocks), are
// looked at. Whoever ended the upload may not have seen the object copied
// (a sweeper that died between an abort and queueing the restart, in an
// older version): each forgotten checkpoint's key is looked at again,
// which costs a HEAD when the copy is there.
func (s *Sweeper) forgetLitter(ctx context.Context, rt *TaskRuntime, task string, open map[string]bool, byUpload map[string]*Checkpoint, listed time.Time) {
	for id, cp := range byUpload {
		if cp.Task != task || open[id] || listed.Sub(cp.Heartbeat) < s.cfg.Lease || listed.Sub(cp.Created) < time.Minute {
			continue
		}
		if err := s.restart(ctx, rt, cp, "litter-"+digest(id)[:16]); err != nil {
			s.log.Warn("orphan sweep: queue a look at a key whose upload is gone", "task", task, "key", cp.Key, "err", err)
			continue // the checkpoint is kept: the next sweep tries again
		}
		s.copier.forget(ctx, cp)
		s.log.Info("checkpoint of an upload that is no longer open forgotten, its key queued for a look",
			"task", task, "key", cp.Key, "upload_id", id)
	}
}

// restart queues a converge job for the key of cp that does not resume
// cp's upload: it makes the destination match the source whatever became
// of that upload.
func (s *Sweeper) restart(ctx context.Context, rt *TaskRuntime, cp *Checkpoint, nonce string) error {
	_, err := s.q.Publish(ctx, []Job{{Task: cp.Task, Kind: KindConverge, Origin: originOrphanSweep, Nonce: nonce,
		ObjectArgs: ObjectArgs{Bucket: rt.Task.Source.Bucket, Key: cp.Key, ETag: cp.ETag, Size: cp.Size},
		PartArgs:   PartArgs{UploadID: cp.UploadID}}})
	return err
}

// orphan says why upload u is an orphan of oss2s3's ("" if it is not one:
// a live copy owns it, or it is not oss2s3's), with the checkpoint or the
// notes that make it oss2s3's.
func (s *Sweeper) orphan(ctx context.Context, task string, u Upload, cp *Checkpoint, now time.Time) (*Checkpoint, []string, string, error) {
	if cp != nil {
		// A live copy renews its lease (a giant upload: counts a part)
		// far more often than OrphanAge.
		if idle := now.Sub(cp.Heartbeat); cp.Task == task && cp.DstKey == u.Key && idle >= s.cfg.OrphanAge {
			return cp, nil, "no copy has worked on it for " + idle.Round(time.Second).String(), nil
		}
		return nil, nil, "", nil
	}
	if a, err := s.q.ckpt.wasAborted(ctx, u.UploadID); err != nil {
		return nil, nil, "", err
	} else if a != nil && a.Task == task && a.DstKey == u.Key {
		return nil, []string{abortedKey(u.UploadID)}, "aborted before, and brought back by a part upload that was in flight", nil
	}
	notes, names, err := s.q.ckpt.pending(ctx, task, u.Key)
	if err != nil {
		return nil, nil, "", err
	}
	// The note is made just before the upload is created (a minute
	// allows for the clocks of two machines); of several, the latest
	// such is this upload's, and the others may be other orphans'.
	best := -1
	for i, n := range notes {
		if !n.At.After(u.Initiated.Add(time.Minute)) && (best < 0 || n.At.After(notes[best].At)) {
			best = i
		}
	}
	if best < 0 {
		return nil, nil, "", nil
	}
	return nil, names[best : best+1], "its worker died before a checkpoint named it", nil
}
