package transfer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/internal/jstest"
)

// TestParsePubAck: the acknowledgements the server writes by hand (see
// nats-server's stream.go: `{"stream":%q,"seq":` and `,"duplicate": true}`)
// are read without encoding/json; every other answer as jetstream reads
// it, errors included.
func TestParsePubAck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		data string
		want jetstream.PubAck
	}{
		{`{"stream":"OSS2S3_JOBS","seq":1}`, jetstream.PubAck{Stream: "OSS2S3_JOBS", Sequence: 1}},
		{`{"stream":"OSS2S3_JOBS","seq":18446744073709551615}`, jetstream.PubAck{Stream: "OSS2S3_JOBS", Sequence: 18446744073709551615}},
		{`{"stream":"OSS2S3_JOBS","seq":7,"duplicate": true}`, jetstream.PubAck{Stream: "OSS2S3_JOBS", Sequence: 7, Duplicate: true}},
		{`{"stream":"OSS2S3_JOBS","seq":7,"duplicate":true}`, jetstream.PubAck{Stream: "OSS2S3_JOBS", Sequence: 7, Duplicate: true}},
		{`{"stream":"S","domain":"hub","seq":3}`, jetstream.PubAck{Stream: "S", Domain: "hub", Sequence: 3}},
		{`{"stream":"S","seq":3,"batch":"b1","count":2}`, jetstream.PubAck{Stream: "S", Sequence: 3}},
		{`{"stream":"S\u00e9","seq":4}`, jetstream.PubAck{Stream: "Sé", Sequence: 4}},
		{`{"stream": "S", "seq": 5}`, jetstream.PubAck{Stream: "S", Sequence: 5}},
		{`{"stream":"S","seq":6,"duplicate":false}`, jetstream.PubAck{Stream: "S", Sequence: 6}},
	} {
		got, err := parsePubAck([]byte(tc.data))
		if err != nil || *got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.data, got, err, tc.want)
		}
	}

	// The stream name seen before is reused only when it is the one the
	// ack names.
	for _, known := range []string{"", "OSS2S3_JOBS", "OSS2S3_JOB", "OTHER"} {
		var ack jetstream.PubAck
		if !parseUsualPubAck([]byte(`{"stream":"OSS2S3_JOBS","seq":9}`), &ack, known) || ack != (jetstream.PubAck{Stream: "OSS2S3_JOBS", Sequence: 9}) {
			t.Errorf("known stream %q: %+v", known, ack)
		}
	}

	var apiErr *jetstream.APIError
	_, err := parsePubAck([]byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"S","seq":0}`))
	if !errors.As(err, &apiErr) || apiErr.Code != 503 || apiErr.ErrorCode != 10077 {
		t.Errorf("an error answer: %v, want the stream's APIError", err)
	}
	for _, bad := range []string{``, `{`, `{"stream":"S","seq":}`, `{"stream":"","seq":1}`, `{"seq":1}`, `{"stream":"S","seq":-1}`, `null`} {
		if ack, err := parsePubAck([]byte(bad)); !errors.Is(err, jetstream.ErrInvalidJSAck) {
			t.Errorf("%q: %+v, %v; want ErrInvalidJSAck", bad, ack, err)
		}
	}
}

// TestAckPublisherAnswersEachMessageWithItsOwnAck: many publishers at once
// on one connection, and each future receives the acknowledgement of its
// own message (the stream holds that message at that sequence), a repeat
// of a message id is a duplicate, and a subject no stream takes is an
// error, not an ack.
func TestAckPublisherAnswersEachMessageWithItsOwnAck(t *testing.T) {
	t.Parallel()
	ns := jstest.Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	p := newAckPublisher(nc, 10*time.Second)

	const publishers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, publishers*each)
	for g := range publishers {
		wg.Go(func() {
			for i := range each {
				data := fmt.Sprintf("message %d/%d", g, i)
				msg := &nats.Msg{Subject: "s.x", Data: []byte(data), Header: nats.Header{jetstream.MsgIDHeader: {data}}}
				f, err := p.PublishMsgAsync(msg)
				if err != nil {
					errs <- err
					return
				}
				select {
				case ack := <-f.Ok():
					stored, err := stream.GetMsg(ctx, ack.Sequence)
					if err != nil || string(stored.Data) != data || ack.Duplicate || ack.Stream != "S" {
						errs <- fmt.Errorf("%s acknowledged as %+v, the stream holds %q there (%v)", data, ack, stored.Data, err)
					}
				case err := <-f.Err():
					errs <- fmt.Errorf("%s: %w", data, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	again, err := p.PublishMsgAsync(&nats.Msg{Subject: "s.x", Data: []byte("message 0/0"), Header: nats.Header{jetstream.MsgIDHeader: {"message 0/0"}}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ack := <-again.Ok():
		if !ack.Duplicate {
			t.Errorf("a repeated message id: %+v, want a duplicate", ack)
		}
	case err := <-again.Err():
		t.Errorf("a repeated message id: %v", err)
	}

	nowhere, err := p.PublishMsgAsync(&nats.Msg{Subject: "nostream.x", Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ack := <-nowhere.Ok():
		t.Errorf("a subject no stream takes was acknowledged: %+v", ack)
	case err := <-nowhere.Err():
		if !errors.Is(err, jetstream.ErrNoStreamResponse) {
			t.Errorf("a subject no stream takes: %v, want ErrNoStreamResponse", err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) != 0 {
		t.Errorf("%d futures still pending after every answer", len(p.pending))
	}
}

// TestAckPublisherFailsWhatWaitsWhenTheConnectionCloses: a future never
// waits for an acknowledgement that can no longer come.
func TestAckPublisherFailsWhatWaitsWhenTheConnectionCloses(t *testing.T) {
	t.Parallel()
	ns := jstest.Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	// A long timeout, so that only the close can end the wait; a subject
	// that nobody answers (no stream, no responders status either: a
	// plain subscriber that stays silent).
	if _, err := nc.Subscribe("silent.x", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	p := newAckPublisher(nc, time.Hour)
	f, err := p.PublishMsgAsync(&nats.Msg{Subject: "silent.x", Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	select {
	case ack := <-f.Ok():
		t.Fatalf("acknowledged: %+v", ack)
	case err := <-f.Err():
		if !errors.Is(err, nats.ErrDisconnected) && !errors.Is(err, nats.ErrConnectionClosed) {
			t.Errorf("after the close: %v, want a connection error", err)
		}
	}
}
