package ossevent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is Parse's JSON reader: one pass over the body that checks the
// whole text against the JSON grammar (as encoding/json's scanner does, with
// its nesting limit) and keeps only the six members the gateway uses. It
// replaced json.Unmarshal into Record, whose reflection, four maps and
// ObjectMeta cost about 45 allocations and most of Parse's time per request.
// It is hand-written rather than a library so that the package keeps to the
// standard library (the Function Compute function links it) and so that
// member-name matching, string unescaping and integer decoding follow
// encoding/json's rules exactly; FuzzParseMatchesReference holds it to the
// json.Unmarshal version it replaced.

// maxDepth is encoding/json's nesting limit: 10000 open objects and arrays
// are accepted, one more is "exceeded max depth".
const maxDepth = 10000

// The string members kept from a record, indexes into scratch.str.
const (
	fEventName = iota
	fEventTime
	fBucketName
	fKey
	fETag
	nFields
)

// span is a string value in the body, without its quotes.
type span struct {
	start, end int
	esc        bool // holds a backslash escape: unescape before use
}

// scratch is a record while the body is read: where its strings are, so that
// they can all be copied into one allocation at the end.
type scratch struct {
	str  [nFields]span
	size int64
	offs [nFields + 1]int // of the strings in build's one allocation
}

// reader reads one body; Parse makes one per call, on its stack.
type reader struct {
	b     []byte
	i     int
	depth int
	// The records: the first inline (a document usually has one, and a
	// slice of a local array would escape), then more.
	n     int
	first scratch
	more  []scratch

	firstTypeErr error    // the first used member of the wrong type
	key          [64]byte // unescaped member names
}

// syntax is the error for the byte at r.i (or the end of the text) in
// encoding/json's wording, with the byte offset.
func (r *reader) syntax(context string) error {
	if r.i >= len(r.b) {
		return fmt.Errorf("unexpected end of JSON input")
	}
	c, _ := utf8.DecodeRune(r.b[r.i:])
	return fmt.Errorf("invalid character %s %s (byte %d)", quoteRune(c), context, r.i)
}

func quoteRune(c rune) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	s := strconv.Quote(string(c))
	return "'" + s[1:len(s)-1] + "'"
}

// wrongType skips the value at r.i, which has the wrong JSON type for the
// used member structName.field (a path from the document, as encoding/json
// writes it) of Go type t, and keeps encoding/json's error for it if it is
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
	r.typeErr(&json.UnmarshalTypeError{Value: value, Type: t, Offset: int64(at), Struct: structName, Field: field})
	return nil
}

func (r *reader) typeErr(err *json.UnmarshalTypeError) {
	if r.firstTypeErr == nil {
		r.firstTypeErr = err
	}
}

func (r *reader) ws() {
	for r.i < len(r.b) {
		if c := r.b[r.i]; c > ' ' || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return
		}
		r.i++
	}
}

// at reports whether the next byte is c, after whitespace.
func (r *reader) at(c byte) bool {
	r.ws()
	return r.i < len(r.b) && r.b[r.i] == c
}

// enter consumes the '{' or '[' at r.i and reports whether the container is
// empty (its closing bracket consumed too).
func (r *reader) enter(closing byte) (empty bool, err error) {
	r.depth++
	if r.depth > maxDepth {
		return false, fmt.Errorf("exceeded max depth (byte %d)", r.i)
	}
	r.i++
	if r.at(closing) {
		r.i++
		r.depth--
		return true, nil
	}
	return false, nil
}

// next reads what follows a member or element: ',' (more) or the closing
// bracket (done).
func (r *reader) next(closing byte) (done bool, err error) {
	r.ws()
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case ',':
			r.i++
			return false, nil
		case closing:
			r.i++
			r.depth--
			return true, nil
		}
	}
	if closing == '}' {
		return false, r.syntax("after object key:value pair")
	}
	return false, r.syntax("after array element")
}

// member reads `"name":` and leaves r.i at the value. The name is unescaped;
// it is valid until the next call.
func (r *reader) member() ([]byte, error) {
	if !r.at('"') {
		return nil, r.syntax("looking for beginning of object key string")
	}
	s, err := r.str()
	if err != nil {
		return nil, err
	}
	name := r.b[s.start:s.end]
	if s.esc {
		name = appendUnescaped(r.key[:0], name)
	}
	if !r.at(':') {
		return nil, r.syntax("after object key")
	}
	r.i++
	r.ws()
	if r.i >= len(r.b) {
		return nil, r.syntax("")
	}
	return name, nil
}

// strSafe: bytes that may stand for themselves inside a JSON string.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads the string at r.i (its opening quote). The body is known to be
// valid UTF-8.
func (r *reader) str() (span, error) {
	r.i++
	s := span{start: r.i}
	b := r.b
	for i := r.i; i < len(b); {
		c := b[i]
		if strSafe[c] {
			i++
			continue
		}
		switch c {
		case '"':
			s.end = i
			r.i = i + 1
			return s, nil
		case '\\':
			s.esc = true
			if i+1 >= len(b) {
				r.i = len(b)
				return s, r.syntax("")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) {
						r.i = k
						return s, r.syntax("")
					}
					if _, ok := unhex(b[k]); !ok {
						r.i = k
						return s, r.syntax("in \\u hexadecimal character escape")
					}
				}
				i += 6
			default:
				r.i = i + 1
				return s, r.syntax("in string escape code")
			}
		default: // a control character
			r.i = i
			return s, r.syntax("in string literal")
		}
	}
	r.i = len(b)
	return s, r.syntax("")
}

func unhex(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10), true
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var v rune
	for _, c := range s[2:6] {
		d, ok := unhex(c)
		if !ok {
			return -1
		}
		v = v<<4 | d
	}
	return v
}

// appendUnescaped appends the value of a string literal's contents (already
// checked by str) as encoding/json decodes it: a surrogate escape that is
// not half of a pair becomes U+FFFD (Parse rejects those before).
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(dst, s[i:]...)
			}
			dst = append(dst, s[i:i+j]...)
			i += j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			rr := getu4(s[i:])
			if utf16.IsSurrogate(rr) {
				if dec := utf16.DecodeRune(rr, getu4(s[i+6:])); dec != unicode.ReplacementChar {
					dst = utf8.AppendRune(dst, dec)
					i += 12
					continue
				}
				rr = unicode.ReplacementChar
			}
			dst = utf8.AppendRune(dst, rr)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

// literal reads true, false or null at r.i.
func (r *reader) literal() error {
	var want string
	switch r.b[r.i] {
	case 't':
		want = "true"
	case 'f':
		want = "false"
	default:
		want = "null"
	}
	for k := 1; k < len(want); k++ {
		r.i++
		if r.i >= len(r.b) || r.b[r.i] != want[k] {
			return r.syntax(fmt.Sprintf("in literal %s (expecting %s)", want, quoteRune(rune(want[k]))))
		}
	}
	r.i++
	return nil
}

// number reads the number at r.i and reports whether it has neither a
// fraction nor an exponent.
func (r *reader) number() (integer bool, err error) {
	b := r.b
	i := r.i
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i >= len(b):
		r.i = i
		return false, r.syntax("")
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		r.i = i
		return false, r.syntax("in numeric literal")
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		if digits() == 0 {
			r.i = i
			return false, r.syntax("after decimal point in numeric literal")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			r.i = i
			return false, r.syntax("in exponent of numeric literal")
		}
	}
	r.i = i
	return integer, nil
}

// skip reads any value at r.i, checking its syntax only.
func (r *reader) skip() error {
	switch c := r.b[r.i]; {
	case c == '{':
		empty, err := r.enter('}')
		if err != nil || empty {
			return err
		}
		for {
			if _, err := r.member(); err != nil {
				return err
			}
			if err := r.skip(); err != nil {
				return err
			}
			if done, err := r.next('}'); err != nil || done {
				return err
			}
		}
	case c == '[':
		empty, err := r.enter(']')
		if err != nil || empty {
			return err
		}
		for {
			r.ws()
			if r.i >= len(r.b) {
				return r.syntax("")
			}
			if err := r.skip(); err != nil {
				return err
			}
			if done, err := r.next(']'); err != nil || done {
				return err
			}
		}
	case c == '"':
		_, err := r.str()
		return err
	case c == 't' || c == 'f' || c == 'n':
		return r.literal()
	case c == '-' || c >= '0' && c <= '9':
		_, err := r.number()
		return err
	}
	return r.syntax("looking for beginning of value")
}

// nameIs reports whether a member name selects the field named want, as
// encoding/json matches names: exactly or else by bytes.EqualFold (so
// "KEY" and "\u212Aey", with a Kelvin sign, are "key" too).
func nameIs(name []byte, want string) bool {
	// Fast answers for an ASCII first letter (every want starts with a
	// lower-case letter, and c|0x20 is one only for a letter).
	if len(name) > 0 && name[0] < utf8.RuneSelf {
		if name[0]|0x20 != want[0] {
			return false
		}
		if string(name) == want {
			return true
		}
	}
	if len(name) != len(want) {
		// Only a non-ASCII rune (K, ſ) can fold to an ASCII letter, and
		// it is longer.
		if len(name) < len(want) || ascii(name) {
			return false
		}
	}
	return bytes.EqualFold(name, []byte(want))
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
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
		n := r.add()
		switch r.b[r.i] {
		case '{':
			err = r.record(r.rec(n), n)
		case 'n': // encoding/json leaves the record zero
			err = r.literal()
		default:
			err = r.wrongType("Document", "events", reflect.TypeFor[Record]())
		}
		if err == nil {
			empty, err = r.next(']')
		}
	}
	return err == nil, err
}

// add appends a zero record and returns its index.
func (r *reader) add() int {
	if r.n > 0 {
		r.more = append(r.more, scratch{})
	}
	r.n++
	return r.n - 1
}

func (r *reader) rec(n int) *scratch {
	if n == 0 {
		return &r.first
	}
	return &r.more[n-1]
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
		r.typeErr(&json.UnmarshalTypeError{Value: "number " + string(lit), Type: reflect.TypeFor[int64](), Offset: int64(r.i), Struct: structName, Field: field})
		return nil
	}
	return r.wrongType(structName, field, reflect.TypeFor[int64]())
}

// build makes the document: one allocation for the records (with the
// Document, for the usual single record) and one for all their strings.
func (r *reader) build() *Document {
	total := 0
	for k := range r.n {
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
	if r.n == 1 {
		o := new(one)
		o.doc.Events = o.rec[:]
		doc = &o.doc
	} else {
		doc = &Document{Events: make([]Record, r.n)}
	}
	// Offsets first, strings after the last write: sb.String() is only
	// stable once nothing more is written.
	for k := range r.n {
		rs := r.rec(k)
		for f, s := range rs.str {
			rs.offs[f] = sb.Len()
			raw := r.b[s.start:s.end]
			if s.esc {
				raw = appendUnescaped(esc[:0], raw)
			}
			sb.Write(raw)
		}
		rs.offs[nFields] = sb.Len()
	}
	all := sb.String()
	for k := range r.n {
		rs := r.rec(k)
		o := &rs.offs
		f := func(i int) string { return all[o[i]:o[i+1]] }
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
