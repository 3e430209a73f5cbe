package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Job asks a worker to converge one key of one task to the source's current
// state. Whatever the job says about the object (ETag, size) is a hint for
// logs and deduplication only: the worker always asks the source.
type Job struct {
	Task      string    `json:"task"`
	Bucket    string    `json:"bucket"`
	Key       string    `json:"key"`
	ETag      string    `json:"etag,omitempty"`
	Size      int64     `json:"size,omitempty"`
	Event     string    `json:"event,omitempty"`  // the OSS event name, e.g. ObjectCreated:PutObject
	Kind      string    `json:"kind"`             // "converge" or "remove"
	Origin    string    `json:"origin,omitempty"` // how it arrived, e.g. oss_webhook
	EventTime time.Time `json:"event_time,omitzero"`
	QueuedAt  time.Time `json:"queued_at,omitzero"`

	// Part jobs (Kind "part") copy one part of a giant object's upload.
	UploadID string `json:"upload_id,omitempty"`
	Part     int32  `json:"part,omitempty"`

	// NotBefore delays a job (an archive restore in progress); Waits counts
	// how often it was put back that way; Redo counts fresh starts after a
	// giant upload had to be abandoned.
	NotBefore time.Time `json:"not_before,omitzero"`
	Waits     int       `json:"waits,omitempty"`
	Redo      int       `json:"redo,omitempty"`
	// Nonce makes a job re-queued on purpose (a redrive, a wait) distinct
	// from the one it replaces, for deduplication.
	Nonce string `json:"nonce,omitempty"`
	// Parent is the nonce of the job this one carries on (a giant
	// object's part jobs, a giant copy started over, an archive wait):
	// whoever counts the jobs it queued (a reconcile run) counts this
	// one's end as theirs. Not part of MsgID.
	Parent string `json:"parent,omitempty"`
	// Force copies even when the destination already holds the source
	// version (a reconcile run in copy_all mode).
	Force bool `json:"force,omitempty"`
	// Shard is a reconcile shard's description (Kind "reconcile"), JSON
	// read by the ShardRunner (a string: a Job stays comparable).
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
