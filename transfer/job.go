package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Job is one message of the job queue: the envelope every kind of job
// shares (which task, which kind, where it came from, its attempts and its
// line), and the payload of its kind, one type each:
//   - ObjectArgs: converge and remove jobs (and the object of a part job);
//   - PartArgs: part jobs, one part of a giant object's upload;
//   - ShardArgs: reconcile jobs, one shard of a run.
//
// The worker of a kind reads its own payload (see NewWorkers and
// WorkerConfig.Kinds); the others are zero. The payloads are embedded, so
// the JSON on the wire is flat, as it has always been: jobs already queued
// decode unchanged (TestJobWireFormat pins it).
type Job struct {
	Task      string    `json:"task"`
	Kind      string    `json:"kind"`             // KindConverge, KindRemove, KindPart or KindReconcile
	Origin    string    `json:"origin,omitempty"` // how it arrived, e.g. oss_webhook
	EventTime time.Time `json:"event_time,omitzero"`
	QueuedAt  time.Time `json:"queued_at,omitzero"`

	ObjectArgs
	PartArgs
	ShardArgs

	// NotBefore delays a job (a retry after its backoff).
	// Waits counted the archive waits of releases that queued a job for
	// each; it is kept so that such jobs still decode, and reset by a
	// redrive.
	NotBefore time.Time `json:"not_before,omitzero"`
	Waits     int       `json:"waits,omitempty"`
	// Attempts counts the attempts that failed before this one (a job
	// that failed is queued again with one more, see Workers.fail).
	// Waiting, hand-backs at shutdown and crashes do not count.
	Attempts int `json:"attempts,omitempty"`
	// Nonce makes a job re-queued on purpose (a redrive, a wait) distinct
	// from the one it replaces, for deduplication.
	Nonce string `json:"nonce,omitempty"`
	// Parent is the nonce of the job this one carries on (a giant
	// object's part jobs, a giant copy started over, an archive wait):
	// whoever counts the jobs it queued (a reconcile run) counts this
	// one's end as theirs. Not part of MsgID.
	Parent string `json:"parent,omitempty"`
}

// ObjectArgs are the payload of the jobs about one object: converge the
// key to the source's current state. Whatever they say of the object
// (ETag, size) is a hint for logs and deduplication only: the worker
// always asks the source. Reconcile jobs use Bucket and Key to name their
// shard (for MsgID and the logs).
type ObjectArgs struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	ETag   string `json:"etag,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Event  string `json:"event,omitempty"` // the OSS event name, e.g. ObjectCreated:PutObject
	// Force copies even when the destination already holds the source
	// version (a reconcile run in copy_all mode).
	Force bool `json:"force,omitempty"`
}

// PartArgs are the payload of a part job: one part of a giant object's
// upload (the object is in ObjectArgs).
type PartArgs struct {
	UploadID string `json:"upload_id,omitempty"`
	Part     int32  `json:"part,omitempty"`
	// Redo counts fresh starts of the giant object after one of its
	// parts failed.
	Redo int `json:"redo,omitempty"`
}

// ShardArgs are the payload of a reconcile job: the shard's description,
// JSON read by the reconciler's worker (a string, so that a Job stays
// comparable).
type ShardArgs struct {
	Shard string `json:"shard,omitempty"`
}

// Job kinds.
const (
	KindConverge = "converge"
	KindRemove   = "remove"
	KindPart     = "part"
	// KindReconcile jobs diff one shard of a reconcile run; any replica
	// may take one, and a replica that dies leaves it to another.
	KindReconcile = "reconcile"
)

// MsgID is the JetStream message id that makes a re-sent event a no-op
// within the stream's duplicate window: the same task, key, object version
// (ETag) and kind of event give the same id. Events without an ETag (deletes)
// use their event time instead, so two deletes of the same key at different
// times stay two jobs.
func (j Job) MsgID() string {
	version := j.ETag
	if version == "" {
		version = "t:" + j.EventTime.UTC().Format(time.RFC3339Nano)
	}
	if j.Kind == KindPart {
		version = j.ETag + "/" + j.UploadID + "/" + strconv.Itoa(int(j.Part))
	}
	// "<len>:<field>|" for each field, hashed: ids already in a stream's
	// duplicate window must stay the same across versions
	// (TestMsgIDIsStable pins them). Built with append, not fmt: this runs
	// once per event on the gateway's hot path.
	var buf [512]byte
	b := buf[:0]
	for _, s := range [...]string{j.Task, j.Bucket, j.Key, version, j.Kind, j.Nonce} {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
		b = append(b, '|')
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Retry is the job that makes attempt number attempts+1 of j after j's
// attempt failed, not before notBefore. seq, the stream sequence of the
// failed delivery, names it: the same delivery failing twice (its ack lost)
// queues one retry, not two.
func (j Job) Retry(seq uint64, notBefore time.Time) Job {
	next := j
	next.Attempts++
	next.NotBefore = notBefore
	next.Parent = j.Lineage()
	next.Nonce = "retry-" + strconv.FormatUint(seq, 10)
	if seq == 0 { // no sequence known: a nonce of its own, never another job's
		next.Nonce = "retry-" + newNonce()
	}
	next.QueuedAt = time.Time{}
	return next
}

// Lineage is the nonce of the job that started this one's line: Parent if
// it carries on another job, else its own.
func (j Job) Lineage() string {
	if j.Parent != "" {
		return j.Parent
	}
	return j.Nonce
}

// LogArgs are the attributes every log line about this job carries.
func (j Job) LogArgs() []any {
	return []any{"task", j.Task, "key", j.Key}
}

func decodeJob(data []byte) (Job, error) {
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return j, fmt.Errorf("decode job: %w", err)
	}
	if j.Task == "" || j.Key == "" {
		return j, fmt.Errorf("decode job: task and key are required")
	}
	return j, nil
}
