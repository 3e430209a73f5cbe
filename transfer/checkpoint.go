package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
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

func openCheckpoints(ctx context.Context, js jetstream.JetStream, replicas int, ttl, replyTimeout time.Duration) (*Checkpoints, error) {
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
	return &Checkpoints{kv: BoundedKV(kv, replyTimeout)}, nil
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

// partsPrefix is where the parts of cp's upload are recorded: under its
// upload, so that a part job of an upload given up, finishing late, can
// never record its part as one of the next upload's of the same version
// (which would complete with a part that is not in it), and forgetting one
// upload's checkpoint leaves the next one's parts alone.
func partsPrefix(cp *Checkpoint) string {
	return checkpointKey(cp.Task, cp.Key, cp.ETag) + ".q." + digest(cp.UploadID)[:16]
}

func partKey(cp *Checkpoint, n int32) string {
	return partsPrefix(cp) + "." + strconv.Itoa(int(n))
}

// kvListTimeout bounds one listing of the bucket's keys. A listing is a
// watch that ends when the server says it sent every key; a server lost
// in the middle never says so, and the listing would wait for ever.
const kvListTimeout = 30 * time.Second

// keys lists the checkpoint bucket's keys that match filter.
func (c *Checkpoints) keys(ctx context.Context, filter string) ([]string, error) {
	return ListKeys(ctx, c.kv, filter)
}

// ListKeys lists the keys of kv that match filter. A listing cut short
// (the server lost, kvListTimeout or ctx over) is an error, never a
// shorter list.
func ListKeys(ctx context.Context, kv jetstream.KeyValue, filter string) ([]string, error) {
	lctx, cancel := context.WithTimeout(ctx, kvListTimeout)
	defer cancel()
	lister, err := kv.ListKeysFiltered(lctx, filter)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = lister.Stop() }()
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	// The lister ends its channel the same way whether it saw the end
	// of the keys or its context ended first.
	if err := lctx.Err(); err != nil {
		return nil, fmt.Errorf("listing of %s cut short: %w", filter, err)
	}
	return keys, nil
}

// Get returns the checkpoint with its finished parts and its revision, or
// nil if there is none.
func (c *Checkpoints) Get(ctx context.Context, task, key, etag string) (*Checkpoint, uint64, error) {
	cp, rev, err := c.getMain(ctx, checkpointKey(task, key, etag))
	if err != nil || cp == nil {
		return nil, 0, err
	}
	keys, err := c.keys(ctx, partsPrefix(cp)+".*")
	if err != nil {
		return nil, 0, fmt.Errorf("list checkpoint parts: %w", err)
	}
	for _, k := range keys {
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
	e, err := c.kv.Get(ctx, partKey(cp, n))
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
	_, err = c.kv.Create(ctx, partKey(cp, p.Number), data)
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
func countedKey(cp *Checkpoint, n int32) string {
	return partKey(cp, n) + ".c"
}

// markCounted records that part n is counted in Done.
func (c *Checkpoints) markCounted(ctx context.Context, cp *Checkpoint, n int32) error {
	_, err := c.kv.Create(ctx, countedKey(cp, n), nil)
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
		return fmt.Errorf("write checkpoint part count: %w", err)
	}
	return nil
}

// counted reports whether part n is known to be counted in Done.
func (c *Checkpoints) counted(ctx context.Context, cp *Checkpoint, n int32) (bool, error) {
	_, err := c.kv.Get(ctx, countedKey(cp, n))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read checkpoint part count: %w", err)
	}
	return true, nil
}

// Delete removes the checkpoint cp names, with its parts: the checkpoint
// of cp's task, key and source version, if it still names cp's upload. A
// checkpoint of a later upload of the same version (the one that replaced
// cp's) and its parts are left alone.
func (c *Checkpoints) Delete(ctx context.Context, cp *Checkpoint) error {
	main := checkpointKey(cp.Task, cp.Key, cp.ETag)
	cur, rev, err := c.getMain(ctx, main)
	if err != nil {
		return err
	}
	if cur != nil && cur.UploadID == cp.UploadID {
		// At this revision: a checkpoint saved in between is another's.
		err := c.kv.Purge(ctx, main, jetstream.LastRevision(rev))
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && !isWrongSequence(err) {
			return fmt.Errorf("delete checkpoint: %w", err)
		}
	}
	// This upload's parts and their count marks, and those recorded
	// under the version by releases before parts were kept per upload.
	for _, filter := range []string{partsPrefix(cp) + ".>", main + ".p.>"} {
		if keys, err := c.keys(ctx, filter); err == nil {
			for _, k := range keys {
				_ = c.kv.Purge(ctx, k)
			}
		}
	}
	return nil
}

// Others returns the checkpoints of other source versions of task/key:
// uploads that a newer version has made useless.
func (c *Checkpoints) Others(ctx context.Context, task, key, etag string) ([]*Checkpoint, error) {
	keys, err := c.keys(ctx, objectPrefix(task, key)+".*")
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	mine := checkpointKey(task, key, etag)
	var out []*Checkpoint
	for _, k := range keys {
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

// List returns every checkpoint's main record (without its parts) with its
// revision: the multipart uploads in progress, as the sweeper sees them.
func (c *Checkpoints) List(ctx context.Context) ([]*Checkpoint, []uint64, error) {
	keys, err := c.keys(ctx, "u.*.*") // main records only; parts have more tokens
	if err != nil {
		return nil, nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var (
		cps  []*Checkpoint
		revs []uint64
	)
	for _, k := range keys {
		cp, rev, err := c.getMain(ctx, k)
		if err != nil {
			return nil, nil, err
		}
		if cp != nil {
			cps, revs = append(cps, cp), append(revs, rev)
		}
	}
	return cps, revs, nil
}

// pendingUpload notes that a worker is about to create a multipart upload
// of DstKey for Task: should it die before a checkpoint names the upload,
// the note is how the orphan sweeper knows the upload is oss2s3's.
type pendingUpload struct {
	Task   string    `json:"task"`
	DstKey string    `json:"dst_key"`
	At     time.Time `json:"at"`
}

func pendingPrefix(task, dstKey string) string { return "n." + digest(task, dstKey)[:40] }

// notePending records that an upload of dstKey is about to be created and
// returns the note's name, for donePending.
func (c *Checkpoints) notePending(ctx context.Context, task, dstKey string, at time.Time) (string, error) {
	data, err := json.Marshal(pendingUpload{Task: task, DstKey: dstKey, At: at.UTC()})
	if err != nil {
		return "", err
	}
	k := pendingPrefix(task, dstKey) + "." + newNonce()
	if _, err := c.kv.Put(ctx, k, data); err != nil {
		return "", fmt.Errorf("note upload: %w", err)
	}
	return k, nil
}

// donePending removes a note once a checkpoint names its upload (or the
// upload is aborted). A note left behind costs only the orphan sweeper a
// look; the bucket's TTL removes it in the end.
func (c *Checkpoints) donePending(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = c.kv.Purge(ctx, name)
}

// pending returns the notes of uploads of dstKey for task whose checkpoint
// was never written, with their names.
func (c *Checkpoints) pending(ctx context.Context, task, dstKey string) ([]pendingUpload, []string, error) {
	keys, err := c.keys(ctx, pendingPrefix(task, dstKey)+".*")
	if err != nil {
		return nil, nil, fmt.Errorf("list upload notes: %w", err)
	}
	var (
		notes []pendingUpload
		names []string
	)
	for _, k := range keys {
		e, err := c.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read upload note: %w", err)
		}
		var p pendingUpload
		if json.Unmarshal(e.Value(), &p) == nil && p.Task == task && p.DstKey == dstKey {
			notes, names = append(notes, p), append(names, k)
		}
	}
	return notes, names, nil
}

// abortedUpload notes that oss2s3 aborted an upload: should a part upload
// in flight bring it back, the orphan sweeper knows it is oss2s3's.
type abortedUpload struct {
	Task     string    `json:"task"`
	DstKey   string    `json:"dst_key"`
	UploadID string    `json:"upload_id"`
	At       time.Time `json:"at"`
}

func abortedKey(uploadID string) string { return "a." + digest(uploadID)[:40] }

// noteAborted records the abort of upload id (best effort: without the
// note, an upload brought back is left to a lifecycle rule).
func (c *Checkpoints) noteAborted(ctx context.Context, task, dstKey, id string, at time.Time) {
	data, err := json.Marshal(abortedUpload{Task: task, DstKey: dstKey, UploadID: id, At: at.UTC()})
	if err == nil {
		_, _ = c.kv.Put(ctx, abortedKey(id), data)
	}
}

// wasAborted returns the note of oss2s3's abort of upload id, if any.
func (c *Checkpoints) wasAborted(ctx context.Context, id string) (*abortedUpload, error) {
	e, err := c.kv.Get(ctx, abortedKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read abort note: %w", err)
	}
	var a abortedUpload
	if err := json.Unmarshal(e.Value(), &a); err != nil || a.UploadID != id {
		return nil, nil
	}
	return &a, nil
}
