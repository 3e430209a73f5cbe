package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// CheckpointBucket is the JetStream Key-Value bucket that holds multipart
// checkpoints, shared by every replica.
const CheckpointBucket = "oss2s3_uploads"

// Checkpoint records a multipart upload in progress: which destination
// upload belongs to which source version, and the parts already in. It is
// keyed by task, key and source ETag, so that an upload is never continued
// for another key or another version of the object.
type Checkpoint struct {
	Task       string          `json:"task"`
	Key        string          `json:"key"`
	DstKey     string          `json:"dst_key"`
	ETag       string          `json:"etag"`
	Size       int64           `json:"size"`
	PartSize   int64           `json:"part_size"`
	TotalParts int             `json:"total_parts"`
	UploadID   string          `json:"upload_id"`
	Done       int             `json:"done"`            // parts counted in (giant uploads)
	Giant      bool            `json:"giant,omitempty"` // parts are jobs on the queue
	Owner      string          `json:"owner,omitempty"` // the worker copying it now (not for giant uploads)
	Heartbeat  time.Time       `json:"heartbeat"`
	Created    time.Time       `json:"created"`
	Info       json.RawMessage `json:"info,omitempty"` // the source's ObjectInfo at the start

	// Parts are stored one KV key each (a checkpoint of 10,000 parts
	// would not fit in one message, and rewriting it per part would cost
	// O(parts²)); Get loads them.
	Parts map[int32]Part `json:"-"`
}

// Matches reports whether the checkpoint is for exactly this copy.
func (c *Checkpoint) Matches(task, key, dstKey, etag string, size, partSize int64) bool {
	return c.Task == task && c.Key == key && c.DstKey == dstKey && c.ETag == etag && c.Size == size && c.PartSize == partSize
}

// SortedParts returns the finished parts in part-number order.
func (c *Checkpoint) SortedParts() []Part {
	parts := make([]Part, 0, len(c.Parts))
	for _, p := range c.Parts {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts
}

// Checkpoints stores checkpoints in JetStream KV.
type Checkpoints struct {
	kv jetstream.KeyValue
}

// ErrCheckpointConflict means another writer changed the checkpoint first.
var ErrCheckpointConflict = errors.New("checkpoint changed concurrently")

func openCheckpoints(ctx context.Context, js jetstream.JetStream, replicas int, ttl time.Duration) (*Checkpoints, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      CheckpointBucket,
		Description: "oss2s3 multipart checkpoints: upload id and finished parts per task, key and source ETag",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create key-value bucket %s: %w", CheckpointBucket, err)
	}
	return &Checkpoints{kv: kv}, nil
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s|", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// objectPrefix is the part of a checkpoint's name that all versions of one
// key share.
func objectPrefix(task, key string) string { return "u." + digest(task, key)[:40] }

func checkpointKey(task, key, etag string) string {
	return objectPrefix(task, key) + "." + digest(etag)[:16]
}

func partKey(task, key, etag string, n int32) string {
	return fmt.Sprintf("%s.p.%d", checkpointKey(task, key, etag), n)
}

// Get returns the checkpoint with its finished parts and its revision, or
// nil if there is none.
func (c *Checkpoints) Get(ctx context.Context, task, key, etag string) (*Checkpoint, uint64, error) {
	cp, rev, err := c.getMain(ctx, checkpointKey(task, key, etag))
	if err != nil || cp == nil {
		return nil, 0, err
	}
	lister, err := c.kv.ListKeysFiltered(ctx, checkpointKey(task, key, etag)+".p.*")
	if err != nil {
		return nil, 0, fmt.Errorf("list checkpoint parts: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	for k := range lister.Keys() {
		e, err := c.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read checkpoint part: %w", err)
		}
		var p Part
		if err := json.Unmarshal(e.Value(), &p); err != nil {
			return nil, 0, fmt.Errorf("decode checkpoint part: %w", err)
		}
		cp.Parts[p.Number] = p
	}
	return cp, rev, nil
}

func (c *Checkpoints) getMain(ctx context.Context, k string) (*Checkpoint, uint64, error) {
	e, err := c.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read checkpoint: %w", err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return nil, 0, fmt.Errorf("decode checkpoint: %w", err)
	}
	cp.Parts = map[int32]Part{}
	return &cp, e.Revision(), nil
}

func (c *Checkpoints) getPart(ctx context.Context, cp *Checkpoint, n int32) (Part, bool, error) {
	var p Part
	e, err := c.kv.Get(ctx, partKey(cp.Task, cp.Key, cp.ETag, n))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("read checkpoint part: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return p, false, fmt.Errorf("decode checkpoint part: %w", err)
	}
	return p, true, nil
}

// Save writes cp's main record (not its parts) if its revision is still rev
// (0: it must not exist yet), and returns the new revision;
// ErrCheckpointConflict if someone else wrote first.
func (c *Checkpoints) Save(ctx context.Context, cp *Checkpoint, rev uint64) (uint64, error) {
	data, err := json.Marshal(cp)
	if err != nil {
		return 0, err
	}
	k := checkpointKey(cp.Task, cp.Key, cp.ETag)
	var n uint64
	if rev == 0 {
		n, err = c.kv.Create(ctx, k, data)
	} else {
		n, err = c.kv.Update(ctx, k, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) {
		return 0, ErrCheckpointConflict
	}
	if err != nil {
		return 0, fmt.Errorf("write checkpoint: %w", err)
	}
	return n, nil
}

// SavePart records a finished part. It reports false if the part was
// recorded already (a job delivered twice), so that it is counted once.
func (c *Checkpoints) SavePart(ctx context.Context, cp *Checkpoint, p Part) (bool, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return false, err
	}
	_, err = c.kv.Create(ctx, partKey(cp.Task, cp.Key, cp.ETag, p.Number), data)
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write checkpoint part: %w", err)
	}
	return true, nil
}

// isWrongSequence reports a compare-and-set conflict. A replicated (R3)
// bucket reports it with another error code (10164) than a single-node one
// (10071); missed, a conflict between two replicas counting parts of one
// giant object at once failed the part job instead of counting again.
func isWrongSequence(err error) bool {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// countedKey marks part n as counted into a giant checkpoint's Done.
func countedKey(task, key, etag string, n int32) string {
	return partKey(task, key, etag, n) + ".c"
}

// markCounted records that part n is counted in Done.
func (c *Checkpoints) markCounted(ctx context.Context, cp *Checkpoint, n int32) error {
	_, err := c.kv.Create(ctx, countedKey(cp.Task, cp.Key, cp.ETag, n), nil)
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
		return fmt.Errorf("write checkpoint part count: %w", err)
	}
	return nil
}

// counted reports whether part n is known to be counted in Done.
func (c *Checkpoints) counted(ctx context.Context, cp *Checkpoint, n int32) (bool, error) {
	_, err := c.kv.Get(ctx, countedKey(cp.Task, cp.Key, cp.ETag, n))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read checkpoint part count: %w", err)
	}
	return true, nil
}

// Delete removes the checkpoint of task/key/etag and its parts.
func (c *Checkpoints) Delete(ctx context.Context, task, key, etag string) error {
	main := checkpointKey(task, key, etag)
	if lister, err := c.kv.ListKeysFiltered(ctx, main+".p.>"); err == nil { // parts and their count marks
		for k := range lister.Keys() {
			_ = c.kv.Purge(ctx, k)
		}
		_ = lister.Stop()
	}
	if err := c.kv.Purge(ctx, main); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete checkpoint: %w", err)
	}
	return nil
}

// Others returns the checkpoints of other source versions of task/key:
// uploads that a newer version has made useless.
func (c *Checkpoints) Others(ctx context.Context, task, key, etag string) ([]*Checkpoint, error) {
	lister, err := c.kv.ListKeysFiltered(ctx, objectPrefix(task, key)+".*")
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	mine := checkpointKey(task, key, etag)
	var out []*Checkpoint
	for k := range lister.Keys() {
		if k == mine {
			continue
		}
		cp, _, err := c.getMain(ctx, k)
		if err == nil && cp != nil && cp.Task == task && cp.Key == key {
			out = append(out, cp)
		}
	}
	return out, nil
}
