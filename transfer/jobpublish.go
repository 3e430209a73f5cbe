package transfer

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackPublisher publishes the job stream's messages and hands each its
// JetStream acknowledgement, as jetstream.PublishMsgAsync does, for less of
// the gateway's CPU: a PubAck in the usual form is read without
// encoding/json (json.Unmarshal of every ack was 4.5% of the gateway at
// full rate), and the acks that do not come in time are failed by one
// sweep instead of a timer per message. An ack still means what it
// means: the job is stored (and replicated) as the stream says.
type ackPublisher struct {
	nc      *nats.Conn
	prefix  string // of the reply subjects: "_INBOX.<unique>."
	timeout time.Duration

	mu      sync.Mutex
	sub     *nats.Subscription // on prefix + "*"; nil until the first publish
	next    uint64
	pending map[uint64]*pubAckFuture

	// stream is the stream name of the last ack read by hand: every ack
	// of the job stream names the same one, which is then not copied
	// again. Only reply (the subscription's one goroutine) uses it.
	stream string
}

// Retries of a publish that found no stream to answer (a stream leader
// being elected), as jetstream's defaults.
const (
	noResponderRetries = jetstream.DefaultPubRetryAttempts
	noResponderWait    = jetstream.DefaultPubRetryWait
)

func newAckPublisher(nc *nats.Conn, timeout time.Duration) *ackPublisher {
	return &ackPublisher{nc: nc, prefix: nats.NewInbox() + ".", timeout: timeout, pending: map[uint64]*pubAckFuture{}}
}

// pubAckFuture is one message waiting for its acknowledgement: exactly one
// of its channels receives, once. ack is where an ack in the usual form is
// read, so that it is not an allocation of its own: ok then receives &ack.
type pubAckFuture struct {
	msg     *nats.Msg
	id      uint64
	sent    time.Time
	retries int
	ok      chan *jetstream.PubAck
	err     chan error
	ack     jetstream.PubAck
}

var _ jetstream.PubAckFuture = (*pubAckFuture)(nil)

func (f *pubAckFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *pubAckFuture) Err() <-chan error            { return f.err }
func (f *pubAckFuture) Msg() *nats.Msg               { return f.msg }

// PublishMsgAsync sends msg (which must have no reply subject: it gets
// one) and returns at once; the future receives the acknowledgement, or an
// error: the stream's, jetstream.ErrNoStreamResponse, jetstream.ErrAsyncPublishTimeout
// after the publisher's timeout, nats.ErrDisconnected when the connection
// is lost meanwhile (an ack may have been lost with it).
func (p *ackPublisher) PublishMsgAsync(msg *nats.Msg) (jetstream.PubAckFuture, error) {
	if msg.Reply != "" {
		return nil, jetstream.ErrAsyncPublishReplySubjectSet
	}
	f := &pubAckFuture{msg: msg, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	p.mu.Lock()
	if p.sub == nil {
		if err := p.start(); err != nil {
			p.mu.Unlock()
			return nil, err
		}
	}
	p.next++
	f.id, f.sent = p.next, time.Now()
	p.pending[f.id] = f
	p.mu.Unlock()
	// The reply subject is set on the message itself (the caller's, one
	// per publish), not on a copy: one allocation less per job.
	var buf [64]byte
	msg.Reply = string(strconv.AppendUint(append(buf[:0], p.prefix...), f.id, 10))
	if err := p.send(f); err != nil {
		p.mu.Lock()
		delete(p.pending, f.id)
		p.mu.Unlock()
		return nil, err
	}
	return f, nil
}

// send publishes f's message, which carries f's reply subject.
func (p *ackPublisher) send(f *pubAckFuture) error { return p.nc.PublishMsg(f.msg) }

// start subscribes to the replies and starts the sweep. p.mu is held.
func (p *ackPublisher) start() error {
	sub, err := p.nc.Subscribe(p.prefix+"*", p.reply)
	if err != nil {
		return err
	}
	p.sub = sub
	status := p.nc.StatusChanged(nats.RECONNECTING, nats.CLOSED)
	go p.watch(status)
	return nil
}

// watch fails what waits too long, and everything that waits when the
// connection is lost (its acks may be lost with it: jetstream does the
// same) or closed, which ends it.
func (p *ackPublisher) watch(status chan nats.Status) {
	tick := time.NewTicker(min(max(p.timeout/8, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case s := <-status:
			p.failAll(nats.ErrDisconnected)
			if s == nats.CLOSED {
				p.nc.RemoveStatusListener(status)
				return
			}
		case now := <-tick.C:
			if p.nc.IsClosed() {
				p.failAll(nats.ErrConnectionClosed)
				return
			}
			p.expire(now.Add(-p.timeout))
		}
	}
}

func (p *ackPublisher) failAll(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, f := range p.pending {
		delete(p.pending, id)
		f.err <- err
	}
}

// expire fails what was sent before cutoff.
func (p *ackPublisher) expire(cutoff time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, f := range p.pending {
		if f.sent.Before(cutoff) {
			delete(p.pending, id)
			f.err <- jetstream.ErrAsyncPublishTimeout
		}
	}
}

// reply takes one acknowledgement (or error) from the stream.
func (p *ackPublisher) reply(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[min(len(p.prefix), len(m.Subject)):], 10, 64)
	if err != nil {
		return
	}
	p.mu.Lock()
	f := p.pending[id]
	if f == nil { // expired, failed or answered already
		p.mu.Unlock()
		return
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" { // no responders
		if f.retries < noResponderRetries {
			f.retries++
			f.sent = time.Now().Add(noResponderWait)
			p.mu.Unlock()
			time.AfterFunc(noResponderWait, func() { p.resend(f) })
			return
		}
		delete(p.pending, id)
		p.mu.Unlock()
		f.err <- jetstream.ErrNoStreamResponse
		return
	}
	delete(p.pending, id)
	p.mu.Unlock()
	// f is no one else's now: pending no longer holds it.
	if parseUsualPubAck(m.Data, &f.ack, p.stream) {
		p.stream = f.ack.Stream
		f.ok <- &f.ack
		return
	}
	ack, err := parsePubAck(m.Data)
	if err != nil {
		f.err <- err
		return
	}
	f.ok <- ack
}

// resend publishes f again after no stream answered it, if it still waits.
func (p *ackPublisher) resend(f *pubAckFuture) {
	p.mu.Lock()
	waiting := p.pending[f.id] == f
	p.mu.Unlock()
	if !waiting {
		return
	}
	if err := p.send(f); err != nil {
		p.mu.Lock()
		if p.pending[f.id] == f {
			delete(p.pending, f.id)
			f.err <- err
		}
		p.mu.Unlock()
	}
}

// parsePubAck reads a JetStream publish acknowledgement. The form the
// server sends for a stored message, {"stream":"S","seq":N} with
// ,"duplicate": true for one it held already, is read by hand; anything
// else (an error, a domain, a batch, a counter's value) as jetstream
// reads it.
func parsePubAck(data []byte) (*jetstream.PubAck, error) {
	if ack := new(jetstream.PubAck); parseUsualPubAck(data, ack, "") {
		return ack, nil
	}
	var resp struct {
		Error *jetstream.APIError `json:"error,omitempty"`
		*jetstream.PubAck
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	if resp.PubAck == nil || resp.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return resp.PubAck, nil
}

// parseUsualPubAck reads an ack in the usual form into ack, and reports
// whether it was one (else ack is untouched). known is a stream name seen
// before: an ack naming the same stream gets that string, not a copy.
func parseUsualPubAck(data []byte, ack *jetstream.PubAck, known string) bool {
	rest, ok := bytes.CutPrefix(data, []byte(`{"stream":"`))
	if !ok {
		return false
	}
	i := bytes.IndexByte(rest, '"')
	if i <= 0 || bytes.IndexByte(rest[:i], '\\') >= 0 {
		return false
	}
	stream := rest[:i]
	rest, ok = bytes.CutPrefix(rest[i:], []byte(`","seq":`))
	if !ok {
		return false
	}
	n := 0
	for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
		n++
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return false
	}
	var duplicate bool
	switch string(rest[n:]) {
	case `}`:
	case `,"duplicate":true}`, `,"duplicate": true}`: // the server writes the second
		duplicate = true
	default:
		return false
	}
	name := known
	if string(stream) != known {
		name = string(stream)
	}
	*ack = jetstream.PubAck{Stream: name, Sequence: seq, Duplicate: duplicate}
	return true
}
