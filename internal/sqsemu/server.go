package sqsemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/oss2s3/oss2s3/internal/faultset"
	"github.com/oss2s3/oss2s3/internal/httpbed"
)

// Options configures a Server.
type Options struct {
	// Credentials maps access key IDs to secret access keys. When it is
	// non-empty every request must carry an AWS Signature Version 4
	// (Authorization header) by one of them, scoped to service "sqs", made
	// within 15 minutes of the wall clock. Failures answer as SQS does:
	// 403 InvalidClientTokenId for an unknown key; 403
	// SignatureDoesNotMatch for a wrong signature, service, region or time;
	// 403 MissingAuthenticationToken for an unsigned request. Session
	// tokens are accepted unchecked. When Credentials is nil or empty
	// signatures are NOT checked and unsigned requests are served.
	Credentials map[string]string

	// Region, e.g. "eu-west-1", is the region signatures must be scoped to
	// and the region of queue ARNs. Empty accepts signatures for any region
	// and writes "us-east-1" into ARNs.
	Region string

	// Logger receives one debug record per request. Nil discards.
	Logger *slog.Logger

	// Now replaces time.Now for everything a queue measures: visibility
	// timeouts, delays, retention, timestamps. Long polling still waits in
	// real time (WaitTimeSeconds is a wall-clock wait of the HTTP request;
	// with a test clock a waiting receive looks at the clock every 20 ms, so
	// advancing it releases messages to receives already waiting), and
	// signatures are checked against the wall clock. Nil uses time.Now.
	Now func() time.Time
}

// Account is the AWS account ID in every queue URL and ARN the emulator
// hands out. Requests may name any account: queues are found by name.
const Account = "000000000000"

const (
	contentTypeJSON = "application/x-amz-json-1.0"
	targetPrefix    = "AmazonSQS."
	maxRequestBytes = 4 << 20
)

// ErrQueueDoesNotExist is returned by the Go API for an unknown queue.
var ErrQueueDoesNotExist = errors.New("sqsemu: queue does not exist")

// Server is an in-memory SQS endpoint (standard queues). It implements
// http.Handler; Start serves it on a listener of its own.
type Server struct {
	opts   Options
	log    *slog.Logger
	region string

	mu     sync.Mutex
	queues map[string]*queue
	base   string // endpoint of Start, for queue URLs of the Go API

	countMu  sync.Mutex
	requests map[string]int

	faults faultset.Set[Fault]

	// done is closed by Close: long polls end at once.
	done chan struct{}
	http httpbed.Server
}

var _ http.Handler = (*Server)(nil)

// New returns a server with no queues.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	region := opts.Region
	if region == "" {
		region = "us-east-1"
	}
	opts.Credentials = maps.Clone(opts.Credentials)
	return &Server{
		opts:     opts,
		log:      log,
		region:   region,
		queues:   make(map[string]*queue),
		base:     "http://localhost",
		requests: make(map[string]int),
		done:     make(chan struct{}),
	}
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in a goroutine. It
// returns the endpoint to give the SQS client as BaseEndpoint, e.g.
// "http://127.0.0.1:34567".
func (s *Server) Start(addr string) (string, error) {
	endpoint, err := s.http.Start("sqsemu", addr, s, s.log)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.base = endpoint
	s.mu.Unlock()
	return endpoint, nil
}

// Close ends long polls (they answer with no messages), stops the listener
// if Start was called and closes open connections. It is idempotent.
func (s *Server) Close() error { return s.http.Close(func() { close(s.done) }, nil) }

// --- Go API for tests and the demo

// CreateQueue creates the queue name with the given attributes (as
// CreateQueue takes them: "VisibilityTimeout": "30", "RedrivePolicy":
// `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":3}`,
// ...) and returns its URL, http://<Start's host:port>/000000000000/<name>
// (http://localhost/... before Start; any host resolves). If the queue
// exists it returns its URL and leaves its attributes alone. It panics
// when name or attrs are invalid (the API would answer an error), like
// regexp.MustCompile: callers pass constants.
func (s *Server) CreateQueue(name string, attrs map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.createQueueLocked(name, attrs, true); e != nil {
		panic(fmt.Sprintf("sqsemu: CreateQueue(%q): %v", name, e))
	}
	return s.base + "/" + Account + "/" + name
}

// QueueURL returns the URL of the queue name (as CreateQueue does) and
// whether it exists.
func (s *Server) QueueURL(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.queues[name]
	return s.base + "/" + Account + "/" + name, ok
}

// QueueARN returns the ARN of the queue name, what a RedrivePolicy's
// deadLetterTargetArn names.
func (s *Server) QueueARN(name string) string {
	return "arn:aws:sqs:" + s.region + ":" + Account + ":" + name
}

// SendMessage sends body to the queue (a queue URL of any host, or a bare
// queue name) as SendMessage would, with the queue's default delay, and
// returns the message ID.
func (s *Server) SendMessage(queueURL, body string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queueRef(queueURL)]
	if q == nil {
		return "", fmt.Errorf("%w: %s", ErrQueueDoesNotExist, queueURL)
	}
	m, e := s.sendLocked(q, sendEntry{MessageBody: body}, "")
	if e != nil {
		return "", e
	}
	return m.id, nil
}

// QueueStats are a queue's current counts and running totals.
type QueueStats struct {
	// Current counts, what ApproximateNumberOfMessages,
	// ApproximateNumberOfMessagesNotVisible and
	// ApproximateNumberOfMessagesDelayed report.
	Visible  int
	InFlight int
	Delayed  int

	Sent     int // messages accepted (SendMessage, each batch entry, the Go SendMessage)
	Received int // deliveries: a message received twice counts twice
	Deleted  int // messages removed by DeleteMessage or a DeleteMessageBatch entry
	// StaleDeletes are deletes that succeeded without deleting: the receipt
	// handle was not the message's latest (see DeleteMessage).
	StaleDeletes int
	DeadLettered int // messages moved from this queue to its dead-letter queue
	Expired      int // messages dropped at the end of MessageRetentionPeriod
	Purged       int // messages removed by PurgeQueue
}

// Stats returns the counts of the queue (a URL or a bare name); the zero
// QueueStats if there is no such queue.
func (s *Server) Stats(queueURL string) QueueStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queueRef(queueURL)]
	if q == nil {
		return QueueStats{}
	}
	s.refresh(q, s.now())
	st := q.stats
	st.Visible, st.InFlight, st.Delayed = q.visible.Len(), q.inFlight, q.delayed
	return st
}

// Message is a snapshot of one message in a queue.
type Message struct {
	ID           string
	Body         string
	ReceiveCount int
	SentAt       time.Time
	InFlight     bool
	Delayed      bool
	// DeadLetterSourceARN is the ARN of the queue a dead-lettered message
	// came from ("" otherwise).
	DeadLetterSourceARN string
	// Attributes are the message's String and Number attributes.
	Attributes map[string]string
}

// Messages returns every message of the queue (a URL or a bare name),
// oldest sent first, without receiving them; nil if there is no such queue.
func (s *Server) Messages(queueURL string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queueRef(queueURL)]
	if q == nil {
		return nil
	}
	s.refresh(q, s.now())
	out := make([]Message, 0, len(q.byID))
	for _, m := range q.byID {
		msg := Message{ID: m.id, Body: m.body, ReceiveCount: m.receiveCount, SentAt: m.sentAt,
			InFlight: m.state == stateInFlight, Delayed: m.state == stateDelayed, DeadLetterSourceARN: m.dlqSource}
		for k, a := range m.attrs {
			if a.StringValue != nil {
				if msg.Attributes == nil {
					msg.Attributes = map[string]string{}
				}
				msg.Attributes[k] = *a.StringValue
			}
		}
		out = append(out, msg)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].SentAt.Before(out[j].SentAt) })
	return out
}

// Requests returns how many requests each operation received (e.g.
// "ReceiveMessage": 3), whatever their outcome. Requests without a known
// AmazonSQS target count as "Unknown".
func (s *Server) Requests() map[string]int {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	return maps.Clone(s.requests)
}

func (s *Server) count(op string) {
	s.countMu.Lock()
	s.requests[op]++
	s.countMu.Unlock()
}

// queueRef is the queue name a queue URL (or a bare name) refers to.
func queueRef(ref string) string {
	if !strings.Contains(ref, "/") {
		return ref
	}
	name, _ := queueNameFromURL(ref)
	return name
}

// queueNameFromURL extracts NAME from http(s)://HOST/ACCOUNT/NAME; the host
// and the account are not checked, so an AWS-form URL
// (https://sqs.us-east-1.amazonaws.com/123456789012/NAME) resolves too.
func queueNameFromURL(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	name := parts[len(parts)-1]
	if name == "" {
		return "", false
	}
	return name, true
}

var queueNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// createQueueLocked creates the queue or, if it exists, checks that attrs
// agree with its attributes (SQS answers QueueNameExists otherwise).
// internal skips that check (the Go API leaves an existing queue alone).
func (s *Server) createQueueLocked(name string, attrs map[string]string, internal bool) (*queue, *apiError) {
	if strings.HasSuffix(name, ".fifo") {
		return nil, errInvalidParameterValue("FIFO queues (%s) are not implemented by this emulator.", name)
	}
	if !queueNameRE.MatchString(name) {
		return nil, errInvalidParameterValue("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	dlqExists := func(arn string) bool { return s.queues[arnQueueName(arn)] != nil }
	if q, ok := s.queues[name]; ok {
		if internal {
			return q, nil
		}
		want, e := applyAttrs(defaultQueueAttrs(), attrs, dlqExists)
		if e != nil {
			return nil, e
		}
		have, wantR := q.attrs.render(), want.render()
		for k := range attrs {
			if have[k] != wantR[k] {
				return nil, modeled("QueueNameExists", "A queue already exists with the same name and a different value for attribute %s", k)
			}
		}
		return q, nil
	}
	a, e := applyAttrs(defaultQueueAttrs(), attrs, dlqExists)
	if e != nil {
		return nil, e
	}
	q := newQueue(name, s.QueueARN(name), a, s.now())
	s.queues[name] = q
	return q, nil
}

// sendEntry is one message to send: SendMessage's input and a
// SendMessageBatch entry alike.
type sendEntry struct {
	ID                      string             `json:"Id"`
	MessageBody             string             `json:"MessageBody"`
	DelaySeconds            *int64             `json:"DelaySeconds"`
	MessageAttributes       map[string]msgAttr `json:"MessageAttributes"`
	MessageSystemAttributes map[string]msgAttr `json:"MessageSystemAttributes"`
	MessageDeduplicationID  string             `json:"MessageDeduplicationId"`
	MessageGroupID          string             `json:"MessageGroupId"`
}

func (en sendEntry) entryID() string { return en.ID }

// sendLocked validates and enqueues one message.
func (s *Server) sendLocked(q *queue, in sendEntry, sender string) (*message, *apiError) {
	m, delay, e := s.prepareMessage(q, in, sender)
	if e != nil {
		return nil, e
	}
	now := s.now()
	s.refresh(q, now)
	m.sentAt = now
	q.add(m, delay, now)
	q.stats.Sent++
	return m, nil
}

// prepareMessage validates a message to send and returns it with its delay.
func (s *Server) prepareMessage(q *queue, in sendEntry, sender string) (*message, time.Duration, *apiError) {
	if in.MessageBody == "" {
		return nil, 0, errMissingParameter("MessageBody")
	}
	if !validMessageChars(in.MessageBody) {
		return nil, 0, modeled("InvalidMessageContents", "Invalid binary character in the message body. Only #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF are allowed.")
	}
	if in.MessageGroupID != "" || in.MessageDeduplicationID != "" {
		return nil, 0, errInvalidParameterValue("The request includes parameters that are not valid for this queue type (standard queue): MessageGroupId and MessageDeduplicationId are for FIFO queues.")
	}
	attrSize, e := checkMessageAttrs(in.MessageAttributes)
	if e != nil {
		return nil, 0, e
	}
	if e := checkSystemAttrs(in.MessageSystemAttributes); e != nil {
		return nil, 0, e
	}
	if size := len(in.MessageBody) + attrSize; size > q.attrs.maxSize {
		return nil, 0, errInvalidParameterValue("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", q.attrs.maxSize)
	}
	delay := q.attrs.delay
	if in.DelaySeconds != nil {
		if *in.DelaySeconds < 0 || *in.DelaySeconds > 900 {
			return nil, 0, errInvalidParameterValue("Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.", *in.DelaySeconds)
		}
		delay = time.Duration(*in.DelaySeconds) * time.Second
	}
	if sender == "" {
		sender = Account
	}
	return &message{
		id:       newMessageID(),
		body:     in.MessageBody,
		md5Body:  md5Hex(in.MessageBody),
		attrs:    in.MessageAttributes,
		sysAttrs: in.MessageSystemAttributes,
		senderID: sender,
	}, delay, nil
}

// --- HTTP

// call is one API request being served.
type call struct {
	ctx    context.Context
	op     string
	body   []byte
	sender string // the access key that signed, "" if unknown
	base   string // scheme://host the client used, for queue URLs
	// failEntries is how many leading entries of a batch an injected fault
	// fails.
	failEntries int
}

func (c *call) decode(v any) *apiError {
	if len(c.body) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return errSerialization("Cannot decode the request body: " + err.Error())
	}
	return nil
}

func (c *call) queueURL(name string) string {
	return c.base + "/" + Account + "/" + name
}

type handler func(s *Server, c *call) (any, *apiError)

// operations lists every operation the emulator serves.
var operations = map[string]handler{
	"CreateQueue":                  nameOp((*Server).createQueue),
	"GetQueueUrl":                  nameOp((*Server).getQueueURL),
	"GetQueueAttributes":           queueOp(checkAttributeNames, (*Server).getQueueAttributes),
	"SetQueueAttributes":           queueOp(checkWritableAttrs, (*Server).setQueueAttributes),
	"DeleteQueue":                  queueOp(nil, (*Server).deleteQueue),
	"ListQueues":                   (*Server).listQueues,
	"ListDeadLetterSourceQueues":   queueOp(nil, (*Server).listDeadLetterSourceQueues),
	"PurgeQueue":                   queueOp(nil, (*Server).purgeQueue),
	"SendMessage":                  queueOp(checkMessageBody, (*Server).sendMessage),
	"SendMessageBatch":             queueOp(checkEntries[sendEntry], (*Server).sendMessageBatch),
	"ReceiveMessage":               (*Server).receiveMessage,
	"DeleteMessage":                queueOp(checkReceiptHandle, (*Server).deleteMessage),
	"DeleteMessageBatch":           handleBatchOp((*Server).deleteEntry),
	"ChangeMessageVisibility":      queueOp(nil, (*Server).changeMessageVisibility),
	"ChangeMessageVisibilityBatch": handleBatchOp((*Server).changeVisibilityEntry),
}

// unsupported are SQS operations the emulator knows but does not implement.
var unsupported = map[string]bool{
	"AddPermission": true, "RemovePermission": true, "TagQueue": true, "UntagQueue": true,
	"ListQueueTags": true, "StartMessageMoveTask": true, "CancelMessageMoveTask": true,
	"ListMessageMoveTasks": true,
}

// ServeHTTP serves one AWS JSON 1.0 request: POST, X-Amz-Target:
// AmazonSQS.<Operation>, a JSON body.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	reqID := newMessageID()
	w.Header().Set("x-amzn-RequestId", reqID)
	op := "Unknown"
	var failed *apiError
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		defer func() {
			attrs := []any{"op", op, "status", w.status, "duration", time.Since(start), "request_id", reqID}
			if failed != nil {
				attrs = append(attrs, "error", failed.code, "message", failed.message)
			}
			s.log.Debug("sqs request", attrs...)
		}()
	}
	fail := func(e *apiError) {
		failed = e
		s.writeError(w, e)
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		s.count(op)
		fail(errSerialization("Cannot read the request body: " + err.Error()))
		return
	}
	target := r.Header.Get("X-Amz-Target")
	name, isSQS := strings.CutPrefix(target, targetPrefix)
	if isSQS && (operations[name] != nil || unsupported[name]) {
		op = name
	}
	s.count(op)
	if r.Method != http.MethodPost || target == "" {
		fail(errUnknownOperation("The emulator speaks only the AWS JSON 1.0 protocol (POST with X-Amz-Target: AmazonSQS.<Operation>), not the query protocol."))
		return
	}
	sender, e := s.authenticate(r, body)
	if e != nil {
		fail(e)
		return
	}
	if !isSQS || op == "Unknown" {
		fail(errUnknownOperation("Unknown operation " + target + "."))
		return
	}
	if unsupported[op] {
		fail(modeled("UnsupportedOperation", "%s is not implemented by this emulator.", op))
		return
	}

	var ref struct {
		QueueURL  string `json:"QueueUrl"`
		QueueName string `json:"QueueName"`
	}
	_ = json.Unmarshal(body, &ref)
	qname := ref.QueueName
	if ref.QueueURL != "" {
		qname, _ = queueNameFromURL(ref.QueueURL)
	}
	eff, err := takeFaults(r.Context(), &s.faults, op, qname)
	if err != nil {
		// The client went away during an injected latency.
		return
	}
	if eff.Status != 0 {
		fail(errorForCode(eff.Status, eff.Code, "Injected fault."))
		return
	}

	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c := &call{ctx: r.Context(), op: op, body: body, sender: sender, base: scheme + "://" + r.Host, failEntries: eff.failEntries}
	out, e := operations[op](s, c)
	if e != nil {
		fail(e)
		return
	}
	if c.ctx.Err() != nil {
		// A long poll whose client went away: nobody reads the answer.
		return
	}
	payload, err := json.Marshal(out)
	if err != nil {
		fail(errInternal("Cannot encode the response: " + err.Error()))
		return
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	_, _ = w.Write(payload)
}

// statusWriter records the status of a response for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
