package sqsemu

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Queue attributes.

type queueAttrs struct {
	visibility time.Duration // VisibilityTimeout
	retention  time.Duration // MessageRetentionPeriod
	wait       time.Duration // ReceiveMessageWaitTimeSeconds
	delay      time.Duration // DelaySeconds
	maxSize    int           // MaximumMessageSize
	redrive    *redrivePolicy
	// stored are attributes kept and returned as given but without effect
	// (Policy, RedriveAllowPolicy, KMS and SSE settings).
	stored map[string]string
}

type redrivePolicy struct {
	targetARN       string
	maxReceiveCount int
}

const (
	defaultVisibility = 30 * time.Second
	defaultRetention  = 4 * 24 * time.Hour
	defaultMaxSize    = 262144
	maxMessageSize    = 1048576
	maxVisibility     = 12 * time.Hour
)

func defaultQueueAttrs() queueAttrs {
	return queueAttrs{visibility: defaultVisibility, retention: defaultRetention, maxSize: defaultMaxSize, stored: map[string]string{}}
}

// storedAttrs are accepted, kept and returned, but change nothing.
var storedAttrs = map[string]bool{
	"Policy": true, "RedriveAllowPolicy": true, "KmsMasterKeyId": true,
	"KmsDataKeyReusePeriodSeconds": true, "SqsManagedSseEnabled": true,
}

// readOnlyAttrs can be read but not set.
var readOnlyAttrs = map[string]bool{
	"ApproximateNumberOfMessages": true, "ApproximateNumberOfMessagesNotVisible": true,
	"ApproximateNumberOfMessagesDelayed": true, "CreatedTimestamp": true,
	"LastModifiedTimestamp": true, "QueueArn": true,
}

// applyAttrs returns base with the attributes in set applied, or the error
// SQS answers for the first invalid one. dlqExists tells whether a
// dead-letter target ARN names an existing queue.
func applyAttrs(base queueAttrs, set map[string]string, dlqExists func(arn string) bool) (queueAttrs, *apiError) {
	out := base
	out.stored = make(map[string]string, len(base.stored))
	for k, v := range base.stored {
		out.stored[k] = v
	}
	names := make([]string, 0, len(set))
	for k := range set {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		v := set[name]
		var e *apiError
		switch name {
		case "VisibilityTimeout":
			out.visibility, e = secondsAttr(name, v, 0, 43200)
		case "MessageRetentionPeriod":
			out.retention, e = secondsAttr(name, v, 60, 1209600)
		case "ReceiveMessageWaitTimeSeconds":
			out.wait, e = secondsAttr(name, v, 0, 20)
		case "DelaySeconds":
			out.delay, e = secondsAttr(name, v, 0, 900)
		case "MaximumMessageSize":
			var d time.Duration
			d, e = secondsAttr(name, v, 1024, maxMessageSize)
			out.maxSize = int(d / time.Second)
		case "RedrivePolicy":
			out.redrive, e = parseRedrivePolicy(v, dlqExists)
		case "FifoQueue":
			if v != "false" {
				e = errInvalidAttributeValue(name, "FIFO queues are not implemented by this emulator.")
			}
		default:
			// FIFO attributes (ContentBasedDeduplication, ...) are
			// unknown to a standard queue.
			if storedAttrs[name] {
				out.stored[name] = v
			} else {
				e = modeled("InvalidAttributeName", "Unknown Attribute %s.", name)
			}
		}
		if e != nil {
			return base, e
		}
	}
	return out, nil
}

func secondsAttr(name, v string, lo, hi int) (time.Duration, *apiError) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, errInvalidAttributeValue(name, "Must be an integer from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi)+".")
	}
	return time.Duration(n) * time.Second, nil
}

// parseRedrivePolicy reads {"deadLetterTargetArn": ..., "maxReceiveCount":
// n} (n a number or a string, as SQS accepts both). An empty value removes
// the policy.
func parseRedrivePolicy(v string, dlqExists func(arn string) bool) (*redrivePolicy, *apiError) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var raw struct {
		Target string          `json:"deadLetterTargetArn"`
		Max    json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, errInvalidAttributeValue("RedrivePolicy", "Redrive policy is not a valid JSON map.")
	}
	if raw.Target == "" {
		return nil, errInvalidAttributeValue("RedrivePolicy", "Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
	}
	if len(raw.Max) == 0 {
		return nil, errInvalidAttributeValue("RedrivePolicy", "Redrive policy does not contain mandatory attribute: maxReceiveCount.")
	}
	maxStr := strings.Trim(string(raw.Max), `"`)
	n, err := strconv.Atoi(maxStr)
	if err != nil || n < 1 || n > 1000 {
		return nil, errInvalidAttributeValue("RedrivePolicy", "Invalid value for maxReceiveCount: "+maxStr+", valid values are from 1 to 1000 both inclusive.")
	}
	if !strings.HasPrefix(raw.Target, "arn:") || arnQueueName(raw.Target) == "" {
		return nil, errInvalidAttributeValue("RedrivePolicy", "Invalid value for deadLetterTargetArn.")
	}
	if dlqExists != nil && !dlqExists(raw.Target) {
		return nil, errInvalidAttributeValue("RedrivePolicy", "Dead letter target does not exist.")
	}
	return &redrivePolicy{targetARN: raw.Target, maxReceiveCount: n}, nil
}

func (r *redrivePolicy) String() string {
	b, _ := json.Marshal(struct {
		Target string `json:"deadLetterTargetArn"`
		Max    int    `json:"maxReceiveCount"`
	}{r.targetARN, r.maxReceiveCount})
	return string(b)
}

// arnQueueName is the queue name at the end of an SQS ARN
// (arn:aws:sqs:<region>:<account>:<name>); the emulator resolves ARNs by
// name only.
func arnQueueName(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[2] != "sqs" {
		return ""
	}
	return parts[5]
}

// render returns the attributes CreateQueue and SetQueueAttributes
// set, as GetQueueAttributes returns them.
func (a queueAttrs) render() map[string]string {
	sec := func(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
	out := map[string]string{
		"VisibilityTimeout":             sec(a.visibility),
		"MessageRetentionPeriod":        sec(a.retention),
		"ReceiveMessageWaitTimeSeconds": sec(a.wait),
		"DelaySeconds":                  sec(a.delay),
		"MaximumMessageSize":            strconv.Itoa(a.maxSize),
	}
	if a.redrive != nil {
		out["RedrivePolicy"] = a.redrive.String()
	}
	for k, v := range a.stored {
		out[k] = v
	}
	return out
}

// Message attributes.

// msgAttr is a MessageAttributeValue on the wire.
type msgAttr struct {
	DataType         string   `json:"DataType"`
	StringValue      *string  `json:"StringValue,omitempty"`
	BinaryValue      []byte   `json:"BinaryValue,omitempty"`
	StringListValues []string `json:"StringListValues,omitempty"`
	BinaryListValues [][]byte `json:"BinaryListValues,omitempty"`
}

var (
	attrNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,256}$`)
	numberRE   = regexp.MustCompile(`^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$`)
)

// checkMessageAttrs validates user message attributes and returns their
// size as SQS counts it (name, type and value bytes).
func checkMessageAttrs(attrs map[string]msgAttr) (int, *apiError) {
	if len(attrs) > 10 {
		return 0, errInvalidParameterValue("Number of message attributes [%d] exceeds the allowed maximum [10].", len(attrs))
	}
	size := 0
	for name, a := range attrs {
		if !attrNameRE.MatchString(name) || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") ||
			strings.HasPrefix(strings.ToLower(name), "aws.") || strings.HasPrefix(strings.ToLower(name), "amazon.") {
			return 0, errInvalidParameterValue("Message (user) attribute name '%s' is invalid.", name)
		}
		n, e := checkAttrValue("Message (user) attribute", name, a)
		if e != nil {
			return 0, e
		}
		size += len(name) + len(a.DataType) + n
	}
	return size, nil
}

func checkAttrValue(kind, name string, a msgAttr) (int, *apiError) {
	if len(a.StringListValues) > 0 || len(a.BinaryListValues) > 0 {
		return 0, errInvalidParameterValue("%s '%s': list values are not implemented (reserved by SQS).", kind, name)
	}
	base, custom, _ := strings.Cut(a.DataType, ".")
	if len(a.DataType) > 256 || (strings.Contains(a.DataType, ".") && custom == "") {
		return 0, errInvalidParameterValue("%s '%s' has an invalid data type '%s'.", kind, name, a.DataType)
	}
	switch base {
	case "String", "Number":
		if a.StringValue == nil || *a.StringValue == "" {
			return 0, errInvalidParameterValue("%s '%s' must contain a non-empty value of type '%s'.", kind, name, base)
		}
		if base == "Number" && !numberRE.MatchString(*a.StringValue) {
			return 0, errInvalidParameterValue("%s '%s' with type 'Number' must use a valid number, got '%s'.", kind, name, *a.StringValue)
		}
		if !validMessageChars(*a.StringValue) {
			return 0, modeled("InvalidMessageContents", "%s '%s' contains characters outside the allowed set.", kind, name)
		}
		return len(*a.StringValue), nil
	case "Binary":
		if len(a.BinaryValue) == 0 {
			return 0, errInvalidParameterValue("%s '%s' must contain a non-empty value of type 'Binary'.", kind, name)
		}
		return len(a.BinaryValue), nil
	}
	return 0, errInvalidParameterValue("%s '%s' has an invalid data type '%s': it must start with String, Number or Binary.", kind, name, a.DataType)
}

// checkSystemAttrs validates message system attributes: SQS knows only
// AWSTraceHeader.
func checkSystemAttrs(attrs map[string]msgAttr) *apiError {
	for name, a := range attrs {
		if name != "AWSTraceHeader" {
			return errInvalidParameterValue("Message system attribute name '%s' is invalid.", name)
		}
		if a.DataType != "String" {
			return errInvalidParameterValue("Message system attribute '%s' must be of type String.", name)
		}
		if _, e := checkAttrValue("Message system attribute", name, a); e != nil {
			return e
		}
	}
	return nil
}

// attrsMD5 is SQS's MD5 of message attributes: for each attribute in name
// order, the name, the data type and the value, each as a 4-byte
// big-endian length and the bytes, with a transport byte (1 string, 2
// binary) before the value.
func attrsMD5(attrs map[string]msgAttr) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	h := md5.New()
	put := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, name := range names {
		a := attrs[name]
		put([]byte(name))
		put([]byte(a.DataType))
		if strings.HasPrefix(a.DataType, "Binary") {
			h.Write([]byte{2})
			put(a.BinaryValue)
		} else {
			h.Write([]byte{1})
			var v string
			if a.StringValue != nil {
				v = *a.StringValue
			}
			put([]byte(v))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// selectAttrs returns the attributes whose names match one of the
// requested patterns: "All", ".*", "prefix.*" or an exact name.
func selectAttrs(attrs map[string]msgAttr, patterns []string) map[string]msgAttr {
	if len(attrs) == 0 || len(patterns) == 0 {
		return nil
	}
	out := map[string]msgAttr{}
	for name, a := range attrs {
		for _, p := range patterns {
			if p == "All" || p == ".*" || p == name ||
				(strings.HasSuffix(p, ".*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*"))) {
				out[name] = a
				break
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// validMessageChars reports whether s holds only the characters SQS
// allows: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.
func validMessageChars(s string) bool {
	for _, r := range s {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}
