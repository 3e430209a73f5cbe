package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/sqsemu"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// The chaos run's names and the SQS emulator's credentials.
const (
	chaosTask      = "chaos"
	chaosSrcBucket = "chaos-src"
	chaosDstBucket = "chaos-dst"
	chaosQueue     = "chaos-events"
	sqsAccessKey   = "benchsqsaccess"
	sqsSecretKey   = "benchsqssecret"
)

// How an event reaches oss2s3.
const (
	viaWebhook  = "webhook"   // the emulator's signed webhook, through the load balancer
	viaSQSDTH   = "sqs_dth"   // a {"key","size"} message, as Data Transfer Hub's function writes
	viaSQSEvent = "sqs_event" // an OSS trigger document in an SQS message
)

var allVias = []string{viaWebhook, viaSQSDTH, viaSQSEvent}

// Sizes of what the load writes.
const (
	smallMax     = 256 << 10
	multipartMin = 6 << 20
	multipartMax = 16 << 20
	giantMin     = 48 << 20
	giantMax     = 64 << 20
)

// srcVersion is what the source holds under a key.
type srcVersion struct {
	size int64
	etag string
	crc  uint64
}

// source is the harness's side of the source bucket: it changes objects in
// the emulator, sends each change's event one way or another, and keeps
// its own model of what the bucket holds, which the end check compares
// with the emulator's listing before trusting either.
type source struct {
	emu      *ossemu.Server
	sqs      *sqsemu.Server
	queueURL string
	hookURL  string
	lag      *lagTracker

	mu        sync.Mutex
	rng       *rand.Rand
	live      map[string]srcVersion
	keys      []string // live keys, for random picks
	deleted   map[string]bool
	unfixable map[string]bool
	seq       int
	seed      uint64
	vias      map[string]int
	ops       map[string]int
	bytes     int64
}

func newSource(emu *ossemu.Server, sqs *sqsemu.Server, queueURL, hookURL string, lag *lagTracker, seed uint64) *source {
	return &source{
		emu: emu, sqs: sqs, queueURL: queueURL, hookURL: hookURL, lag: lag,
		rng:  rand.New(rand.NewPCG(seed, 0x10ad)),
		live: map[string]srcVersion{}, deleted: map[string]bool{}, unfixable: map[string]bool{},
		seed: seed << 20, vias: map[string]int{}, ops: map[string]int{},
	}
}

// events is how many events were sent, all ways.
func (s *source) events() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.vias {
		n += v
	}
	return n
}

// runLoad changes the bucket at rate changes a second until d has passed:
// new objects (small, multipart, now and then a giant one), overwrites
// and deletes of earlier keys, each change's event sent by webhook or SQS.
func (s *source) runLoad(ctx context.Context, d time.Duration, rate float64, logf func(string, ...any)) error {
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	giantAt, unfixableAt := min(15*time.Second, d/4), min(20*time.Second, d/3)
	unfixableDone := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		since := time.Since(start)
		if since >= d {
			return nil
		}
		var err error
		switch {
		case since >= giantAt:
			giantAt += time.Minute
			err = s.create("giant", viaWebhook)
		case !unfixableDone && since >= unfixableAt:
			unfixableDone = true
			err = s.makeUnfixable(logf)
		default:
			err = s.step()
		}
		if err != nil {
			return err
		}
	}
}

// step makes one random change.
func (s *source) step() error {
	s.mu.Lock()
	r, via := s.rng.Float64(), s.pickVia()
	var victim string
	if len(s.keys) > 20 {
		// The unfixable object stays as it is: its one job is the one
		// expected in the dead-letter queue.
		if k := s.keys[s.rng.IntN(len(s.keys))]; !s.unfixable[k] {
			victim = k
		}
	}
	class := "small"
	if s.rng.Float64() < 0.10 {
		class = "multipart"
	}
	s.mu.Unlock()
	switch {
	case victim != "" && r < 0.10:
		if via == viaSQSDTH {
			via = viaSQSEvent // a {"key","size"} message cannot say "deleted"
		}
		return s.remove(victim, via, "delete")
	case victim != "" && r < 0.25:
		return s.overwrite(victim, via)
	default:
		return s.create(class, via)
	}
}

func (s *source) pickVia() string {
	switch r := s.rng.Float64(); {
	case r < 0.125:
		return viaSQSDTH
	case r < 0.25:
		return viaSQSEvent
	default:
		return viaWebhook
	}
}

// oddKeys are key shapes that need escaping somewhere on the way: spaces,
// unicode, '+', '%'.
var oddKeys = []string{
	"odd/with space %06d.txt",
	"odd/ünïcödé/ключ-%06d.bin",
	"odd/中文 目录/%06d+plus.bin",
	"odd/percent%%25 and %%2F %06d.bin",
}

func (s *source) newKey(class string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	switch {
	case class == "giant":
		return fmt.Sprintf("giant/%05d.bin", s.seq)
	case class == "multipart" || class == "bait":
		return fmt.Sprintf("multipart/%05d.bin", s.seq)
	case s.rng.Float64() < 0.05:
		return fmt.Sprintf(oddKeys[s.rng.IntN(len(oddKeys))], s.seq)
	default:
		return fmt.Sprintf("small/%02d/%06d.bin", s.seq%16, s.seq)
	}
}

// create writes a new key of the class.
func (s *source) create(class, via string) error {
	return s.write(s.newKey(class), class, via, "create_"+class)
}

// overwrite writes a new version of key, of the same kind (a giant key is
// overwritten with a multipart-sized version, to keep the volume modest).
func (s *source) overwrite(key, via string) error {
	class := "small"
	if strings.HasPrefix(key, "multipart/") || strings.HasPrefix(key, "giant/") {
		class = "multipart"
	}
	return s.write(key, class, via, "overwrite")
}

// bait writes a multipart object by webhook: a copy for a replica kill to
// interrupt.
func (s *source) bait() error { return s.write(s.newKey("bait"), "multipart", viaWebhook, "bait") }

func (s *source) size(class string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch class {
	case "giant":
		return giantMin + s.rng.Int64N(giantMax-giantMin)
	case "multipart":
		return multipartMin + s.rng.Int64N(multipartMax-multipartMin)
	}
	if s.rng.IntN(100) == 0 {
		return 0
	}
	// Log-uniform from 1 KiB to smallMax: mostly small, some larger.
	return int64(math.Exp(math.Log(1024) + s.rng.Float64()*(math.Log(smallMax)-math.Log(1024))))
}

// write stores a new version of key and sends its event.
func (s *source) write(key, class, via, op string) error {
	size := s.size(class)
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	var data []byte
	if class == "small" {
		data = make([]byte, size)
		s.mu.Lock()
		seed := s.rng.Uint64()
		s.mu.Unlock()
		fillRandom(data, seed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var info ossemu.ObjectInfo
	var err error
	s.quiet(via, func() {
		if class == "small" {
			info, err = s.emu.PutObject(chaosSrcBucket, key, data, h)
		} else {
			s.seed++
			info, err = s.emu.PutSynthetic(chaosSrcBucket, key, size, s.seed, h)
		}
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	now := time.Now()
	event := "ObjectCreated:PutObject"
	if class != "small" {
		event = "ObjectCreated:CompleteMultipartUpload"
	}
	if err := s.sendSQS(via, key, ossevent.NewRecord(event, ossRegion, chaosSrcBucket, key, info.ETag, info.Size, "application/octet-stream", now)); err != nil {
		return err
	}
	if _, ok := s.live[key]; !ok {
		s.keys = append(s.keys, key)
	}
	s.live[key] = srcVersion{size: info.Size, etag: info.ETag, crc: info.CRC64}
	delete(s.deleted, key)
	s.vias[via]++
	s.ops[op]++
	s.bytes += info.Size
	s.lag.expect(key, &expected{etag: info.ETag, size: info.Size, at: now, via: via})
	return nil
}

// remove deletes key and sends its event.
func (s *source) remove(key, via, op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[key]; !ok {
		return nil
	}
	s.quiet(via, func() { s.emu.DeleteObject(chaosSrcBucket, key) })
	now := time.Now()
	rec := ossevent.NewRecord("ObjectRemoved:DeleteObject", ossRegion, chaosSrcBucket, key, "", 0, "", now)
	rec.OSS.Object.ObjectMeta = nil
	if err := s.sendSQS(via, key, rec); err != nil {
		return err
	}
	delete(s.live, key)
	i := slices.Index(s.keys, key)
	s.keys[i] = s.keys[len(s.keys)-1]
	s.keys = s.keys[:len(s.keys)-1]
	s.deleted[key] = true
	s.vias[via]++
	s.ops[op]++
	s.lag.expect(key, &expected{gone: true, at: now, via: via})
	return nil
}

// quiet runs a change of the bucket with the emulator's webhook off when
// the event goes by SQS instead, so that oss2s3 hears of it one way only.
// Callers hold s.mu: every change of the bucket goes through here, one at a
// time.
func (s *source) quiet(via string, change func()) {
	if via == viaWebhook {
		change()
		return
	}
	s.emu.SetWebhook("", "")
	change()
	s.emu.SetWebhook(s.hookURL, webhookSecret)
}

func (s *source) sendSQS(via, key string, rec ossevent.Record) error {
	var body []byte
	var err error
	switch via {
	case viaWebhook:
		return nil
	case viaSQSDTH:
		body, err = json.Marshal(map[string]any{"key": key, "size": rec.OSS.Object.Size})
	default:
		body, err = json.Marshal(ossevent.Document{Events: []ossevent.Record{rec}})
	}
	if err != nil {
		return err
	}
	if _, err := s.sqs.SendMessage(s.queueURL, string(body)); err != nil {
		return fmt.Errorf("send SQS message for %s: %w", key, err)
	}
	return nil
}

// makeUnfixable writes an object the source will never let oss2s3 read
// (every request for it answers 403 AccessDenied), by webhook: its job must
// end in the dead-letter queue, and nowhere else.
func (s *source) makeUnfixable(logf func(string, ...any)) error {
	key := s.newKey("small")
	key = "unfixable/" + key[strings.LastIndex(key, "/")+1:]
	s.mu.Lock()
	s.unfixable[key] = true
	s.mu.Unlock()
	s.blockUnfixable()
	if err := s.write(key, "small", viaWebhook, "unfixable"); err != nil {
		return err
	}
	s.lag.forget(key)
	logf("load: wrote %s, which the source refuses to serve (403 AccessDenied): its job must be dead-lettered", key)
	return nil
}

// blockUnfixable makes the source refuse the unfixable objects; called
// again after the faults are cleared.
func (s *source) blockUnfixable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.unfixable {
		for _, op := range []string{"HeadObject", "GetObjectMeta", "GetObject"} {
			s.emu.InjectFault(ossemu.Fault{API: "OSS", Op: op, Bucket: chaosSrcBucket, Key: key, Status: http.StatusForbidden, Code: "AccessDenied"})
		}
	}
}

// snapshot returns copies of the model: live objects, deleted keys, the
// unfixable keys.
func (s *source) snapshot() (map[string]srcVersion, map[string]bool, map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.live), maps.Clone(s.deleted), maps.Clone(s.unfixable)
}

// expected is the state a key must reach at the destination after an event.
type expected struct {
	etag string
	size int64
	gone bool
	at   time.Time // when the event was sent
	via  string
	next time.Time // next look
}

// lagTracker measures event-to-destination lag: it looks at the
// destination (directly, not through the faults) for each key changed
// until it holds the latest version (size and the source ETag oss2s3
// records) or, after a delete, nothing. A key changed again before it got
// there counts only its latest change.
type lagTracker struct {
	client *s3.Client
	bucket string

	mu      sync.Mutex
	pending map[string]*expected
	lags    map[string][]time.Duration // by via
}

func newLagTracker(client *s3.Client, bucket string) *lagTracker {
	return &lagTracker{client: client, bucket: bucket, pending: map[string]*expected{}, lags: map[string][]time.Duration{}}
}

func (l *lagTracker) expect(key string, e *expected) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.next = e.at.Add(50 * time.Millisecond)
	l.pending[key] = e
}

func (l *lagTracker) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pending, key)
}

// counts returns how many changes reached the destination and how many
// have not yet.
func (l *lagTracker) counts() (converged, pending int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, xs := range l.lags {
		converged += len(xs)
	}
	return converged, len(l.pending)
}

// samples returns the lags of one way of sending events, or of all with "".
func (l *lagTracker) samples(via string) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if via != "" {
		return slices.Clone(l.lags[via])
	}
	var all []time.Duration
	for _, xs := range l.lags {
		all = append(all, xs...)
	}
	return all
}

// run looks at the pending keys until ctx ends. A key is looked at again
// after a tenth of its age (at least 100 ms, at most 2 s), so that a long
// outage costs few requests while short lags are measured closely.
func (l *lagTracker) run(ctx context.Context) {
	for ctx.Err() == nil {
		now := time.Now()
		l.mu.Lock()
		due := map[string]*expected{}
		for k, e := range l.pending {
			if !e.next.After(now) {
				due[k] = e
			}
		}
		l.mu.Unlock()
		for k, e := range due {
			ok, err := l.reached(ctx, k, e)
			at := time.Now()
			l.mu.Lock()
			if l.pending[k] == e {
				switch {
				case err == nil && ok:
					l.lags[e.via] = append(l.lags[e.via], at.Sub(e.at))
					delete(l.pending, k)
				default:
					e.next = at.Add(min(max(at.Sub(e.at)/10, 100*time.Millisecond), 2*time.Second))
				}
			}
			l.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// reached reports whether the destination holds what e says.
func (l *lagTracker) reached(ctx context.Context, key string, e *expected) (bool, error) {
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := l.client.HeadObject(hctx, &s3.HeadObjectInput{Bucket: aws.String(l.bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			return e.gone, nil
		}
		return false, err
	}
	if e.gone {
		return false, nil
	}
	sizeOK := e.size < 0 || aws.ToInt64(out.ContentLength) == e.size // -1: any size
	return sizeOK && sameETag(out.Metadata[transfer.MetaSourceETag], e.etag), nil
}

func isNotFound(err error) bool {
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

func sameETag(a, b string) bool {
	return a != "" && strings.EqualFold(strings.Trim(a, `"`), strings.Trim(b, `"`))
}
