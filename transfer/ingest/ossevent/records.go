package ossevent

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// This file is the records half of Parse's JSON reader (scan.go is the
// grammar): which members of the "events" elements are used, where their
// values are while the body is read, the checks that need no record built,
// and the Document built at the end.

// The string members kept from a record, indexes into scratch.str.
const (
	fEventName = iota
	fEventTime
	fBucketName
	fKey
	fETag
	nFields
)

// scratch is a record while the body is read: where its strings are, so that
// they can all be copied into one allocation at the end.
type scratch struct {
	str  [nFields]span // in the body; build reuses them for its offsets
	size int64
}

// Kept records after the first live in chunks of chunkSize (the first
// chunk grows as a slice does, the others are made whole). Growing one
// slice would copy it again and again: for a megabyte of tiny records, the
// copies cost five times what the records do.
const chunkSize = 64

// reader reads one body; Parse makes one per call, on its stack.
type reader struct {
	b     []byte
	i     int
	depth int
	max   int // records allowed; <= 0: any number
	// n counts the elements of "events". The records kept are the first
	// kept of them: every element up to the first one known to be an
	// invalid record (null, an object without a member every record
	// needs) or of the wrong type, after which nothing is kept, since the
	// document will be rejected. So what the reader holds grows only with
	// records that take tens of bytes of the body each. The first record
	// is inline (a document usually has one, and a slice of a local array
	// would escape), then more.
	n       int
	kept    int
	first   scratch
	more    [][]scratch // records 1.. in chunks
	discard scratch     // where an element not kept is read
	invalid error       // the first element found invalid, as Validate would say

	firstTypeErr error    // the first used member of the wrong type
	key          [64]byte // unescaped member names
}

// the first. Like json.Unmarshal, Parse reports a syntax error anywhere in
// the text before that first type error.
func (r *reader) wrongType(structName, field string, t reflect.Type) error {
	var value string
	switch r.b[r.i] {
	case '{':
		value = "object"
	case '[':
		value = "array"
	case '"':
		value = "string"
	case 't', 'f':
		value = "bool"
	default:
		value = "number"
	}
	at := r.i
	if err := r.skip(); err != nil {
		return err
	}
	// Only the first is kept: building an error for each of a million
	// wrong elements would cost a hundred bytes each.
	if r.firstTypeErr == nil {
		r.firstTypeErr = &json.UnmarshalTypeError{Value: value, Type: t, Offset: int64(at), Struct: structName, Field: field}
	}
	return nil
}

// once marks a used member as seen in its object and rejects a second one:
// encoding/json would take the last (merging objects), a reader that took
// the first would copy another key; neither is guessed at.
func once(seen *uint8, bit uint8, n int, field string, at int) error {
	if *seen&bit != 0 {
		where := `"events"`
		if n >= 0 {
			where = path(n, field)
		}
		return fmt.Errorf("%s is given twice (byte %d)", where, at)
	}
	*seen |= bit
	return nil
}

// document reads the top-level value. It reports whether an "events" array
// was present (encoding/json leaves Events nil for a missing or null one).
func (r *reader) document() (events bool, err error) {
	r.ws()
	if r.i >= len(r.b) {
		return false, r.syntax("")
	}
	switch r.b[r.i] {
	case 'n':
		if err := r.literal(); err != nil {
			return false, err
		}
	case '{':
		empty, err := r.enter('}')
		if err != nil {
			return false, err
		}
		var seen uint8
		for !empty {
			at := r.i
			name, err := r.member()
			if err != nil {
				return false, err
			}
			if nameIs(name, "events") {
				if err := once(&seen, 1, -1, "", at); err != nil {
					return false, err
				}
				events, err = r.events()
			} else {
				err = r.skip()
			}
			if err != nil {
				return false, err
			}
			if empty, err = r.next('}'); err != nil {
				return false, err
			}
		}
	default:
		if err := r.wrongType("", "", reflect.TypeFor[Document]()); err != nil {
			return false, err
		}
	}
	r.ws()
	if r.i < len(r.b) {
		return false, r.syntax("after top-level value")
	}
	return events, r.firstTypeErr
}

func (r *reader) events() (bool, error) {
	switch r.b[r.i] {
	case 'n':
		return false, r.literal()
	case '[':
	default:
		return false, r.wrongType("Document", "events", reflect.TypeFor[[]Record]())
	}
	empty, err := r.enter(']')
	for !empty && err == nil {
		r.ws()
		if r.i >= len(r.b) {
			return false, r.syntax("")
		}
		n := r.n
		if r.n++; r.max > 0 && r.n > r.max {
			return false, fmt.Errorf("%w: more than %d in one document (OSS sends one record per event)", ErrTooManyRecords, r.max)
		}
		switch r.b[r.i] {
		case '{':
			rec := r.slot(n)
			if err = r.record(rec, n); err == nil && rec != &r.discard {
				r.check(rec, n)
			}
		case 'n': // encoding/json leaves the record zero
			err = r.literal()
			r.reject(n, "eventName is missing")
		default:
			err = r.wrongType("Document", "events", reflect.TypeFor[Record]())
		}
		if err == nil {
			empty, err = r.next(']')
		}
	}
	return err == nil, err
}

// slot returns where element n, an object, is read: a new kept record
// while every element before it is one, else the discard.
func (r *reader) slot(n int) *scratch {
	if n != r.kept || r.invalid != nil || r.firstTypeErr != nil {
		r.discard = scratch{}
		return &r.discard
	}
	r.kept++
	if n == 0 {
		return &r.first
	}
	if (n-1)%chunkSize == 0 {
		size := chunkSize
		if n == 1 {
			size = 0
		}
		r.more = append(r.more, make([]scratch, 0, size))
	}
	c := &r.more[len(r.more)-1]
	*c = append(*c, scratch{})
	return &(*c)[len(*c)-1]
}

// rec is kept record n.
func (r *reader) rec(n int) *scratch {
	if n == 0 {
		return &r.first
	}
	return &r.more[(n-1)/chunkSize][(n-1)%chunkSize]
}

// check finds, without building record n, the errors of Validate that
// need no unescaping, in Validate's order: the members every record needs,
// then a negative size where the key cannot be too long (a key is valid
// UTF-8 once unescaped, whatever its escapes, since the body is). A record
// it finds invalid is the last kept.
func (r *reader) check(rec *scratch, n int) {
	empty := func(f int) bool { return rec.str[f].start == rec.str[f].end }
	key := rec.str[fKey]
	switch {
	case empty(fEventName):
		r.reject(n, "eventName is missing")
	case empty(fBucketName):
		r.reject(n, "oss.bucket.name is missing")
	case empty(fKey):
		r.reject(n, "oss.object.key is missing")
	case rec.size < 0 && key.end-key.start <= MaxKeyBytes:
		r.reject(n, "oss.object.size is negative")
	}
}

// reject notes that element n is an invalid record, if it is the first:
// Parse reports it unless a record kept before it fails Validate.
func (r *reader) reject(n int, why string) {
	if r.invalid != nil {
		return
	}
	r.invalid = fmt.Errorf("events[%d]: %s", n, why)
	if n < r.kept { // kept by slot: it is not a record to build
		r.kept = n
	}
}

// member is a used member of an object: its name, its path in "given
// twice" errors, and which value it is.
type member struct {
	name, path string
	value      usedValue
}

// usedValue names each used value; reader.value reads it. (A switch, not
// a func per member: an indirect call would make the reader escape to the
// heap, an allocation per document.)
type usedValue int

const (
	vEventName usedValue = iota
	vEventTime
	vOSS
	vBucket
	vBucketName
	vObject
	vETag
	vKey
	vSize
)

// The used members, level by level; every other member is skipped.
var (
	recordMembers = []member{{"eventName", "eventName", vEventName}, {"eventTime", "eventTime", vEventTime}, {"oss", "oss", vOSS}}
	ossMembers    = []member{{"bucket", "oss.bucket", vBucket}, {"object", "oss.object", vObject}}
	bucketMembers = []member{{"name", "oss.bucket.name", vBucketName}}
	objectMembers = []member{{"eTag", "oss.object.eTag", vETag}, {"key", "oss.object.key", vKey}, {"size", "oss.object.size", vSize}}
)

// value reads the used value v of record n, r at its first byte.
func (r *reader) value(v usedValue, rec *scratch, n int) error {
	switch v {
	case vEventName:
		return r.strValue(&rec.str[fEventName], "Record", "events.eventName")
	case vEventTime:
		return r.strValue(&rec.str[fEventTime], "Record", "events.eventTime")
	case vOSS:
		return r.nested(rec, n, "Record", "events.oss", reflect.TypeFor[OSS](), ossMembers)
	case vBucket:
		return r.nested(rec, n, "OSS", "events.oss.bucket", reflect.TypeFor[Bucket](), bucketMembers)
	case vBucketName:
		return r.strValue(&rec.str[fBucketName], "Bucket", "events.oss.bucket.name")
	case vObject:
		return r.nested(rec, n, "OSS", "events.oss.object", reflect.TypeFor[Object](), objectMembers)
	case vETag:
		return r.strValue(&rec.str[fETag], "Object", "events.oss.object.eTag")
	case vKey:
		return r.strValue(&rec.str[fKey], "Object", "events.oss.object.key")
	case vSize:
		return r.intValue(&rec.size, "Object", "events.oss.object.size")
	}
	panic("ossevent: unknown used value")
}

// record reads events[n], an object.
func (r *reader) record(rec *scratch, n int) error {
	return r.members(rec, n, recordMembers)
}

// members reads the object at r.i ('{'): each of used at most once (a
// second one, by any case of its name, is an error), every other member
// skipped.
func (r *reader) members(rec *scratch, n int, used []member) error {
	empty, err := r.enter('}')
	var seen uint8
	for !empty && err == nil {
		at := r.i
		var name []byte
		if name, err = r.member(); err != nil {
			return err
		}
		i := 0
		for i < len(used) && !nameIs(name, used[i].name) {
			i++
		}
		if i == len(used) {
			err = r.skip()
		} else if err = once(&seen, 1<<i, n, used[i].path, at); err == nil {
			err = r.value(used[i].value, rec, n)
		}
		if err == nil {
			empty, err = r.next('}')
		}
	}
	return err
}

func path(n int, field string) string {
	return "events[" + strconv.Itoa(n) + "]." + field
}

// nested reads a used member that must be an object, with its used
// members: null is left alone (as encoding/json does), a value of another
// type is a type error (and skipped).
func (r *reader) nested(rec *scratch, n int, structName, field string, t reflect.Type, used []member) error {
	switch r.b[r.i] {
	case '{':
		return r.members(rec, n, used)
	case 'n':
		return r.literal()
	}
	return r.wrongType(structName, field, t)
}

// strValue reads a used string member; null leaves it unset.
func (r *reader) strValue(dst *span, structName, field string) error {
	switch r.b[r.i] {
	case '"':
		s, err := r.str()
		*dst = s
		return err
	case 'n':
		return r.literal()
	}
	return r.wrongType(structName, field, reflect.TypeFor[string]())
}

// intValue reads a used int64 member as encoding/json does: an integer
// literal (no fraction, no exponent: 1.0 and 1e3 are refused) in int64's
// range; null leaves it unset.
func (r *reader) intValue(dst *int64, structName, field string) error {
	switch c := r.b[r.i]; {
	case c == 'n':
		return r.literal()
	case c == '-' || c >= '0' && c <= '9':
		start := r.i
		integer, err := r.number()
		if err != nil {
			return err
		}
		lit := r.b[start:r.i]
		if integer {
			if v, err := strconv.ParseInt(string(lit), 10, 64); err == nil {
				*dst = v
				return nil
			}
		}
		if r.firstTypeErr == nil {
			r.firstTypeErr = &json.UnmarshalTypeError{Value: "number " + string(lit), Type: reflect.TypeFor[int64](), Offset: int64(r.i), Struct: structName, Field: field}
		}
		return nil
	}
	return r.wrongType(structName, field, reflect.TypeFor[int64]())
}

// build makes the document: one allocation for the records (with the
// Document, for the usual single record) and one for all their strings.
func (r *reader) build() *Document {
	total := 0
	for k := range r.kept {
		for _, s := range r.rec(k).str {
			total += s.end - s.start // unescaping only shortens
		}
	}
	var sb strings.Builder
	sb.Grow(total)
	var esc [128]byte
	type one struct {
		doc Document
		rec [1]Record
	}
	var doc *Document
	if r.kept == 1 {
		o := new(one)
		o.doc.Events = o.rec[:]
		doc = &o.doc
	} else {
		doc = &Document{Events: make([]Record, r.kept)}
	}
	// Offsets first (each span becomes its string's place in sb), strings
	// after the last write: sb.String() is only stable once nothing more
	// is written.
	for k := range r.kept {
		rs := r.rec(k)
		for f, s := range rs.str {
			raw := r.b[s.start:s.end]
			if s.esc {
				raw = appendUnescaped(esc[:0], raw)
			}
			rs.str[f] = span{start: sb.Len(), end: sb.Len() + len(raw)}
			sb.Write(raw)
		}
	}
	all := sb.String()
	for k := range r.kept {
		rs := r.rec(k)
		f := func(i int) string { return all[rs.str[i].start:rs.str[i].end] }
		rec := &doc.Events[k]
		rec.EventName = f(fEventName)
		rec.EventTime = f(fEventTime)
		rec.OSS.Bucket.Name = f(fBucketName)
		rec.OSS.Object.Key = f(fKey)
		rec.OSS.Object.ETag = f(fETag)
		rec.OSS.Object.Size = rs.size
	}
	return doc
}
