package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the JetStream objects oss2s3 creates. Every replica uses the same
// ones, which is how they share the work.
//
// The job stream has two lanes, each a subject space with a durable
// consumer of its own, worked by a pool of its own in every replica: small
// objects (and deletes, and reconcile shards) on oss2s3.jobs.<task>, large
// objects and the parts of giant ones on oss2s3.large.<task>. A burst of
// multipart copies then occupies the large pool only, and a small object
// never waits behind one (see Lane).
const (
	JobStream          = "OSS2S3_JOBS"
	JobSubjectPrefix   = "oss2s3.jobs."
	LargeSubjectPrefix = "oss2s3.large."
	DeadStream         = "OSS2S3_DLQ"
	DeadSubjectPref    = "oss2s3.dlq."
	WorkerConsumer     = "oss2s3-copy"
	LargeConsumer      = "oss2s3-copy-large"
)

// A Lane is one of the job stream's two lanes.
type Lane struct {
	Name     string // "small" or "large", for logs and metrics
	Subject  string // the subject prefix of its jobs (prefix + task)
	Consumer string // its durable consumer
}

// The two lanes. Every job is in exactly one (Queue.LaneOf).
var (
	SmallLane = Lane{Name: "small", Subject: JobSubjectPrefix, Consumer: WorkerConsumer}
	LargeLane = Lane{Name: "large", Subject: LargeSubjectPrefix, Consumer: LargeConsumer}
	Lanes     = [...]Lane{SmallLane, LargeLane}
)

// Headers on dead letters.
const (
	HeaderError    = "Oss2s3-Error"
	HeaderAttempts = "Oss2s3-Attempts"
	HeaderTask     = "Oss2s3-Task"
)

// ErrQueueUnavailable wraps every failure to get a job durably into the
// stream: the caller should answer "try again later", never drop the event.
var ErrQueueUnavailable = errors.New("work queue unavailable")

// The defaults of QueueConfig. MaxMsgs and MaxBytes have none: zero is no
// limit.
const (
	DefaultReplicas        = 1
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultAckWait         = 20 * time.Second
	DefaultMaxAttempts     = 5
	DefaultMaxAckPending   = 10_000
	DefaultDeadLetterAge   = 14 * 24 * time.Hour
	DefaultStuckSweep      = time.Minute
)

// QueueConfig says where JetStream is and how the streams are shaped.
type QueueConfig struct {
	URL             string        // external NATS server or cluster; empty starts an embedded server
	CredsFile       string        // NATS credentials file for URL
	DataDir         string        // embedded server's file store lives in DataDir/jetstream
	EmbeddedListen  string        // optional host:port for the embedded server's client port (for the nats CLI)
	Replicas        int           // stream replicas (1 for embedded, 3 for a cluster)
	DuplicateWindow time.Duration // how long a re-sent event is recognised
	MaxMsgs         int64         // stream limit; a full stream refuses new jobs (back-pressure)
	MaxBytes        int64
	AckWait         time.Duration // a worker that goes silent this long loses its job to another
	// MaxAttempts is how many attempts a job gets before it is
	// dead-lettered. Only real failures count: waiting (for a busy
	// object, an archive restore, a later start), hand-backs at shutdown
	// and deliveries cut short by a crash do not. JetStream itself
	// redelivers without limit (MaxDeliver -1): a limit there ends a job
	// silently, leaving it in the stream and in no dead-letter queue.
	MaxAttempts   int
	MaxAckPending int
	DeadLetterAge time.Duration // how long dead letters are kept
	// StuckSweep is how often the job stream is searched for jobs the
	// consumer will never deliver again (left by a consumer that had a
	// MaxDeliver limit); they are queued afresh.
	StuckSweep time.Duration
	// ReplyTimeout bounds the wait for one JetStream answer (a publish
	// acknowledgement, a checkpoint read or write); NATSReplyTimeout by
	// default. Tests shorten it.
	ReplyTimeout time.Duration
	// LargeObject is the size from which an object's job goes to the
	// large lane (DefaultMultipartThreshold by default: the objects that
	// are copied in parts). A job that does not know its object's size
	// (a delete, a key list) goes to the small lane.
	LargeObject ByteSize
}

func (c *QueueConfig) defaults() {
	if c.Replicas <= 0 {
		c.Replicas = DefaultReplicas
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.MaxMsgs == 0 {
		c.MaxMsgs = -1
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = -1
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.StuckSweep <= 0 {
		c.StuckSweep = DefaultStuckSweep
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.DeadLetterAge <= 0 {
		c.DeadLetterAge = DefaultDeadLetterAge
	}
	if c.ReplyTimeout <= 0 {
		c.ReplyTimeout = NATSReplyTimeout
	}
	if c.LargeObject <= 0 {
		c.LargeObject = DefaultMultipartThreshold
	}
}

// Queue is the JetStream work queue: the job stream, the shared durable
// consumer the workers read, and the dead-letter stream.
type Queue struct {
	cfg      QueueConfig
	ns       *server.Server // nil with an external server
	nc       *nats.Conn
	js       jetstream.JetStream
	acks     *ackPublisher      // Publish's: see jobpublish.go
	consumer jetstream.Consumer // the small lane's
	large    jetstream.Consumer // the large lane's
	ckpt     *Checkpoints
	log      *slog.Logger
}

// Conn is the queue's connection to NATS: whether it is up, and for the
// other parts of the process that keep state in JetStream, each through a
// JetStream handle of its own (jetstream.New) on it.
func (q *Queue) Conn() *nats.Conn { return q.nc }

// Replicas is how many replicas the queue's streams have.
func (q *Queue) Replicas() int { return q.cfg.Replicas }

// AckWait is how long a silent worker keeps a job.
func (q *Queue) AckWait() time.Duration { return q.cfg.AckWait }

// Checkpoints is the multipart checkpoint store, shared by every replica.
func (q *Queue) Checkpoints() *Checkpoints { return q.ckpt }

// OpenQueue connects to JetStream (starting the embedded server when no URL
// is configured) and creates the streams and the consumer if they do not
// exist, or updates them to cfg if they do. It is safe to call from every
// replica at once.
func OpenQueue(ctx context.Context, cfg QueueConfig, log *slog.Logger) (*Queue, error) {
	cfg.defaults()
	q := &Queue{cfg: cfg, log: log}
	opts := []nats.Option{
		nats.Name("oss2s3"),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrl()) }),
		// nats.go's default prints these on stderr, outside the JSON log
		// (consumers that vanish during an outage, slow consumers).
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("nats asynchronous error", "subject", sub.Subject, "err", err)
				return
			}
			log.Warn("nats asynchronous error", "err", err)
		}),
	}
	url := cfg.URL
	if url == "" {
		ns, err := startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		q.ns = ns
		url = ns.ClientURL()
		opts = append(opts, nats.InProcessServer(ns))
		log.Info("embedded JetStream started", "store", filepath.Join(cfg.DataDir, "jetstream"), "listen", cfg.EmbeddedListen)
	} else {
		// NATS may come up after us (a cluster deployed together with
		// the replicas): keep connecting in the background; ensure below
		// retries until the streams can be created.
		opts = append(opts, nats.RetryOnFailedConnect(true), nats.ReconnectWait(time.Second),
			nats.ConnectHandler(func(nc *nats.Conn) { log.Info("nats connected", "url", nc.ConnectedUrl()) }))
		if cfg.CredsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.CredsFile))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	q.nc = nc
	// A publish acknowledgement lost with a connection or a stream
	// leader never comes: without a timeout Publish would wait as long
	// as its caller's context (a job's: hours).
	if q.js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(q.cfg.ReplyTimeout)); err != nil {
		q.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	q.acks = newAckPublisher(nc, q.cfg.ReplyTimeout)
	if err := q.ensureWithRetry(ctx); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

// ensureSetupTime bounds how long OpenQueue keeps trying to create the
// streams: on a cluster that is still electing leaders, or while several
// replicas start at once and create the same streams, an attempt can time
// out or fail and the next one succeed.
const ensureSetupTime = 2 * time.Minute

func (q *Queue) ensureWithRetry(ctx context.Context) error { return q.Setup(ctx, q.ensure) }

// Setup runs fn, which creates JetStream assets (streams, key-value
// buckets) idempotently, until it succeeds or ensureSetupTime has passed,
// as OpenQueue does for the queue's own: for the other parts of the
// process that keep state in JetStream.
func (q *Queue) Setup(ctx context.Context, fn func(context.Context) error) error {
	deadline := time.Now().Add(ensureSetupTime)
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		q.log.Warn("jetstream not ready for the streams yet, trying again", "err", err, "attempt", attempt, "retry_in", wait)
		sleepCtx(ctx, wait)
		wait = min(2*wait, 5*time.Second)
	}
}

func startEmbedded(cfg QueueConfig) (*server.Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embedded JetStream needs a data directory")
	}
	store := filepath.Join(cfg.DataDir, "jetstream")
	if err := os.MkdirAll(store, 0o750); err != nil {
		return nil, fmt.Errorf("create JetStream store: %w", err)
	}
	opts := &server.Options{
		ServerName: "oss2s3-embedded",
		JetStream:  true,
		StoreDir:   store,
		DontListen: cfg.EmbeddedListen == "",
		NoSigs:     true,
		NoLog:      true,
	}
	if cfg.EmbeddedListen != "" {
		host, port, err := splitHostPort(cfg.EmbeddedListen)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats-server did not become ready in 30s")
	}
	return ns, nil
}

func (q *Queue) ensure(ctx context.Context) error {
	c := q.cfg
	_, err := q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        JobStream,
		Description: "oss2s3 copy jobs: one message per key to converge",
		Subjects:    []string{JobSubjectPrefix + ">", LargeSubjectPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  c.DuplicateWindow,
		MaxMsgs:     c.MaxMsgs,
		MaxBytes:    c.MaxBytes,
		Discard:     jetstream.DiscardNew,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", JobStream, err)
	}
	_, err = q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        DeadStream,
		Description: "oss2s3 dead letters: jobs that failed for good, with their last error",
		Subjects:    []string{DeadSubjectPref + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxAge:      c.DeadLetterAge,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", DeadStream, err)
	}
	// The small lane's consumer is the one every release before lanes
	// had, unchanged: the jobs a running deployment holds stay its.
	if q.consumer, err = q.ensureConsumer(ctx, SmallLane, "oss2s3 copy workers of small objects, deletes and reconcile shards, shared by every replica"); err != nil {
		return err
	}
	if q.large, err = q.ensureConsumer(ctx, LargeLane, "oss2s3 copy workers of large objects and the parts of giant ones, shared by every replica"); err != nil {
		return err
	}
	// Checkpoints outlive a crash by days, not forever: S3 uploads left
	// behind longer than that are for a lifecycle rule to abort.
	q.ckpt, err = openCheckpoints(ctx, q.js, c.Replicas, 7*24*time.Hour, c.ReplyTimeout)
	return err
}

// ensureConsumer creates or updates the durable consumer of one lane.
func (q *Queue) ensureConsumer(ctx context.Context, l Lane, description string) (jetstream.Consumer, error) {
	c, err := q.js.CreateOrUpdateConsumer(ctx, JobStream, jetstream.ConsumerConfig{
		Durable:       l.Consumer,
		Description:   description,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.AckWait,
		MaxDeliver:    -1, // attempts are counted by the workers: see MaxAttempts
		MaxAckPending: q.cfg.MaxAckPending,
		FilterSubject: l.Subject + ">",
		Replicas:      q.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", l.Consumer, err)
	}
	return c, nil
}

// consumerOf returns the durable consumer of lane l.
func (q *Queue) consumerOf(l Lane) jetstream.Consumer {
	if l == LargeLane {
		return q.large
	}
	return q.consumer
}

// LaneOf returns the lane of job j: the large lane for the parts of giant
// objects and for copies of objects of LargeObject bytes or more (the
// size the event or the listing gave), the small lane for the rest.
func (q *Queue) LaneOf(j Job) Lane {
	if j.Kind == KindPart || (j.Kind == KindConverge && j.Size >= int64(q.cfg.LargeObject)) {
		return LargeLane
	}
	return SmallLane
}

// PublishResult counts what happened to a batch of jobs.
type PublishResult struct {
	Queued    int
	Duplicate int
	// NotQueued lists, in ascending order, the indexes of the jobs that
	// are not new in the stream: duplicates and, after an error, the jobs
	// not acknowledged. It is nil when every job was stored new, the
	// common case, which then costs no allocation.
	NotQueued []int
}

// IsQueued reports whether job i of the batch was stored new.
func (r PublishResult) IsQueued(i int) bool {
	_, found := slices.BinarySearch(r.NotQueued, i)
	return !found
}

// Publish puts jobs into the stream and returns only when JetStream has
// acknowledged every one of them (so they are on disk, replicated as the
// stream says). A job the stream already holds within its duplicate window
// counts as Duplicate. On error some jobs may be in; publishing the same
// jobs again is safe, because their message ids make the repeats no-ops.
func (q *Queue) Publish(ctx context.Context, jobs []Job) (PublishResult, error) {
	var res PublishResult
	// A webhook document holds one record most often: up to four
	// futures stay on the stack.
	var few [4]jetstream.PubAckFuture
	futures := few[:0]
	now := time.Now().UTC()
	for i := range jobs {
		if jobs[i].QueuedAt.IsZero() {
			jobs[i].QueuedAt = now
		}
		data, err := encodeJob(&jobs[i])
		if err != nil {
			return res, fmt.Errorf("encode job: %w", err)
		}
		msg := &nats.Msg{Subject: q.LaneOf(jobs[i]).Subject + safeSubjectToken(jobs[i].Task), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, jobs[i].MsgID())
		f, err := q.acks.PublishMsgAsync(msg)
		if err != nil {
			// Jobs before this one may be stored; their acks are not
			// awaited, so none counts as queued.
			res.NotQueued = upTo(len(jobs))
			return res, fmt.Errorf("%w: %w", ErrQueueUnavailable, err)
		}
		futures = append(futures, f)
	}
	var firstErr error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if !ack.Duplicate {
				res.Queued++
				continue
			}
			res.Duplicate++
		case err := <-f.Err():
			if firstErr == nil {
				firstErr = err
			}
		case <-ctx.Done():
			if firstErr == nil {
				firstErr = ctx.Err()
			}
		}
		res.NotQueued = append(res.NotQueued, i)
	}
	if firstErr != nil {
		return res, fmt.Errorf("%w: %w", ErrQueueUnavailable, firstErr)
	}
	return res, nil
}

// upTo returns 0, 1, ..., n-1.
func upTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// Ready reports whether JetStream answers and both streams exist.
func (q *Queue) Ready(ctx context.Context) error {
	if q.nc == nil || !q.nc.IsConnected() {
		return errors.New("not connected to nats")
	}
	for _, name := range []string{JobStream, DeadStream} {
		if _, err := q.js.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return nil
}

// deadLetter records job with its final error in the dead-letter stream.
func (q *Queue) deadLetter(ctx context.Context, raw []byte, task string, attempts int, cause error) error {
	msg := &nats.Msg{Subject: DeadSubjectPref + safeSubjectToken(task), Data: raw, Header: nats.Header{}}
	msg.Header.Set(HeaderError, oneLine(cause.Error()))
	msg.Header.Set(HeaderAttempts, strconv.Itoa(attempts))
	msg.Header.Set(HeaderTask, task)
	if _, err := q.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	return nil
}

// DeadLetter is one job parked in the dead-letter stream.
type DeadLetter struct {
	Seq      uint64    `json:"seq"`
	Job      Job       `json:"job"`
	Error    string    `json:"error"`
	Attempts string    `json:"attempts"`
	Time     time.Time `json:"time"`
}

// DeadLetterFilter selects dead letters; empty fields match everything.
type DeadLetterFilter struct {
	Task string `json:"task,omitempty"`
	Key  string `json:"key,omitempty"`
}

func (f DeadLetterFilter) match(j Job) bool {
	return (f.Task == "" || f.Task == j.Task) && (f.Key == "" || f.Key == j.Key)
}

// DeadLetters reads up to limit dead letters that match f, oldest first.
func (q *Queue) DeadLetters(ctx context.Context, f DeadLetterFilter, limit int) ([]DeadLetter, error) {
	var out []DeadLetter
	err := q.eachDeadLetter(ctx, f, func(dl DeadLetter) bool {
		out = append(out, dl)
		return len(out) < limit
	})
	return out, err
}

// Redrive puts the dead letters that match f back on the work queue, as
// fresh jobs that converge their keys, and removes them from the
// dead-letter stream. It returns how many it moved.
func (q *Queue) Redrive(ctx context.Context, f DeadLetterFilter) (int, error) {
	s, err := q.js.Stream(ctx, DeadStream)
	if err != nil {
		return 0, err
	}
	n := 0
	var ierr error
	err = q.eachDeadLetter(ctx, f, func(dl DeadLetter) bool {
		j := dl.Job
		if j.Task == "" || j.Key == "" {
			return true // undecodable: nothing to run again
		}
		// A part job's upload may be long gone; converging the key
		// re-queues whatever parts are still missing.
		if j.Kind == KindPart {
			j.Kind = KindConverge
		}
		j.UploadID, j.Part, j.Redo, j.Waits, j.Attempts, j.NotBefore, j.QueuedAt = "", 0, 0, 0, 0, time.Time{}, time.Time{}
		j.Nonce = fmt.Sprintf("redrive-%d", dl.Seq)
		if _, ierr = q.Publish(ctx, []Job{j}); ierr != nil {
			return false
		}
		if ierr = s.DeleteMsg(ctx, dl.Seq); ierr != nil {
			return false
		}
		n++
		return true
	})
	if err == nil {
		err = ierr
	}
	return n, err
}

// eachDeadLetter calls fn with each dead letter that matches f, oldest
// first, until fn returns false.
func (q *Queue) eachDeadLetter(ctx context.Context, f DeadLetterFilter, fn func(DeadLetter) bool) error {
	s, err := q.js.Stream(ctx, DeadStream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		j, _ := decodeJob(m.Data)
		if !f.match(j) {
			continue
		}
		dl := DeadLetter{Seq: seq, Job: j, Error: m.Header.Get(HeaderError), Attempts: m.Header.Get(HeaderAttempts), Time: m.Time}
		if !fn(dl) {
			return nil
		}
	}
	return nil
}

// Depth returns how many jobs wait in the job stream.
func (q *Queue) Depth(ctx context.Context) (uint64, error) {
	s, err := q.js.Stream(ctx, JobStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// Close drains the connection and stops the embedded server, which flushes
// its file store.
func (q *Queue) Close() {
	if q.nc != nil {
		_ = q.nc.Drain()
		for i := 0; i < 100 && !q.nc.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		q.nc.Close()
	}
	if q.ns != nil {
		q.ns.Shutdown()
		q.ns.WaitForShutdown()
	}
}

// safeSubjectToken keeps task names (validated by configuration) and
// anything else from breaking a subject.
func safeSubjectToken(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' {
			return '_'
		}
		return r
	}, s)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}

func splitHostPort(hp string) (string, int, error) {
	i := strings.LastIndex(hp, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("listen address %q: want host:port", hp)
	}
	var port int
	if _, err := fmt.Sscan(hp[i+1:], &port); err != nil {
		return "", 0, fmt.Errorf("listen address %q: bad port", hp)
	}
	return hp[:i], port, nil
}
