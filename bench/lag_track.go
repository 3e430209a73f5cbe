package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"
)

// Object classes of the lag bench: each has its own key space and
// sequence, so that a slow multipart copy never holds back the listing of
// small objects.
const (
	classSmall     = 0
	classMultipart = 1
)

var classNames = [2]string{"small", "multipart"}

// lagChunk is how many objects of one class share a key prefix (a
// directory of versitygw's posix backend): one LIST page covers a chunk,
// and a listing reads one directory of at most this many entries.
const lagChunk = 1000

// States of a tracked object.
const (
	objQueued   = iota // sequence number given, not yet written and sent
	objPending         // written to the source, event sent (or being sent)
	objArrived         // seen at the destination
	objRejected        // the gateway did not accept its event: not waited for
)

type lagObj struct {
	sent    time.Time // the OSS event time: the object was written just before
	arrived time.Time // the LIST that first showed it answered then
	posted  time.Time // the gateway answered its event then
	size    int64
	state   uint8
}

type chunkState struct {
	lo   int       // no object of the chunk below this sequence is pending
	next time.Time // look again no earlier than this
}

type lagClassState struct {
	objs      []lagObj
	chunks    []chunkState
	firstOpen int // chunks below are done
	pending   int // queued + pending
}

// listTracker finds when each object of a step becomes readable at the
// destination, by listing it: ListObjectsV2 of one chunk's prefix, after
// the lowest object of the chunk not seen yet. A listing returns only
// objects that exist, so while copies keep up it returns the few that
// arrived since the last look; a chunk is looked at again after a tenth of
// the age of its oldest missing object (at least minPoll, at most
// maxPoll), so that short lags are measured closely and a backlog costs
// few requests. HEAD polling would cost the shared machine one signed TLS
// request per object and per look on both sides; a sweep costs one per
// chunk. An object's arrival is the moment the LIST that showed it
// answered: an upper bound, at most one look's interval plus one round
// trip late.
type listTracker struct {
	client  *s3.Client
	bucket  string
	prefix  string // <step>/
	minPoll time.Duration
	maxPoll time.Duration
	listers int
	onSeen  func(class, seq int) // called (unlocked) for each object seen

	mu          sync.Mutex
	classes     [2]lagClassState
	errs        []string // the destination holds what it should not: the run fails
	listErrs    int      // LISTs that failed (retried at the next look)
	lastListErr string

	lists atomic.Int64 // LIST requests made
}

func newListTracker(client *s3.Client, bucket, step string, minPoll time.Duration, listers int, onSeen func(class, seq int)) *listTracker {
	return &listTracker{client: client, bucket: bucket, prefix: step + "/", minPoll: minPoll, maxPoll: 500 * time.Millisecond,
		listers: listers, onSeen: onSeen}
}

// lagChunkPrefix is the key prefix of a chunk: <step>/<class>/<chunk>/.
func lagChunkPrefix(stepPrefix string, class, chunk int) string {
	return fmt.Sprintf("%s%s/%05d/", stepPrefix, classNames[class][:1], chunk)
}

// lagKey is the key of object seq of a class in a step.
func lagKey(stepPrefix string, class, seq int) string {
	return lagChunkPrefix(stepPrefix, class, seq/lagChunk) + fmt.Sprintf("%09d", seq)
}

// seqOfKey reads the sequence number back from a key lagKey made.
func seqOfKey(key string) (int, bool) {
	i := strings.LastIndexByte(key, '/')
	n, err := strconv.Atoi(key[i+1:])
	return n, err == nil
}

// next gives the next sequence number of a class.
func (t *listTracker) next(class int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &t.classes[class]
	seq := len(c.objs)
	c.objs = append(c.objs, lagObj{state: objQueued})
	if seq/lagChunk >= len(c.chunks) {
		c.chunks = append(c.chunks, chunkState{lo: seq})
	}
	c.pending++
	return seq
}

// sent records that object seq was written at the source and its event,
// with time at, is being sent.
func (t *listTracker) sent(class, seq int, at time.Time, size int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := &t.classes[class].objs[seq]
	o.sent, o.size, o.state = at, size, objPending
}

// accepted records that the gateway took object seq's event at.
func (t *listTracker) accepted(class, seq int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.classes[class].objs[seq].posted = at
}

// rejected records that the gateway refused object seq's event.
func (t *listTracker) rejected(class, seq int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &t.classes[class]
	if c.objs[seq].state != objArrived {
		c.objs[seq].state = objRejected
		c.pending--
	}
}

// pendingCount is how many objects of a class are not at the destination
// yet (queued, or sent and not seen).
func (t *listTracker) pendingCount(class int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.classes[class].pending
}

// snapshot copies a class's objects.
func (t *listTracker) snapshot(class int) []lagObj {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]lagObj(nil), t.classes[class].objs...)
}

func (t *listTracker) errors() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.errs...)
}

// listErrors is how many LISTs failed, and the last one's error.
func (t *listTracker) listErrors() (int, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.listErrs, t.lastListErr
}

// look is one LIST to make.
type look struct {
	class, chunk int
	startAfter   string
}

// run sweeps until ctx ends.
func (t *listTracker) run(ctx context.Context) {
	tick := time.NewTicker(t.minPoll)
	defer tick.Stop()
	for {
		t.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// due lists the chunks to look at now, and schedules their next look.
func (t *listTracker) due(now time.Time) []look {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []look
	for class := range t.classes {
		c := &t.classes[class]
		for ci := c.firstOpen; ci < len(c.chunks); ci++ {
			ch := &c.chunks[ci]
			end := min((ci+1)*lagChunk, len(c.objs))
			for ch.lo < end && (c.objs[ch.lo].state == objArrived || c.objs[ch.lo].state == objRejected) {
				ch.lo++
			}
			if ch.lo == (ci+1)*lagChunk && ci == c.firstOpen {
				c.firstOpen++
				continue
			}
			// The lowest object written and sent: the ones below it
			// that are still queued cannot be at the destination yet.
			low := -1
			for s := ch.lo; s < end; s++ {
				if c.objs[s].state == objPending {
					low = s
					break
				}
			}
			if low < 0 || now.Before(ch.next) {
				continue
			}
			age := now.Sub(c.objs[low].sent)
			ch.next = now.Add(min(max(age/10, t.minPoll), t.maxPoll))
			after := ""
			if low > ci*lagChunk {
				after = lagKey(t.prefix, class, low-1)
			}
			out = append(out, look{class: class, chunk: ci, startAfter: after})
		}
	}
	return out
}

// sweep makes the LISTs that are due, t.listers at a time.
func (t *listTracker) sweep(ctx context.Context) {
	looks := t.due(time.Now())
	if len(looks) == 0 {
		return
	}
	var g errgroup.Group
	g.SetLimit(t.listers)
	for _, l := range looks {
		g.Go(func() error {
			t.list(ctx, l)
			return nil
		})
	}
	_ = g.Wait() // list records its own errors
}

// list makes one LIST of a chunk and marks the objects it shows.
func (t *listTracker) list(ctx context.Context, l look) {
	in := &s3.ListObjectsV2Input{
		Bucket:  aws.String(t.bucket),
		Prefix:  aws.String(lagChunkPrefix(t.prefix, l.class, l.chunk)),
		MaxKeys: aws.Int32(lagChunk),
	}
	if l.startAfter != "" {
		in.StartAfter = aws.String(l.startAfter)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t.lists.Add(1)
	out, err := t.client.ListObjectsV2(lctx, in)
	at := time.Now()
	if err != nil {
		if ctx.Err() == nil {
			t.mu.Lock()
			t.listErrs++
			t.lastListErr = fmt.Sprintf("LIST %s: %v", aws.ToString(in.Prefix), err)
			t.mu.Unlock()
		}
		return
	}
	var seen []int
	t.mu.Lock()
	c := &t.classes[l.class]
	for _, o := range out.Contents {
		key := aws.ToString(o.Key)
		seq, ok := seqOfKey(key)
		if !ok || seq >= len(c.objs) || lagKey(t.prefix, l.class, seq) != key {
			t.errs = append(t.errs, fmt.Sprintf("the destination holds %q, which the harness never wrote", key))
			continue
		}
		obj := &c.objs[seq]
		if obj.state != objPending {
			continue
		}
		if size := aws.ToInt64(o.Size); size != obj.size {
			t.errs = append(t.errs, fmt.Sprintf("%s: %d bytes at the destination, %d written", key, size, obj.size))
			continue
		}
		obj.state, obj.arrived = objArrived, at
		c.pending--
		seen = append(seen, seq)
	}
	t.mu.Unlock()
	if t.onSeen != nil {
		for _, seq := range seen {
			t.onSeen(l.class, seq)
		}
	}
}
