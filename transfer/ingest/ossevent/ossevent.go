// Package ossevent owns the OSS event document as an OSS trigger delivers it
// ({"events":[...]}), its validation, and the table that says what each event
// name means to oss2s3.
//
// It depends on the standard library only: the Function Compute function and
// the OSS emulator use it as well as the gateway.
package ossevent

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxKeyBytes is the longest object key OSS allows.
const MaxKeyBytes = 1023

// Document is the body an OSS trigger posts: one or more records.
type Document struct {
	Events []Record `json:"events"`
}

// Record is one OSS object event.
type Record struct {
	EventName         string            `json:"eventName"`
	EventSource       string            `json:"eventSource"`
	EventTime         string            `json:"eventTime"`
	EventVersion      string            `json:"eventVersion"`
	OSS               OSS               `json:"oss"`
	Region            string            `json:"region"`
	RequestParameters map[string]string `json:"requestParameters,omitempty"`
	ResponseElements  map[string]string `json:"responseElements,omitempty"`
	UserIdentity      map[string]string `json:"userIdentity,omitempty"`
}

// OSS is the "oss" member of a record.
type OSS struct {
	Bucket           Bucket `json:"bucket"`
	Object           Object `json:"object"`
	OSSSchemaVersion string `json:"ossSchemaVersion"`
	RuleID           string `json:"ruleId"`
}

// Bucket names the bucket the event happened in.
type Bucket struct {
	ARN           string `json:"arn"`
	Name          string `json:"name"`
	OwnerIdentity string `json:"ownerIdentity"`
	VirtualBucket string `json:"virtualBucket"`
}

// Object describes the object the event is about.
type Object struct {
	DeltaSize  int64       `json:"deltaSize"`
	ETag       string      `json:"eTag"`
	Key        string      `json:"key"`
	ObjectMeta *ObjectMeta `json:"objectMeta,omitempty"`
	Size       int64       `json:"size"`
}

// ObjectMeta is the metadata OSS includes with some events.
type ObjectMeta struct {
	MimeType string            `json:"mimeType"`
	UserMeta map[string]string `json:"userMeta"`
}

// Kind is what an event means to oss2s3.
type Kind string

const (
	// Converge: make the destination match the source's current state of the key.
	KindConverge Kind = "converge"
	// Remove: the key was deleted at the source; converge it (and delete the
	// copy where the task propagates deletes).
	KindRemove Kind = "remove"
	// Ignore: not a change of an object's state (a part of an upload in flight).
	KindIgnore Kind = "ignore"
)

// kinds is the one table of event semantics. Names not listed are ignored
// unless their category prefix is listed in prefixKinds.
var kinds = map[string]Kind{
	"ObjectCreated:PutObject":               KindConverge,
	"ObjectCreated:PostObject":              KindConverge,
	"ObjectCreated:CopyObject":              KindConverge,
	"ObjectCreated:PutSymlink":              KindConverge,
	"ObjectCreated:AppendObject":            KindConverge,
	"ObjectCreated:CompleteMultipartUpload": KindConverge,
	"ObjectCreated:InitiateMultipartUpload": KindIgnore,
	"ObjectCreated:UploadPart":              KindIgnore,
	"ObjectCreated:UploadPartCopy":          KindIgnore,
	"ObjectModified:UpdateObjectMeta":       KindConverge,
	"ObjectRestore:FinishRestore":           KindConverge,
	"ObjectRemoved:DeleteObject":            KindRemove,
	"ObjectRemoved:DeleteObjects":           KindRemove,
	"ObjectRemoved:AbortMultipartUpload":    KindIgnore,
}

// prefixKinds covers event names OSS may add to a category later: a new way
// to create an object still means "converge".
var prefixKinds = map[string]Kind{
	"ObjectCreated:":     KindConverge,
	"ObjectReplication:": KindConverge,
}

// KindOf says what the event name means. A leading "oss:" (as in trigger
// configurations) is accepted.
func KindOf(eventName string) Kind {
	name := strings.TrimPrefix(eventName, "oss:")
	if k, ok := kinds[name]; ok {
		return k
	}
	for p, k := range prefixKinds {
		if strings.HasPrefix(name, p) {
			return k
		}
	}
	return KindIgnore
}

// ErrTooManyRecords is returned (wrapped) for a document with more records
// than the caller allows. OSS sends one record per event; a sender that
// batches sends a few.
var ErrTooManyRecords = errors.New("too many records")

// Parse decodes and validates a document. It rejects the whole document if
// any record is malformed, naming the record and the reason, so that nothing
// from a half-valid document is queued.
//
// Only the members the gateway uses are decoded: eventName, eventTime,
// oss.bucket.name, oss.object.key, oss.object.eTag and oss.object.size. The
// other fields of the returned records are empty. The rest of the body must
// still be valid JSON, but the types of unused members are not checked
// ("deltaSize":"x" is accepted). The used members follow encoding/json's
// rules: names match exactly or case-insensitively (bytes.EqualFold, after
// unescaping), strings are fully unescaped, size must be an integer literal
// in int64's range, null leaves a member unset, and a value of another JSON
// type is rejected. Unlike encoding/json, which takes the last of two
// members that match the same field, Parse rejects a used member given
// twice in one object (also as "key" and "KEY"): it does not guess which
// object the sender meant.
//
// What Parse holds besides the body is a small multiple of it whatever the
// body: a record is built only for an object that has the members every
// record needs (an element that is not, such as the 0s of
// {"events":[0,0,...]}, costs nothing), and none is built for a document
// that is rejected.
func Parse(body []byte) (*Document, error) {
	return ParseMax(body, 0)
}

// ParseMax is Parse that rejects a document of more than maxRecords
// records (an error wrapping ErrTooManyRecords) as soon as it reads the
// one too many, before building any. maxRecords <= 0: no limit.
func ParseMax(body []byte, maxRecords int) (*Document, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("empty body")
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD, and a key
	// changed that way names another object.
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("body is not valid UTF-8")
	}
	// A lone UTF-16 surrogate escape (\ud800) would decode to U+FFFD: a
	// different key than the one that changed.
	if i := LoneSurrogate(body); i >= 0 {
		return nil, fmt.Errorf("not an OSS event document: lone UTF-16 surrogate escape at byte %d", i)
	}
	r := reader{b: body, max: maxRecords}
	// The whole text is read before anything is validated, and trailing
	// data after the top-level value is an error, as with json.Unmarshal.
	events, err := r.document()
	if err != nil {
		if errors.Is(err, ErrTooManyRecords) {
			return nil, err
		}
		return nil, fmt.Errorf("not an OSS event document: %w", err)
	}
	if !events {
		return nil, fmt.Errorf(`missing "events" array`)
	}
	if r.n == 0 {
		return nil, fmt.Errorf(`"events" is empty`)
	}
	// The records kept are those before the first one the reader found
	// invalid: one of them may still fail Validate (a key too long, a bad
	// time), and is then the first invalid record.
	doc := r.build()
	for i := range doc.Events {
		if err := doc.Events[i].Validate(); err != nil {
			return nil, fmt.Errorf("events[%d]: %w", i, err)
		}
	}
	if r.invalid != nil {
		return nil, r.invalid
	}
	return doc, nil
}

// LoneSurrogate returns the offset in a JSON text of a \uD800-\uDFFF
// escape that is not part of a high-low pair, or -1. encoding/json turns
// such an escape into U+FFFD, which in a key names another object; every
// parser of events checks for it first.
func LoneSurrogate(b []byte) int {
	for i := 0; i+6 <= len(b); i++ {
		if b[i] != '\\' {
			j := bytes.IndexByte(b[i:], '\\')
			if j < 0 {
				return -1
			}
			if i += j; i+6 > len(b) {
				return -1
			}
		}
		if b[i+1] != 'u' {
			i++ // an escaped character, e.g. \\ or \"
			continue
		}
		v, ok := hex4(b[i+2 : i+6])
		if !ok {
			continue
		}
		switch {
		case v >= 0xD800 && v < 0xDC00: // high: a low must follow
			if i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				if w, ok := hex4(b[i+8 : i+12]); ok && w >= 0xDC00 && w < 0xE000 {
					i += 11
					continue
				}
			}
			return i
		case v >= 0xDC00 && v < 0xE000:
			return i
		}
		i += 5
	}
	return -1
}

func hex4(b []byte) (uint16, bool) {
	var v uint16
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint16(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint16(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | uint16(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// Validate checks the fields oss2s3 relies on.
func (r *Record) Validate() error {
	switch {
	case r.EventName == "":
		return fmt.Errorf("eventName is missing")
	case r.OSS.Bucket.Name == "":
		return fmt.Errorf("oss.bucket.name is missing")
	case r.OSS.Object.Key == "":
		return fmt.Errorf("oss.object.key is missing")
	case len(r.OSS.Object.Key) > MaxKeyBytes:
		return fmt.Errorf("oss.object.key is %d bytes, more than OSS allows (%d)", len(r.OSS.Object.Key), MaxKeyBytes)
	case !utf8.ValidString(r.OSS.Object.Key):
		return fmt.Errorf("oss.object.key is not valid UTF-8")
	case r.OSS.Object.Size < 0:
		return fmt.Errorf("oss.object.size is negative")
	}
	if r.EventTime != "" {
		if _, err := time.Parse(time.RFC3339Nano, r.EventTime); err != nil {
			return fmt.Errorf("eventTime %q is not an RFC 3339 time", r.EventTime)
		}
	}
	return nil
}

// Time returns the event time, or the zero time if the record has none.
func (r *Record) Time() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, r.EventTime)
	return t
}

// ETag returns the object's ETag without quotes, upper-cased as OSS writes it.
func (r *Record) ETag() string {
	return strings.ToUpper(strings.Trim(r.OSS.Object.ETag, `"`))
}

// NewRecord builds a record as an OSS trigger would for an event on
// bucket/key; the emulator and tests use it.
func NewRecord(eventName, region, bucket, key, etag string, size int64, mimeType string, t time.Time) Record {
	return Record{
		EventName:    eventName,
		EventSource:  "acs:oss",
		EventTime:    t.UTC().Format("2006-01-02T15:04:05.000Z"),
		EventVersion: "1.0",
		OSS: OSS{
			Bucket:           Bucket{ARN: "acs:oss:" + region + ":1234:" + bucket, Name: bucket, OwnerIdentity: "1234"},
			Object:           Object{DeltaSize: size, ETag: strings.ToUpper(strings.Trim(etag, `"`)), Key: key, Size: size, ObjectMeta: &ObjectMeta{MimeType: mimeType, UserMeta: map[string]string{}}},
			OSSSchemaVersion: "1.0",
			RuleID:           "oss2s3-emulator",
		},
		Region:            region,
		RequestParameters: map[string]string{"sourceIPAddress": "127.0.0.1"},
		ResponseElements:  map[string]string{"requestId": fmt.Sprintf("%X", t.UnixNano())},
		UserIdentity:      map[string]string{"principalId": "1234"},
	}
}
