package transfer

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/metrics"
)

// objectWorkers are the workers of the jobs about objects: converge and
// remove jobs (convergeWorker) and the part jobs of giant objects
// (partWorker). They share the queue (to queue follow-up jobs), the copier
// and the tasks.
type objectWorkers struct {
	q      *Queue
	copier *Copier
	tasks  TaskSet
	cfg    WorkerConfig
}

// task returns the runtime of job's task, or the error that hands the job
// back when a reload removed the task since handle looked.
func (w *objectWorkers) task(job Job) (*TaskRuntime, error) {
	if rt, ok := w.tasks.Tasks()[job.Task]; ok {
		return rt, nil
	}
	return nil, errTaskGone(job.Task, w.q.cfg.AckWait)
}

// convergeWorker makes a key at the destination match the source.
type convergeWorker struct{ *objectWorkers }

func (w convergeWorker) work(ctx context.Context, job Job, log *slog.Logger) (outcome, error) {
	rt, err := w.task(job)
	if err != nil {
		return outcome{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout(rt))
	defer cancel()
	out, err := w.converge(ctx, rt, job, log)
	if errors.Is(err, ErrBusy) {
		// Waiting spends no attempt: the owner finishes the copy, or its
		// lease runs out and the copy is resumed.
		return out, Snooze(w.busyDelay(rt), "object busy, will look again", err)
	}
	return out, err
}

// partWorker copies one part of a giant object.
type partWorker struct{ *objectWorkers }

func (w partWorker) work(ctx context.Context, job Job, log *slog.Logger) (outcome, error) {
	rt, err := w.task(job)
	if err != nil {
		return outcome{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout(rt))
	defer cancel()
	return w.part(ctx, rt, job, log)
}

func (w *objectWorkers) timeout(rt *TaskRuntime) time.Duration {
	if rt.Task.Options.Timeout > 0 {
		return rt.Task.Options.Timeout
	}
	return w.cfg.JobTimeout
}

func (w *objectWorkers) copyConfig(rt *TaskRuntime) CopyConfig {
	cfg := w.cfg.Copy
	o := rt.Task.Options
	if o.PartSize > 0 {
		cfg.PartSize = o.PartSize
	}
	if o.MultipartThreshold > 0 {
		cfg.MultipartThreshold = o.MultipartThreshold
	}
	if o.PartsInFlight > 0 {
		cfg.PartsInFlight = o.PartsInFlight
	}
	if o.GiantThreshold > 0 {
		cfg.GiantThreshold = o.GiantThreshold
	}
	return cfg.withDefaults()
}

// busyDelay is how long a job for an object another worker is copying
// waits before it looks again: about when a dead owner's lease runs out.
func (w *objectWorkers) busyDelay(rt *TaskRuntime) time.Duration {
	return w.copyConfig(rt).Lease / 2
}

// converge makes the destination match the source's current state of the
// job's key, whatever the event said: late, repeated and reordered events
// all end in the same state.
func (w *objectWorkers) converge(ctx context.Context, rt *TaskRuntime, job Job, log *slog.Logger) (outcome, error) {
	cfg := w.copyConfig(rt)
	if op, ok := rt.Source.(Opener); ok && job.Kind == KindConverge && job.Size < int64(cfg.MultipartThreshold) {
		if out, handled, err := w.convergeSmall(ctx, rt, op, job, cfg, log); handled {
			return out, err
		}
	}
	key, info, err := headSource(ctx, rt.Source, job.Key)
	if errors.Is(err, ErrNotFound) {
		return w.sourceGone(ctx, rt, job, key, log)
	}
	if err != nil {
		return outcome{}, err
	}
	cmp := compareOptions(rt.Task.Options, job)
	if d, _ := NeedCopy(info, nil, Headed, cmp); d == Skip {
		return outcome{result: metrics.CopySkipped, why: "symlink skipped (options.symlinks: skip)"}, nil
	}
	if info.NeedsRestore() {
		return w.archived(ctx, rt, job, info, log)
	}
	if current, err := w.current(ctx, rt, job, key, info, cmp); err != nil {
		return outcome{}, err
	} else if current {
		return outcome{result: metrics.CopySkipped, why: "destination already holds this source version"}, nil
	}
	return w.copy(ctx, rt, job, key, info, cfg, log)
}

// headSource HEADs key at the source; a key not found that has escapes in
// it is tried unescaped (REFERENCE.md 2: be defensive about how the event
// encoded the key). It returns the key that was found.
func headSource(ctx context.Context, src Source, key string) (string, *ObjectInfo, error) {
	info, err := src.Head(ctx, key)
	if errors.Is(err, ErrNotFound) && strings.ContainsAny(key, "%+") {
		if dec, derr := url.QueryUnescape(key); derr == nil && dec != key {
			if i, e := src.Head(ctx, dec); e == nil {
				return dec, i, nil
			}
		}
	}
	return key, info, err
}

// sourceGone handles a key the source no longer has: its uploads are
// aborted, and its copy deleted if the job is a delete and the task
// propagates deletes.
func (w *objectWorkers) sourceGone(ctx context.Context, rt *TaskRuntime, job Job, key string, log *slog.Logger) (outcome, error) {
	// Uploads of versions that are gone now can never complete.
	w.copier.abandon(ctx, rt.Task.Name, key, rt.Destination)
	if job.Kind != KindRemove || rt.Task.Options.Deletes != DeletesPropagate {
		return outcome{result: metrics.CopySourceGone, why: "source object gone, nothing to copy"}, nil
	}
	out, err := w.deleteCopy(ctx, rt, rt.Task.DestinationKey(key))
	if err == nil && out.result == metrics.CopyDeleted {
		w.recheck(ctx, rt, job, key, "", false, log)
	}
	return out, err
}

// current reports whether the destination already holds the source
// version info (never, without a look, under compare: false or copy_all).
func (w *objectWorkers) current(ctx context.Context, rt *TaskRuntime, job Job, key string, info *ObjectInfo, cmp CompareOptions) (bool, error) {
	if !cmp.Looks() {
		return false, nil
	}
	cur, err := rt.Destination.Head(ctx, rt.Task.DestinationKey(key))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if d, _ := NeedCopy(info, cur, Headed, cmp); d != Same {
		return false, nil
	}
	if job.Origin == originLeaseExpired || job.Origin == originOrphanSweep {
		// Its dead worker completed it, or a newer version made it
		// useless, before it could forget the checkpoint: forget it now.
		w.copier.drop(ctx, rt.Task.Name, key, job.ETag, rt.Destination)
	}
	return true, nil
}

// copy copies the source version info of key: whole, in parts, or, for a
// giant object, as part jobs for every replica.
func (w *objectWorkers) copy(ctx context.Context, rt *TaskRuntime, job Job, key string, info *ObjectInfo, cfg CopyConfig, log *slog.Logger) (outcome, error) {
	task := rt.Task
	write := &WriteInfo{Source: info, StorageClass: task.Destination.StorageClassMap[info.StorageClass]}
	if task.Options.CopyTags && info.TagCount > 0 {
		if tg, ok := rt.Source.(Tagger); ok {
			var err error
			if write.Tags, err = tg.Tags(ctx, key); err != nil {
				return outcome{}, err
			}
		}
	}
	o := Object{Task: task.Name, Src: rt.Source, Dst: rt.Destination, Info: info, DstKey: task.DestinationKey(key), Write: write}
	if job.Origin == originOrphanSweep {
		o.Abandon = job.UploadID
	}
	if info.Size >= int64(cfg.GiantThreshold) && w.copier.ckpt != nil {
		return w.startGiant(ctx, o, job, cfg, log)
	}
	res, err := w.copier.Copy(ctx, o, cfg)
	if err != nil {
		return outcome{}, err
	}
	out := w.copied(ctx, rt, o, res, log)
	w.recheck(ctx, rt, job, key, info.ETag, false, log)
	return out, nil
}

// copied finishes a successful copy: where the source published no CRC-64,
// the one computed on the way is recorded on the copy.
func (w *objectWorkers) copied(ctx context.Context, rt *TaskRuntime, o Object, res *CopyResult, log *slog.Logger) outcome {
	if !o.Info.HasCRC64 {
		if r, ok := rt.Destination.(CRCRecorder); ok {
			if err := r.RecordCRC64(ctx, o.DstKey, res.CRC64); err != nil {
				log.Warn("source has no CRC-64; recording the computed one failed", "crc64", res.CRC64, "err", err)
			}
		}
	}
	return outcome{result: metrics.CopyCopied, copy: res}
}

// convergeSmall is the path of a small object: one GET gives its headers
// and its bytes, and one PUT writes it. Whether the destination already
// holds the version is asked in the cheapest way: for an object written
// whole (up to 1 MiB) by a create-only PUT that looks only if the key
// exists (Object.KeepCurrent); for a bigger one by a HEAD sent together
// with the GET. Anything unusual (an error, a big or archived object, tags
// to copy) is left to the full path: handled is false.
func (w *objectWorkers) convergeSmall(ctx context.Context, rt *TaskRuntime, op Opener, job Job, cfg CopyConfig, log *slog.Logger) (out outcome, handled bool, err error) {
	task, opts := rt.Task, rt.Task.Options
	key, dstKey := job.Key, task.DestinationKey(job.Key)
	cmp := compareOptions(opts, job)
	compare := cmp.Looks()
	var (
		cur     *ObjectInfo
		headErr error
		headed  = make(chan struct{})
	)
	// job.Size is the event's word for the size; the GET's is the truth.
	headFirst := compare && !WritesWhole(rt.Destination, job.Size)
	if headFirst {
		// The HEAD does not depend on the GET's answer: send both at once,
		// so the object costs two round trips, not three.
		go func() {
			defer close(headed)
			cur, headErr = rt.Destination.Head(ctx, dstKey)
		}()
	} else {
		close(headed)
	}
	info, body, err := op.Open(ctx, key)
	<-headed
	if err != nil {
		return outcome{}, false, nil
	}
	defer body.Close()
	if info.Size >= int64(cfg.MultipartThreshold) || info.NeedsRestore() || (opts.CopyTags && info.TagCount > 0) {
		return outcome{}, false, nil
	}
	if d, _ := NeedCopy(info, nil, Headed, cmp); d == Skip {
		return outcome{}, false, nil
	}
	keepCurrent := compare && WritesWhole(rt.Destination, info.Size)
	if compare && !keepCurrent {
		if !headFirst { // the event said small, the object is not
			cur, headErr = rt.Destination.Head(ctx, dstKey)
		}
		if headErr != nil && !errors.Is(headErr, ErrNotFound) {
			return outcome{}, true, headErr
		}
		if d, _ := NeedCopy(info, cur, Headed, cmp); headErr == nil && d == Same {
			return outcome{result: metrics.CopySkipped, why: "destination already holds this source version"}, true, nil
		}
	}
	o := Object{Task: task.Name, Src: rt.Source, Dst: rt.Destination, Info: info, DstKey: dstKey, KeepCurrent: keepCurrent,
		Write: &WriteInfo{Source: info, StorageClass: task.Destination.StorageClassMap[info.StorageClass]}}
	res, err := w.copier.CopyBody(ctx, o, body)
	if err != nil {
		return outcome{}, true, err
	}
	if res.Skipped {
		return outcome{result: metrics.CopySkipped, why: "destination already holds this source version"}, true, nil
	}
	out = w.copied(ctx, rt, o, res, log)
	w.recheck(ctx, rt, job, key, info.ETag, res.Created, log)
	return out, true, nil
}

// Origins of the jobs the workers and the sweeper queue themselves.
const (
	originRecheck      = "recheck"
	originLeaseExpired = "lease_expired"
	originOrphanSweep  = "orphan_sweep"
)

// recheck looks at the source once more after a write: an event for a
// newer version of the key, or for its deletion, may have been handled
// while this copy was in flight, and this copy's write landed last,
// leaving the destination with a version the source no longer holds (or
// an object it deleted). If so, the key is queued again. want is the
// source ETag written ("" after a delete: the source should be gone). A
// create-only write that found no object cannot have overwritten a newer
// one; unless deletes propagate, it needs no second look. A job queued by
// a recheck is not rechecked again, so that a source whose HEAD and GET
// name versions differently cannot make an endless chain (a reconcile
// catches the rare race it then loses).
func (w *objectWorkers) recheck(ctx context.Context, rt *TaskRuntime, job Job, key, want string, created bool, log *slog.Logger) {
	propagate := rt.Task.Options.Deletes == DeletesPropagate
	if (created && !propagate) || job.Origin == originRecheck {
		return
	}
	cur, err := rt.Source.Head(ctx, key)
	next := Job{Task: rt.Task.Name, Kind: KindConverge, Origin: originRecheck, Nonce: newNonce(), ObjectArgs: ObjectArgs{Bucket: rt.Task.Source.Bucket, Key: key}}
	switch {
	case errors.Is(err, ErrNotFound):
		if want == "" || !propagate {
			return
		}
		next.Kind = KindRemove
	case err != nil:
		log.Warn("could not look at the source again after the write (a later event or a reconcile corrects a change)", "err", err)
		return
	case cur.ETag == want:
		return
	default:
		next.ETag = cur.ETag
	}
	if _, err := w.q.Publish(ctx, []Job{next}); err != nil {
		log.Warn("the source changed during the copy, and queueing the key again failed", "err", err)
		return
	}
	log.Info("the source changed during the copy: key queued again", "written", want, "source_now", next.ETag, "kind", next.Kind)
}

// deleteCopy deletes the copy of a key deleted at the source, but only a
// copy oss2s3 wrote (unless the task says delete_foreign).
func (w *objectWorkers) deleteCopy(ctx context.Context, rt *TaskRuntime, dstKey string) (outcome, error) {
	cur, err := rt.Destination.Head(ctx, dstKey)
	if errors.Is(err, ErrNotFound) {
		return outcome{result: metrics.CopySourceGone, why: "deleted at the source; no copy to delete"}, nil
	}
	if err != nil {
		return outcome{}, err
	}
	if !WrittenByUs(cur) && !rt.Task.Options.DeleteForeign {
		return outcome{result: metrics.CopySkipped, why: "deleted at the source, but the destination object was not written by oss2s3: kept"}, nil
	}
	if err := rt.Destination.Delete(ctx, dstKey); err != nil {
		return outcome{}, err
	}
	return outcome{result: metrics.CopyDeleted, why: "deleted at the source: copy deleted"}, nil
}

// archived handles an object in an archive class: skip it, or restore it
// and look again, every options.restore_poll, until the restore is done.
func (w *objectWorkers) archived(ctx context.Context, rt *TaskRuntime, job Job, info *ObjectInfo, log *slog.Logger) (outcome, error) {
	if rt.Task.Options.Archive != ArchiveRestore {
		return outcome{result: metrics.CopySkipped, why: "archived object skipped (options.archive: skip): " + info.StorageClass}, nil
	}
	r, ok := rt.Source.(Restorer)
	if !ok {
		return outcome{}, Permanent(errors.New("source cannot restore archived objects"))
	}
	if !strings.Contains(info.Restore, "ongoing-request") {
		if err := r.Restore(ctx, info.Key); err != nil {
			return outcome{}, err
		}
		log.Info("archived object: restore requested", "storage_class", info.StorageClass)
	}
	poll := rt.Task.Options.RestorePoll
	if poll <= 0 {
		poll = 10 * time.Minute
	}
	// A snooze: waiting for a restore (hours, perhaps) spends no attempt,
	// and the job stays the one message it is.
	return outcome{result: metrics.CopyDeferred},
		Snooze(poll, "archived object: restore in progress, looking again in "+poll.String(), nil)
}

// startGiant splits a giant object into part jobs for every replica.
func (w *objectWorkers) startGiant(ctx context.Context, o Object, job Job, cfg CopyConfig, log *slog.Logger) (outcome, error) {
	cp, missing, err := w.copier.StartGiant(ctx, o, cfg)
	if err != nil {
		return outcome{}, err
	}
	jobs := make([]Job, 0, len(missing))
	for _, n := range missing {
		jobs = append(jobs, Job{
			Task: job.Task, Kind: KindPart, Origin: job.Origin, EventTime: job.EventTime,
			ObjectArgs: ObjectArgs{Bucket: job.Bucket, Key: o.Info.Key, ETag: o.Info.ETag, Size: o.Info.Size},
			PartArgs:   PartArgs{UploadID: cp.UploadID, Part: n, Redo: job.Redo},
			// The starting job's nonce is in the parts' message ids: the
			// same job delivered again (its worker died after queueing
			// them) queues them once, but a later start of the same
			// upload (a part failed its check, a stalled upload taken
			// up again) queues them anew. Without it JetStream would
			// take them for duplicates of the parts already consumed,
			// and the upload would wait forever for a part never copied
			// (seen in the 30-minute soak).
			Nonce:  job.Nonce,
			Parent: job.Lineage(),
		})
	}
	for len(jobs) > 0 {
		batch := jobs[:min(len(jobs), 1000)]
		if _, err := w.q.Publish(ctx, batch); err != nil {
			return outcome{}, err
		}
		jobs = jobs[len(batch):]
	}
	log.Info("giant object: parts queued for every replica", "size", o.Info.Size, "parts", cp.TotalParts,
		"queued", len(missing), "part_size", cp.PartSize)
	return outcome{result: metrics.CopyDeferred}, nil
}

// part copies one part of a giant object; the worker whose part completes
// the set completes the upload.
func (w *objectWorkers) part(ctx context.Context, rt *TaskRuntime, job Job, log *slog.Logger) (outcome, error) {
	start := time.Now()
	obj, args := job.ObjectArgs, job.PartArgs // a part job's payload
	res, err := w.copier.CopyPart(ctx, job.Task, obj.Key, obj.ETag, args.UploadID, args.Part, rt.Source, rt.Destination)
	switch {
	case errors.Is(err, ErrStalePart):
		return outcome{why: "part of an upload that is gone: dropped"}, nil
	case errors.Is(err, ErrSourceChanged), errors.Is(err, ErrChecksumMismatch) && args.Redo+1 < w.q.cfg.MaxAttempts:
		// Start again from a fresh HEAD: a changed source aborted the
		// upload, so a new one is made; a part that failed its check
		// leaves the upload open, and the parts still missing are
		// queued again. The nonce is the upload's and the round's, so
		// parts failing together in one round start one more round.
		next := Job{
			Task:       job.Task,
			Kind:       KindConverge,
			Origin:     job.Origin,
			EventTime:  job.EventTime,
			Parent:     job.Lineage(),
			Nonce:      "redo-" + digest(args.UploadID, strconv.Itoa(args.Redo+1))[:16],
			ObjectArgs: ObjectArgs{Bucket: obj.Bucket, Key: obj.Key},
			PartArgs:   PartArgs{Redo: args.Redo + 1},
		}
		if _, perr := w.q.Publish(ctx, []Job{next}); perr != nil {
			return outcome{}, perr
		}
		log.Warn("giant object: a part failed, the object is started again from a fresh look at the source",
			"err", err, "redo", next.Redo)
		return outcome{result: metrics.CopyRetried}, nil
	case err != nil:
		return outcome{}, err
	}
	if !res.Completed {
		// One line a part: which replica copied which part of a giant
		// object, and that it is moving.
		log.Info("giant object: part copied", "part", res.Part.Number, "bytes", res.Part.Size, "of_parts", res.Parts,
			"duration", time.Since(start).Round(time.Millisecond))
		return outcome{}, nil
	}
	w.recheck(ctx, rt, job, job.Key, job.ETag, false, log)
	return outcome{result: metrics.CopyCopied, copy: &CopyResult{Bytes: res.Size, Multipart: true, CRC64: res.CRC64,
		Parts: res.Parts, Duration: time.Since(start)}}, nil
}

// compareOptions are a copy job's settings for the copy decision: only
// oss2s3's source identity proves a destination object current; a task's
// compare: false and a copy_all reconcile's jobs copy without looking.
func compareOptions(opts TaskOptions, job Job) CompareOptions {
	return CompareOptions{Verify: VerifyIdentity, CopyAll: job.Force, NoCompare: !opts.Compares(),
		SkipSymlinks: opts.Symlinks == SymlinksSkip}
}
