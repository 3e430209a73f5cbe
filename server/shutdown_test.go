package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/internal/testkit"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

// jobConsumer is the workers' consumer, as seen by an operator's client.
func jobConsumer(t *testing.T, url string) jetstream.Consumer {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := js.Consumer(context.Background(), transfer.JobStream, transfer.WorkerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stopChild sends SIGTERM and waits for a clean exit.
func stopChild(t *testing.T, c *child) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("oss2s3 did not exit cleanly on SIGTERM: %v\n%s", err, c.logs.String())
	}
}

// TestShutdownHandsBackACopyBeyondTheGrace: on SIGTERM a copy that outlasts
// workers.shutdown_grace is cancelled and its job handed back at once (not
// left to ack_wait, a minute here), and so are jobs already pulled into the
// process but not started; the next process copies them.
func TestShutdownHandsBackACopyBeyondTheGrace(t *testing.T) {
	t.Parallel()
	ns := jstest.Start(t)
	b := newBed(t, s3test.StartVersity(t), 2)
	b.extraConfig = "nats:\n  url: " + ns.ClientURL() + "\n"
	b.queueConfig = "  ack_wait: 1m\n"
	b.workerConfig = "  shutdown_grace: 200ms\n"
	b.writeConfig(t, 2)
	slow := []sample{
		{key: "slow/beyond-grace-1.txt", data: []byte("slow to read"), ctype: "text/plain"},
		{key: "slow/beyond-grace-2.txt", data: []byte("slow to read, too"), ctype: "text/plain"},
	}
	fast := sample{key: "fast/within-grace.txt", data: []byte("quick"), ctype: "text/plain"}
	var queued []sample
	for i := range 4 {
		queued = append(queued, sample{key: fmt.Sprintf("queued/%d.txt", i), data: []byte(fmt.Sprint(i)), ctype: "text/plain"})
	}
	for _, s := range slow {
		b.emu.InjectFault(ossemu.Fault{Op: "GetObject", Key: s.key, Latency: time.Hour, Times: 1})
	}

	first := startChild(t, b)
	bk := b.ossBucket(t)
	upload(t, bk, []sample{fast})
	waitInS3(t, b, []sample{fast})
	upload(t, bk, slow)
	waitMetric(t, b.addr, "oss2s3_jobs_in_flight 2") // the slow copies, stuck in their GETs, on both workers
	upload(t, bk, queued)
	cons := jobConsumer(t, ns.ClientURL())
	var info *jetstream.ConsumerInfo
	if !testkit.Eventually(20*time.Second, 10*time.Millisecond, func() bool {
		var err error
		if info, err = cons.Info(context.Background()); err != nil {
			t.Fatal(err)
		}
		// The slow ones and one taken, waiting for a free worker; and every
		// queued job in the stream (the emulator's webhooks are
		// asynchronous: one still on its way would meet a stopping gateway).
		return info.NumAckPending >= 3 && uint64(info.NumAckPending)+info.NumPending >= uint64(len(slow)+len(queued))
	}) {
		t.Fatalf("the process never took a job ahead: %d held", info.NumAckPending)
	}
	stopChild(t, first)
	if !strings.Contains(first.logs.String(), "copy interrupted by shutdown, handed back to the queue") {
		t.Fatalf("no hand-back logged:\n%s", first.logs.String())
	}

	// Handed back, the jobs are deliverable at once: requests that do not
	// wait get them all within a few seconds (the hand-backs are in flight
	// from the stopped process's connection), where jobs held would stay
	// out of reach for the 1m ack_wait.
	want := len(slow) + len(queued)
	var got []jetstream.Msg
	var batch jetstream.MessageBatch
	if !testkit.Eventually(3*time.Second, 10*time.Millisecond, func() bool {
		var err error
		if batch, err = cons.FetchNoWait(want - len(got)); err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			got = append(got, m)
		}
		return len(got) >= want
	}) {
		var keys []string
		for _, m := range got {
			keys = append(keys, string(m.Data()))
		}
		info, _ := cons.Info(context.Background())
		t.Fatalf("after shutdown %d jobs deliverable (%v), want %d: every job not finished handed back\ngot: %s\nconsumer: %+v",
			len(got), batch.Error(), want, strings.Join(keys, "\n"), info)
	}
	for _, m := range got {
		if err := m.Nak(); err != nil { // for the next process
			t.Fatal(err)
		}
	}

	startChild(t, b)
	waitInS3(t, b, append(slow, queued...))
}

// TestShutdownFinishesAWebhookRequestInFlight: on SIGTERM /readyz answers
// 503 first, then the gateway stops accepting connections, and a webhook
// request already being received completes with 202; its job is stored.
func TestShutdownFinishesAWebhookRequestInFlight(t *testing.T) {
	t.Parallel()
	ns := jstest.Start(t)
	b := newFakeBed(t, 0)
	b.extraConfig = "drain_delay: 2s\nnats:\n  url: " + ns.ClientURL() + "\n"
	b.writeConfig(t, 0)
	gw := startChild(t, b)

	rec := ossevent.NewRecord("ObjectCreated:PutObject", "cn-hangzhou", e2eSrc, "inflight/key.txt",
		"5D41402ABC4B2A76B9719D911017C592", 5, "text/plain", time.Now())
	body, err := json.Marshal(ossevent.Document{Events: []ossevent.Record{rec}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	half := len(body) / 2
	fmt.Fprintf(conn, "POST /v1/events/oss HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s: %s\r\n\r\n",
		b.addr, len(body), signature.Header, signature.Sign(e2eSecret, time.Now(), body))
	if _, err := conn.Write(body[:half]); err != nil {
		t.Fatal(err)
	}

	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	saw503 := false
	if !testkit.Eventually(30*time.Second, 10*time.Millisecond, func() bool {
		resp, err := fresh.Get("http://" + b.addr + "/readyz")
		if err != nil {
			return true // the listener is closed
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusServiceUnavailable:
			saw503 = true
		case http.StatusOK:
			if saw503 {
				t.Fatal("/readyz went back to 200 during shutdown")
			}
		}
		return false
	}) {
		t.Fatal("the gateway kept accepting connections 30s after SIGTERM")
	}
	if !saw503 {
		t.Fatal("/readyz never answered 503 before the gateway stopped accepting connections")
	}

	if _, err := conn.Write(body[half:]); err != nil {
		t.Fatalf("the request in flight was cut: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the request in flight: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("request in flight during shutdown: %s, want 202", resp.Status)
	}
	if err := gw.cmd.Wait(); err != nil {
		t.Fatalf("oss2s3 did not exit cleanly on SIGTERM: %v\n%s", err, gw.logs.String())
	}
	info, err := jobConsumer(t, ns.ClientURL()).Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 1 {
		t.Fatalf("%d jobs queued, want the one the request in flight carried", info.NumPending)
	}
}
