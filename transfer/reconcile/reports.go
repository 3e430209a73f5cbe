package reconcile

// Reports: a run's report lines, written per shard into the report stream
// and read back as one JSON-lines report.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamReport writes report lines into the report stream, many lines to a
// message, one subject per shard. A shard that starts over purges its
// subject; one that goes on from its checkpoint deletes the messages
// written after it (see resume), so a key's lines are never there twice.
type streamReport struct {
	js      jetstream.JetStream
	subject string
	attempt string // in the message ids: another attempt's messages are not duplicates
	mu      sync.Mutex
	buf     []byte
	seq     int
	lastSeq uint64 // stream sequence of the shard's last message
}

// reportChunk is about how many bytes of lines a report message holds (a
// variable for the tests).
var reportChunk = 64 << 10

func (s *Service) reporter(id string, shard int) *streamReport {
	return &streamReport{js: s.js, subject: fmt.Sprintf("%s%s.%d", ReportSubject, id, shard), attempt: newID()}
}

func (r *streamReport) Report(ctx context.Context, l ReportLine) error {
	line, err := json.Marshal(l)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(append(r.buf, line...), '\n')
	if len(r.buf) >= reportChunk {
		return r.flushLocked(ctx)
	}
	return nil
}

func (r *streamReport) flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushLocked(ctx)
}

func (r *streamReport) flushLocked(ctx context.Context) error {
	if len(r.buf) == 0 {
		return nil
	}
	msg := &nats.Msg{Subject: r.subject, Data: r.buf, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s/%s/%d", r.subject, r.attempt, r.seq))
	ack, err := r.js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	r.seq++
	r.lastSeq = max(r.lastSeq, ack.Sequence)
	r.buf = nil
	return nil
}

// last is the stream sequence of the last message written (or kept by
// resume); 0 if none.
func (r *streamReport) last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastSeq
}

func (r *streamReport) purge(ctx context.Context) error {
	st, err := r.js.Stream(ctx, ReportStream)
	if err != nil {
		return err
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(r.subject)); err != nil {
		return fmt.Errorf("clear the shard's old report: %w", err)
	}
	r.lastSeq = 0
	return nil
}

// resume deletes the shard's messages after stream sequence keep: the
// lines of the keys an interrupted attempt handled after its checkpoint,
// which this attempt handles again. They are the subject's last few
// messages (a checkpoint flushes the report), deleted newest first.
func (r *streamReport) resume(ctx context.Context, keep uint64) error {
	st, err := r.js.Stream(ctx, ReportStream)
	if err != nil {
		return err
	}
	for {
		m, err := st.GetLastMsgForSubject(ctx, r.subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("read the shard's old report: %w", err)
		}
		if m.Sequence <= keep {
			break
		}
		if err := st.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("delete the report lines past the shard's checkpoint: %w", err)
		}
	}
	r.lastSeq = keep
	return nil
}

// WriteReport copies a run's report (JSON lines) to w.
func (s *Service) WriteReport(ctx context.Context, id string, w io.Writer) error {
	if _, err := s.Get(ctx, id); err != nil {
		return err
	}
	c, err := s.js.OrderedConsumer(ctx, ReportStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{ReportSubject + id + ".>"}})
	if err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	pending := info.NumPending
	for pending > 0 {
		batch, err := c.Fetch(int(min(pending, 100)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if _, err := w.Write(m.Data()); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if got == 0 {
			return errors.New("report: the stream stopped answering")
		}
		pending -= uint64(got)
	}
	return nil
}
