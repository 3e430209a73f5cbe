package sqsemu

import (
	"container/heap"
	"container/list"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// A message is in exactly one of three states: visible (in the queue's
// visible list, receivable now), in flight (received, invisible until its
// visibility timeout ends) or delayed (sent with a delay). In-flight and
// delayed messages wait in a heap ordered by the time they become visible.
type msgState int

const (
	stateVisible msgState = iota
	stateInFlight
	stateDelayed
)

type message struct {
	id        string
	body      string
	md5Body   string
	attrs     map[string]msgAttr // message attributes
	sysAttrs  map[string]msgAttr // message system attributes (AWSTraceHeader)
	senderID  string
	sentAt    time.Time
	firstRecv time.Time
	// dlqSource is the ARN of the queue a dead-lettered message came from.
	dlqSource string

	receiveCount int
	// receipt is the token of the latest receive: only the latest receipt
	// handle deletes the message or changes its visibility.
	receipt string

	state     msgState
	visibleAt time.Time     // in flight or delayed: when it becomes visible
	heapIndex int           // in the hidden heap, or -1
	elem      *list.Element // in the visible list, or nil
}

// hiddenHeap orders in-flight and delayed messages by visibleAt.
type hiddenHeap []*message

func (h hiddenHeap) Len() int           { return len(h) }
func (h hiddenHeap) Less(i, j int) bool { return h[i].visibleAt.Before(h[j].visibleAt) }
func (h hiddenHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = i
	h[j].heapIndex = j
}
func (h *hiddenHeap) Push(x any) {
	m := x.(*message)
	m.heapIndex = len(*h)
	*h = append(*h, m)
}
func (h *hiddenHeap) Pop() any {
	old := *h
	n := len(old)
	m := old[n-1]
	old[n-1] = nil
	m.heapIndex = -1
	*h = old[:n-1]
	return m
}

type queue struct {
	name     string
	arn      string
	attrs    queueAttrs
	created  time.Time
	modified time.Time

	visible  *list.List // of *message, oldest first
	hidden   hiddenHeap
	byID     map[string]*message
	inFlight int
	delayed  int

	// sweepAt is when the retention period of the oldest message ends (zero
	// when no message can expire); forceSweep asks for a sweep at the next
	// refresh (the retention period changed).
	sweepAt    time.Time
	forceSweep bool

	// changed is closed (and replaced) whenever receivers waiting on the
	// queue should look again.
	changed chan struct{}

	stats QueueStats
}

func newQueue(name, arn string, attrs queueAttrs, now time.Time) *queue {
	return &queue{
		name:    name,
		arn:     arn,
		attrs:   attrs,
		created: now, modified: now,
		visible: list.New(),
		byID:    make(map[string]*message),
		changed: make(chan struct{}),
	}
}

// notify wakes every receiver waiting on the queue.
func (q *queue) notify() {
	close(q.changed)
	q.changed = make(chan struct{})
}

func (q *queue) add(m *message, delay time.Duration, now time.Time) {
	q.byID[m.id] = m
	m.heapIndex = -1
	if delay > 0 {
		m.state = stateDelayed
		m.visibleAt = now.Add(delay)
		heap.Push(&q.hidden, m)
		q.delayed++
	} else {
		m.state = stateVisible
		m.elem = q.visible.PushBack(m)
	}
	if exp := m.sentAt.Add(q.attrs.retention); q.sweepAt.IsZero() || exp.Before(q.sweepAt) {
		q.sweepAt = exp
	}
	q.notify()
}

// remove takes m out of the queue whatever its state.
func (q *queue) remove(m *message) {
	switch m.state {
	case stateVisible:
		q.visible.Remove(m.elem)
		m.elem = nil
	case stateInFlight:
		heap.Remove(&q.hidden, m.heapIndex)
		q.inFlight--
	case stateDelayed:
		heap.Remove(&q.hidden, m.heapIndex)
		q.delayed--
	}
	delete(q.byID, m.id)
}

// refresh brings the queue to time now: messages whose visibility timeout
// or delay ended become visible (or move to the dead-letter queue), and
// messages older than the retention period are dropped.
func (s *Server) refresh(q *queue, now time.Time) {
	for len(q.hidden) > 0 && !q.hidden[0].visibleAt.After(now) {
		m := heap.Pop(&q.hidden).(*message)
		if m.state == stateInFlight {
			q.inFlight--
		} else {
			q.delayed--
		}
		m.state = stateVisible
		m.elem = q.visible.PushBack(m)
		if m.receiveCount > 0 && s.exhausted(q, m) {
			s.deadLetter(q, m, now)
		}
	}
	if !q.forceSweep && (q.sweepAt.IsZero() || now.Before(q.sweepAt)) {
		return
	}
	q.forceSweep = false
	var next time.Time
	for _, m := range q.byID {
		exp := m.sentAt.Add(q.attrs.retention)
		if !exp.After(now) {
			q.remove(m)
			q.stats.Expired++
			continue
		}
		if next.IsZero() || exp.Before(next) {
			next = exp
		}
	}
	q.sweepAt = next
}

// exhausted reports whether m has been received as many times as the
// queue's redrive policy allows and must go to the dead-letter queue.
func (s *Server) exhausted(q *queue, m *message) bool {
	rp := q.attrs.redrive
	return rp != nil && m.receiveCount >= rp.maxReceiveCount && s.deadLetterQueue(q) != nil
}

func (s *Server) deadLetterQueue(q *queue) *queue {
	if q.attrs.redrive == nil {
		return nil
	}
	dlq := s.queues[arnQueueName(q.attrs.redrive.targetARN)]
	if dlq == q {
		return nil
	}
	return dlq
}

// deadLetter moves the visible message m from q to q's dead-letter queue.
// It keeps its ID, body, attributes and sent time (so retention still
// counts from the original send, as in SQS); its receive count starts
// again from zero.
func (s *Server) deadLetter(q *queue, m *message, now time.Time) {
	dlq := s.deadLetterQueue(q)
	q.remove(m)
	q.stats.DeadLettered++
	moved := &message{
		id: m.id, body: m.body, md5Body: m.md5Body, attrs: m.attrs, sysAttrs: m.sysAttrs,
		senderID: m.senderID, sentAt: m.sentAt, dlqSource: q.arn,
	}
	dlq.add(moved, 0, now)
	s.log.Debug("sqs message moved to dead-letter queue", "queue", q.name, "dlq", dlq.name, "message_id", m.id, "receive_count", m.receiveCount)
}

// receive takes up to max visible messages and puts them in flight for
// visibility.
func (s *Server) receive(q *queue, max int, visibility time.Duration, now time.Time) []*message {
	var out []*message
	for len(out) < max && q.visible.Len() > 0 {
		m := q.visible.Front().Value.(*message)
		if s.exhausted(q, m) {
			// Only when a redrive policy was set after the last receive.
			s.deadLetter(q, m, now)
			continue
		}
		q.visible.Remove(m.elem)
		m.elem = nil
		m.receiveCount++
		if m.receiveCount == 1 {
			m.firstRecv = now
		}
		m.receipt = randomToken()
		m.state = stateInFlight
		m.visibleAt = now.Add(visibility)
		heap.Push(&q.hidden, m)
		q.inFlight++
		q.stats.Received++
		out = append(out, m)
	}
	if len(out) > 0 {
		// Waiting receivers time their wake-ups by the earliest hidden
		// message, which may just have changed.
		q.notify()
	}
	return out
}

// setVisibility restarts the visibility timeout of the in-flight message m.
func (s *Server) setVisibility(q *queue, m *message, d time.Duration, now time.Time) {
	m.visibleAt = now.Add(d)
	heap.Fix(&q.hidden, m.heapIndex)
	s.refresh(q, now)
	q.notify()
}

// nextVisible is when the earliest hidden message becomes visible (zero if
// none).
func (q *queue) nextVisible() time.Time {
	if len(q.hidden) == 0 {
		return time.Time{}
	}
	return q.hidden[0].visibleAt
}

func (q *queue) purge() {
	n := len(q.byID)
	q.visible.Init()
	for _, m := range q.hidden {
		m.heapIndex = -1
	}
	q.hidden = nil
	clear(q.byID)
	q.inFlight, q.delayed = 0, 0
	q.stats.Purged += n
	q.notify()
}

// Receipt handles are opaque to clients: base64url of
// "v1\n<queue>\n<message id>\n<receive token>". A new token is drawn at each
// receive.

func receiptHandle(q *queue, m *message) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1\n" + q.name + "\n" + m.id + "\n" + m.receipt))
}

// parseReceipt decodes a receipt handle; ok is false when it is not one the
// emulator could have issued.
func parseReceipt(handle string) (queueName, msgID, token string, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(handle)
	if err != nil {
		return "", "", "", false
	}
	parts := strings.Split(string(raw), "\n")
	if len(parts) != 4 || parts[0] != "v1" || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return "", "", "", false
	}
	return parts[1], parts[2], parts[3], true
}

// handleState is what a receipt handle refers to.
type handleState int

const (
	handleLatest handleState = iota // the latest receive of a live message
	handleStale                     // the message was received again since
	handleGone                      // the message was deleted, expired, purged or moved
)

// lookupHandle resolves a receipt handle of queue q.
func lookupHandle(q *queue, handle string) (*message, handleState, *apiError) {
	qname, id, token, ok := parseReceipt(handle)
	if !ok || qname != q.name {
		return nil, 0, errReceiptHandleIsInvalid(handle)
	}
	m := q.byID[id]
	switch {
	case m == nil:
		return nil, handleGone, nil
	case m.receipt != token:
		return m, handleStale, nil
	}
	return m, handleLatest, nil
}

func randomToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newMessageID returns a random UUID, the form of SQS message IDs.
func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
