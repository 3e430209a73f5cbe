package sqsemu

import (
	"encoding/base64"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// One handler per operation, in the order of the operations table. Each
// decodes its input, takes s.mu for the state it touches and returns the
// output to encode as JSON, or the error to answer. The operations on one
// queue share that path through queueOp.

type empty struct{}

// queueIn is the QueueUrl of the input of an operation on one queue.
type queueIn struct {
	QueueURL string `json:"QueueUrl"`
}

func (in *queueIn) queueRef() string { return in.QueueURL }

// queueOp makes the handler of an operation on one queue: it decodes the
// input, checks it with check (nil: no check), which answers what SQS
// rejects before it looks the queue up, then runs do with s.mu held on the
// queue the input's QueueUrl names (missing, malformed or unknown answer
// as lookupLocked says).
func queueOp[In any, P interface {
	*In
	queueRef() string
}](check func(*In) *apiError, do func(s *Server, c *call, in *In, q *queue) (any, *apiError)) handler {
	return func(s *Server, c *call) (any, *apiError) {
		var in In
		if e := c.decode(&in); e != nil {
			return nil, e
		}
		if check != nil {
			if e := check(&in); e != nil {
				return nil, e
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		q, e := s.lookupLocked(P(&in).queueRef())
		if e != nil {
			return nil, e
		}
		return do(s, c, &in, q)
	}
}

func (s *Server) lookupLocked(queueURL string) (*queue, *apiError) {
	if queueURL == "" {
		return nil, errMissingParameter("QueueUrl")
	}
	name, ok := queueNameFromURL(queueURL)
	if !ok {
		return nil, modeled("InvalidAddress", "The address %s is not valid for this endpoint.", queueURL)
	}
	q := s.queues[name]
	if q == nil {
		return nil, errQueueDoesNotExist()
	}
	return q, nil
}

// nameIn is the QueueName of CreateQueue's and GetQueueUrl's input.
type nameIn struct {
	QueueName string `json:"QueueName"`
}

func (in *nameIn) queueName() string { return in.QueueName }

// nameOp makes the handler of an operation that names a queue and answers
// its URL: it decodes the input, requires QueueName, and runs do with s.mu
// held.
func nameOp[In any, P interface {
	*In
	queueName() string
}](do func(s *Server, in *In) *apiError) handler {
	return func(s *Server, c *call) (any, *apiError) {
		var in In
		if e := c.decode(&in); e != nil {
			return nil, e
		}
		name := P(&in).queueName()
		if name == "" {
			return nil, errMissingParameter("QueueName")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if e := do(s, &in); e != nil {
			return nil, e
		}
		return struct {
			QueueURL string `json:"QueueUrl"`
		}{c.queueURL(name)}, nil
	}
}

type createQueueIn struct {
	nameIn
	Attributes map[string]string `json:"Attributes"`
}

func (s *Server) createQueue(in *createQueueIn) *apiError {
	_, e := s.createQueueLocked(in.QueueName, in.Attributes, false)
	return e
}

func (s *Server) getQueueURL(in *nameIn) *apiError {
	if s.queues[in.QueueName] == nil {
		return errQueueDoesNotExist()
	}
	return nil
}

// queueAttrNames are the names GetQueueAttributes knows.
var queueAttrNames = map[string]bool{
	"All": true, "ApproximateNumberOfMessages": true, "ApproximateNumberOfMessagesNotVisible": true,
	"ApproximateNumberOfMessagesDelayed": true, "CreatedTimestamp": true, "LastModifiedTimestamp": true,
	"QueueArn": true, "VisibilityTimeout": true, "MessageRetentionPeriod": true,
	"ReceiveMessageWaitTimeSeconds": true, "DelaySeconds": true, "MaximumMessageSize": true,
	"RedrivePolicy": true, "Policy": true, "RedriveAllowPolicy": true, "KmsMasterKeyId": true,
	"KmsDataKeyReusePeriodSeconds": true, "SqsManagedSseEnabled": true, "FifoQueue": true,
	"ContentBasedDeduplication": true, "DeduplicationScope": true, "FifoThroughputLimit": true,
}

type getQueueAttributesIn struct {
	queueIn
	AttributeNames []string `json:"AttributeNames"`
}

func checkAttributeNames(in *getQueueAttributesIn) *apiError {
	for _, n := range in.AttributeNames {
		if !queueAttrNames[n] {
			return modeled("InvalidAttributeName", "Unknown Attribute %s.", n)
		}
	}
	return nil
}

func (s *Server) getQueueAttributes(_ *call, in *getQueueAttributesIn, q *queue) (any, *apiError) {
	s.refresh(q, s.now())
	all := q.attrs.render()
	all["ApproximateNumberOfMessages"] = strconv.Itoa(q.visible.Len())
	all["ApproximateNumberOfMessagesNotVisible"] = strconv.Itoa(q.inFlight)
	all["ApproximateNumberOfMessagesDelayed"] = strconv.Itoa(q.delayed)
	all["CreatedTimestamp"] = strconv.FormatInt(q.created.Unix(), 10)
	all["LastModifiedTimestamp"] = strconv.FormatInt(q.modified.Unix(), 10)
	all["QueueArn"] = q.arn
	out := map[string]string{}
	for _, n := range in.AttributeNames {
		if n == "All" {
			out = all
			break
		}
		if v, ok := all[n]; ok {
			out[n] = v
		}
	}
	var res struct {
		Attributes map[string]string `json:"Attributes,omitempty"`
	}
	if len(out) > 0 {
		res.Attributes = out
	}
	return res, nil
}

type setQueueAttributesIn struct {
	queueIn
	Attributes map[string]string `json:"Attributes"`
}

func checkWritableAttrs(in *setQueueAttributesIn) *apiError {
	for n := range in.Attributes {
		if readOnlyAttrs[n] {
			return modeled("InvalidAttributeName", "Unknown Attribute %s.", n)
		}
	}
	return nil
}

func (s *Server) setQueueAttributes(_ *call, in *setQueueAttributesIn, q *queue) (any, *apiError) {
	a, e := applyAttrs(q.attrs, in.Attributes, func(arn string) bool { return s.queues[arnQueueName(arn)] != nil })
	if e != nil {
		return nil, e
	}
	if a.retention != q.attrs.retention {
		q.forceSweep = true
	}
	q.attrs = a
	q.modified = s.now()
	s.refresh(q, q.modified)
	q.notify()
	return empty{}, nil
}

func (s *Server) deleteQueue(_ *call, _ *queueIn, q *queue) (any, *apiError) {
	delete(s.queues, q.name)
	q.notify()
	return empty{}, nil
}

// pageIn is the paging input of the list operations.
type pageIn struct {
	MaxResults *int64 `json:"MaxResults"`
	NextToken  string `json:"NextToken"`
}

// pageURLs returns the queue URLs of the page of names that in asks for
// (see pageNames), nil for none, and the token of the next page.
func (c *call) pageURLs(names []string, in pageIn) ([]string, string, *apiError) {
	page, next, e := pageNames(names, in.MaxResults, in.NextToken)
	if e != nil {
		return nil, "", e
	}
	var urls []string
	for _, n := range page {
		urls = append(urls, c.queueURL(n))
	}
	return urls, next, nil
}

// pageNames returns the page of sorted names after token.
func pageNames(names []string, maxResults *int64, token string) ([]string, string, *apiError) {
	sort.Strings(names)
	if maxResults == nil {
		if len(names) > 1000 {
			names = names[:1000]
		}
		return names, "", nil
	}
	if *maxResults < 1 || *maxResults > 1000 {
		return nil, "", errInvalidParameterValue("Value %d for parameter MaxResults is invalid. Reason: must be between 1 and 1000.", *maxResults)
	}
	if token != "" {
		after, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return nil, "", errInvalidParameterValue("Invalid NextToken value.")
		}
		i := sort.SearchStrings(names, string(after))
		for i < len(names) && names[i] <= string(after) {
			i++
		}
		names = names[i:]
	}
	next := ""
	if len(names) > int(*maxResults) {
		names = names[:*maxResults]
		next = base64.RawURLEncoding.EncodeToString([]byte(names[len(names)-1]))
	}
	return names, next, nil
}

func (s *Server) listQueues(c *call) (any, *apiError) {
	var in struct {
		QueueNamePrefix string `json:"QueueNamePrefix"`
		pageIn
	}
	if e := c.decode(&in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	var names []string
	for name := range s.queues {
		if strings.HasPrefix(name, in.QueueNamePrefix) {
			names = append(names, name)
		}
	}
	s.mu.Unlock()
	urls, next, e := c.pageURLs(names, in.pageIn)
	if e != nil {
		return nil, e
	}
	return struct {
		QueueURLs []string `json:"QueueUrls,omitempty"`
		NextToken string   `json:"NextToken,omitempty"`
	}{urls, next}, nil
}

type listDeadLetterSourceQueuesIn struct {
	queueIn
	pageIn
}

func (s *Server) listDeadLetterSourceQueues(c *call, in *listDeadLetterSourceQueuesIn, q *queue) (any, *apiError) {
	var names []string
	for name, src := range s.queues {
		if src.attrs.redrive != nil && arnQueueName(src.attrs.redrive.targetARN) == q.name {
			names = append(names, name)
		}
	}
	urls, next, e := c.pageURLs(names, in.pageIn)
	if e != nil {
		return nil, e
	}
	if urls == nil {
		urls = []string{}
	}
	// Unlike ListQueues' QueueUrls, SQS spells this member queueUrls and
	// always sends it, [] when no queue names q as its dead-letter queue.
	return struct {
		QueueURLs []string `json:"queueUrls"`
		NextToken string   `json:"NextToken,omitempty"`
	}{urls, next}, nil
}

func (s *Server) purgeQueue(_ *call, _ *queueIn, q *queue) (any, *apiError) {
	q.purge()
	return empty{}, nil
}

// sendResult is SendMessage's output and a SendMessageBatch success entry.
type sendResult struct {
	ID                           string `json:"Id,omitempty"`
	MessageID                    string `json:"MessageId"`
	MD5OfMessageBody             string `json:"MD5OfMessageBody"`
	MD5OfMessageAttributes       string `json:"MD5OfMessageAttributes,omitempty"`
	MD5OfMessageSystemAttributes string `json:"MD5OfMessageSystemAttributes,omitempty"`
}

func sendResultOf(id string, m *message) sendResult {
	return sendResult{ID: id, MessageID: m.id, MD5OfMessageBody: m.md5Body,
		MD5OfMessageAttributes: attrsMD5(m.attrs), MD5OfMessageSystemAttributes: attrsMD5(m.sysAttrs)}
}

type sendMessageIn struct {
	queueIn
	sendEntry
}

func checkMessageBody(in *sendMessageIn) *apiError {
	if in.MessageBody == "" {
		return errMissingParameter("MessageBody")
	}
	return nil
}

func (s *Server) sendMessage(c *call, in *sendMessageIn, q *queue) (any, *apiError) {
	m, e := s.sendLocked(q, in.sendEntry, c.sender)
	if e != nil {
		return nil, e
	}
	return sendResultOf("", m), nil
}

var batchIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// checkBatch validates the entry IDs of a batch request.
func checkBatch(ids []string) *apiError {
	switch {
	case len(ids) == 0:
		return modeled("EmptyBatchRequest", "There should be at least one entry in the request.")
	case len(ids) > 10:
		return modeled("TooManyEntriesInBatchRequest", "Maximum number of entries per request are 10. You have sent %d.", len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if !batchIDRE.MatchString(id) {
			return modeled("InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if seen[id] {
			return modeled("BatchEntryIdsNotDistinct", "Id %s repeated.", id)
		}
		seen[id] = true
	}
	return nil
}

type idResult struct {
	ID string `json:"Id"`
}

// batchIn is the input of a batch operation on one queue.
type batchIn[E interface{ entryID() string }] struct {
	queueIn
	Entries []E `json:"Entries"`
}

// checkEntries checks the entry IDs of a batch before the queue is looked up.
func checkEntries[E interface{ entryID() string }](in *batchIn[E]) *apiError {
	ids := make([]string, len(in.Entries))
	for i, en := range in.Entries {
		ids[i] = en.entryID()
	}
	return checkBatch(ids)
}

// batchOutput is the answer of a batch operation.
type batchOutput[R any] struct {
	Successful []R          `json:"Successful"`
	Failed     []batchError `json:"Failed"`
}

// runBatch runs do on each entry in order. The first c.failEntries entries
// fail with the injected entry error (a fault) without running do.
func runBatch[E interface{ entryID() string }, R any](c *call, entries []E, do func(E) (R, *apiError)) batchOutput[R] {
	out := batchOutput[R]{Successful: []R{}, Failed: []batchError{}}
	for i, en := range entries {
		if i < c.failEntries {
			out.Failed = append(out.Failed, entryError(en.entryID(), injectedEntryError()))
			continue
		}
		r, e := do(en)
		if e != nil {
			out.Failed = append(out.Failed, entryError(en.entryID(), e))
			continue
		}
		out.Successful = append(out.Successful, r)
	}
	return out
}

func (s *Server) sendMessageBatch(c *call, in *batchIn[sendEntry], q *queue) (any, *apiError) {
	total := 0
	for _, en := range in.Entries {
		total += len(en.MessageBody)
	}
	if total > q.attrs.maxSize {
		return nil, modeled("BatchRequestTooLong", "Batch requests cannot be longer than %d bytes. You have sent %d bytes.", q.attrs.maxSize, total)
	}
	return runBatch(c, in.Entries, func(en sendEntry) (sendResult, *apiError) {
		m, e := s.sendLocked(q, en, c.sender)
		if e != nil {
			return sendResult{}, e
		}
		return sendResultOf(en.ID, m), nil
	}), nil
}

// receivedMessage is a message in ReceiveMessage's output.
type receivedMessage struct {
	MessageID              string             `json:"MessageId"`
	ReceiptHandle          string             `json:"ReceiptHandle"`
	MD5OfBody              string             `json:"MD5OfBody"`
	Body                   string             `json:"Body"`
	Attributes             map[string]string  `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string             `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]msgAttr `json:"MessageAttributes,omitempty"`
}

const maxWait = 20 * time.Second

// receiveIn is ReceiveMessage's input.
type receiveIn struct {
	QueueURL                    string   `json:"QueueUrl"`
	AttributeNames              []string `json:"AttributeNames"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
	MessageAttributeNames       []string `json:"MessageAttributeNames"`
	MaxNumberOfMessages         *int64   `json:"MaxNumberOfMessages"`
	VisibilityTimeout           *int64   `json:"VisibilityTimeout"`
	WaitTimeSeconds             *int64   `json:"WaitTimeSeconds"`
}

// check checks the parameters' ranges; it returns the number of messages
// asked for (1 by default).
func (in *receiveIn) check() (int64, *apiError) {
	maxMsgs := int64(1)
	if in.MaxNumberOfMessages != nil {
		maxMsgs = *in.MaxNumberOfMessages
		if maxMsgs < 1 || maxMsgs > 10 {
			return 0, errInvalidParameterValue("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", maxMsgs)
		}
	}
	if in.WaitTimeSeconds != nil && (*in.WaitTimeSeconds < 0 || *in.WaitTimeSeconds > 20) {
		return 0, errInvalidParameterValue("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", *in.WaitTimeSeconds)
	}
	if in.VisibilityTimeout != nil && (*in.VisibilityTimeout < 0 || *in.VisibilityTimeout > 43200) {
		return 0, errInvalidParameterValue("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.", *in.VisibilityTimeout)
	}
	return maxMsgs, nil
}

// systemNames are the system attributes asked for, under either parameter.
func (in *receiveIn) systemNames() map[string]bool {
	sysNames := map[string]bool{}
	for _, n := range append(in.AttributeNames, in.MessageSystemAttributeNames...) {
		sysNames[n] = true
	}
	return sysNames
}

// receiveTry is the outcome of one look at the queue: the messages
// received, else what to wait on before the next look.
type receiveTry struct {
	msgs    []receivedMessage
	changed chan struct{} // closed when the queue changes
	next    time.Time     // when a message becomes visible, or zero
	now     time.Time     // the emulator's time of the look
}

// receiveMessage receives up to MaxNumberOfMessages messages, long-polling
// until some are visible or the wait time ends.
func (s *Server) receiveMessage(c *call) (any, *apiError) {
	var in receiveIn
	if e := c.decode(&in); e != nil {
		return nil, e
	}
	maxMsgs, e := in.check()
	if e != nil {
		return nil, e
	}
	sysNames := in.systemNames()
	var deadline time.Time
	for {
		r, e := s.tryReceive(&in, int(maxMsgs), sysNames, &deadline)
		if e != nil {
			return nil, e
		}
		if len(r.msgs) > 0 {
			return struct {
				Messages []receivedMessage `json:"Messages"`
			}{r.msgs}, nil
		}
		if !s.awaitMessages(c, r, deadline) {
			return empty{}, nil
		}
	}
}

// tryReceive looks at the queue once and receives up to maxMsgs messages.
// On the first look (deadline zero) it sets the deadline of the long poll:
// WaitTimeSeconds, else the queue's ReceiveMessageWaitTimeSeconds.
func (s *Server) tryReceive(in *receiveIn, maxMsgs int, sysNames map[string]bool, deadline *time.Time) (receiveTry, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.lookupLocked(in.QueueURL)
	if e != nil {
		return receiveTry{}, e
	}
	now := s.now()
	s.refresh(q, now)
	if deadline.IsZero() {
		wait := q.attrs.wait
		if in.WaitTimeSeconds != nil {
			wait = time.Duration(*in.WaitTimeSeconds) * time.Second
		}
		*deadline = time.Now().Add(min(wait, maxWait))
	}
	visibility := q.attrs.visibility
	if in.VisibilityTimeout != nil {
		visibility = time.Duration(*in.VisibilityTimeout) * time.Second
	}
	if msgs := s.receive(q, maxMsgs, visibility, now); len(msgs) > 0 {
		out := make([]receivedMessage, len(msgs))
		for i, m := range msgs {
			out[i] = receivedOf(q, m, sysNames, in.MessageAttributeNames)
		}
		return receiveTry{msgs: out}, nil
	}
	return receiveTry{changed: q.changed, next: q.nextVisible(), now: now}, nil
}

// awaitMessages waits until the queue changes, its next message becomes
// visible or the deadline passes. It reports false when the long poll is
// over: the deadline passed, the call ended or the server closed.
func (s *Server) awaitMessages(c *call, r receiveTry, deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	if !r.next.IsZero() {
		d = min(d, max(r.next.Sub(r.now), time.Millisecond))
	}
	if s.opts.Now != nil {
		// A test clock may jump at any time: look again often.
		d = min(d, 20*time.Millisecond)
	}
	t := time.NewTimer(d)
	select {
	case <-r.changed:
	case <-t.C:
	case <-c.ctx.Done():
	case <-s.done:
	}
	t.Stop()
	return c.ctx.Err() == nil && !s.isClosed()
}

func (s *Server) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// receivedOf renders a message just received, with the system attributes
// named in sysNames and the message attributes matching attrPatterns.
func receivedOf(q *queue, m *message, sysNames map[string]bool, attrPatterns []string) receivedMessage {
	out := receivedMessage{MessageID: m.id, ReceiptHandle: receiptHandle(q, m), MD5OfBody: m.md5Body, Body: m.body}
	all := sysNames["All"]
	attrs := map[string]string{}
	if all || sysNames["SenderId"] {
		attrs["SenderId"] = m.senderID
	}
	if all || sysNames["SentTimestamp"] {
		attrs["SentTimestamp"] = millis(m.sentAt)
	}
	if all || sysNames["ApproximateReceiveCount"] {
		attrs["ApproximateReceiveCount"] = strconv.Itoa(m.receiveCount)
	}
	if all || sysNames["ApproximateFirstReceiveTimestamp"] {
		attrs["ApproximateFirstReceiveTimestamp"] = millis(m.firstRecv)
	}
	if a, ok := m.sysAttrs["AWSTraceHeader"]; ok && (all || sysNames["AWSTraceHeader"]) && a.StringValue != nil {
		attrs["AWSTraceHeader"] = *a.StringValue
	}
	if m.dlqSource != "" && (all || sysNames["DeadLetterQueueSourceArn"]) {
		attrs["DeadLetterQueueSourceArn"] = m.dlqSource
	}
	if len(attrs) > 0 {
		out.Attributes = attrs
	}
	if sel := selectAttrs(m.attrs, attrPatterns); sel != nil {
		out.MessageAttributes = sel
		out.MD5OfMessageAttributes = attrsMD5(sel)
	}
	return out
}

type deleteMessageIn struct {
	queueIn
	ReceiptHandle string `json:"ReceiptHandle"`
}

func checkReceiptHandle(in *deleteMessageIn) *apiError {
	if in.ReceiptHandle == "" {
		return errMissingParameter("ReceiptHandle")
	}
	return nil
}

func (s *Server) deleteMessage(_ *call, in *deleteMessageIn, q *queue) (any, *apiError) {
	if e := s.deleteByHandle(q, in.ReceiptHandle); e != nil {
		return nil, e
	}
	return empty{}, nil
}

// deleteByHandle deletes the message a receipt handle names, as SQS does:
// the latest handle of a live message deletes it (even when its visibility
// timeout has ended, as long as nobody received it since); an older handle
// of a message received again since succeeds without deleting; a handle of
// a message already gone succeeds; a handle the emulator cannot have
// issued (or of another queue) is ReceiptHandleIsInvalid.
func (s *Server) deleteByHandle(q *queue, handle string) *apiError {
	s.refresh(q, s.now())
	m, st, e := lookupHandle(q, handle)
	if e != nil {
		return e
	}
	switch st {
	case handleLatest:
		q.remove(m)
		q.stats.Deleted++
	case handleStale:
		q.stats.StaleDeletes++
	}
	return nil
}

// handleEntry is an entry of DeleteMessageBatch and
// ChangeMessageVisibilityBatch.
type handleEntry struct {
	ID                string `json:"Id"`
	ReceiptHandle     string `json:"ReceiptHandle"`
	VisibilityTimeout *int64 `json:"VisibilityTimeout"`
}

func (en handleEntry) entryID() string { return en.ID }

// handleBatchOp makes the handler of DeleteMessageBatch or
// ChangeMessageVisibilityBatch: do serves one entry, with s.mu held.
func handleBatchOp(do func(s *Server, q *queue, en handleEntry) *apiError) handler {
	return queueOp(checkEntries[handleEntry], func(s *Server, c *call, in *batchIn[handleEntry], q *queue) (any, *apiError) {
		return runBatch(c, in.Entries, func(en handleEntry) (idResult, *apiError) {
			if e := do(s, q, en); e != nil {
				return idResult{}, e
			}
			return idResult{en.ID}, nil
		}), nil
	})
}

// deleteEntry serves one DeleteMessageBatch entry.
func (s *Server) deleteEntry(q *queue, en handleEntry) *apiError {
	if en.ReceiptHandle == "" {
		return errMissingParameter("ReceiptHandle")
	}
	return s.deleteByHandle(q, en.ReceiptHandle)
}

type changeMessageVisibilityIn struct {
	queueIn
	ReceiptHandle     string `json:"ReceiptHandle"`
	VisibilityTimeout *int64 `json:"VisibilityTimeout"`
}

func (s *Server) changeMessageVisibility(_ *call, in *changeMessageVisibilityIn, q *queue) (any, *apiError) {
	if e := s.changeVisibility(q, in.ReceiptHandle, in.VisibilityTimeout); e != nil {
		return nil, e
	}
	return empty{}, nil
}

// changeVisibility restarts the visibility timeout of an in-flight message
// from now; 0 makes it visible at once (or moves it to the dead-letter
// queue if it has used up its receives).
func (s *Server) changeVisibility(q *queue, handle string, timeout *int64) *apiError {
	if handle == "" {
		return errMissingParameter("ReceiptHandle")
	}
	if timeout == nil {
		return errMissingParameter("VisibilityTimeout")
	}
	if *timeout < 0 || *timeout > 43200 {
		return errInvalidParameterValue("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.", *timeout)
	}
	now := s.now()
	s.refresh(q, now)
	m, st, e := lookupHandle(q, handle)
	if e != nil {
		return e
	}
	if st != handleLatest {
		return errInvalidParameterValue("Value %s for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.", handle)
	}
	if m.state != stateInFlight {
		return modeled("MessageNotInflight", "The message referred to isn't in flight.")
	}
	s.setVisibility(q, m, time.Duration(*timeout)*time.Second, now)
	return nil
}

// changeVisibilityEntry serves one ChangeMessageVisibilityBatch entry.
func (s *Server) changeVisibilityEntry(q *queue, en handleEntry) *apiError {
	return s.changeVisibility(q, en.ReceiptHandle, en.VisibilityTimeout)
}
