package transfer

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// The job's message on the hot path: what Queue.Publish sends for each
// job, made without encoding/json's reflection (json.Marshal of a Job, its
// two time.Time.MarshalJSON and their copies were 3-4% of the gateway's CPU
// at full rate, and 4 allocations per event).

// encodeJob returns the JSON of j, byte for byte what json.Marshal(j)
// writes (TestEncodeJobIsJSONMarshal and FuzzEncodeJob hold it to that):
// the wire format of the job stream, which every replica reads.
func encodeJob(j *Job) ([]byte, error) {
	b, ok := appendJob(make([]byte, 0, jobSizeHint(j)), j)
	if !ok {
		// A time encoding/json refuses (a year outside 0-9999, an
		// offset of 24 hours or more): its error, as before.
		return json.Marshal(j)
	}
	return b, nil
}

// jobSizeHint is enough room for most jobs' JSON in one allocation.
func jobSizeHint(j *Job) int {
	return 200 + len(j.Task) + len(j.Kind) + len(j.Origin) + len(j.Bucket) + len(j.Key) + len(j.ETag) + len(j.Event) +
		len(j.UploadID) + len(j.Shard) + len(j.Nonce) + len(j.Parent)
}

// appendJob appends the JSON of j as encoding/json writes it: the members
// in the order of Job's fields (the embedded payloads' in place), the
// omitempty and omitzero ones left out when empty or zero. It returns
// false for a time encoding/json would refuse.
func appendJob(b []byte, j *Job) ([]byte, bool) {
	ok := true
	b = append(b, `{"task":`...)
	b = appendJSONString(b, j.Task)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, j.Kind)
	if j.Origin != "" {
		b = append(b, `,"origin":`...)
		b = appendJSONString(b, j.Origin)
	}
	if !j.EventTime.IsZero() {
		b = append(b, `,"event_time":`...)
		b, ok = appendJSONTime(b, j.EventTime, ok)
	}
	if !j.QueuedAt.IsZero() {
		b = append(b, `,"queued_at":`...)
		b, ok = appendJSONTime(b, j.QueuedAt, ok)
	}
	// ObjectArgs
	b = append(b, `,"bucket":`...)
	b = appendJSONString(b, j.Bucket)
	b = append(b, `,"key":`...)
	b = appendJSONString(b, j.Key)
	if j.ETag != "" {
		b = append(b, `,"etag":`...)
		b = appendJSONString(b, j.ETag)
	}
	if j.Size != 0 {
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, j.Size, 10)
	}
	if j.Event != "" {
		b = append(b, `,"event":`...)
		b = appendJSONString(b, j.Event)
	}
	if j.Force {
		b = append(b, `,"force":true`...)
	}
	// PartArgs
	if j.UploadID != "" {
		b = append(b, `,"upload_id":`...)
		b = appendJSONString(b, j.UploadID)
	}
	if j.Part != 0 {
		b = append(b, `,"part":`...)
		b = strconv.AppendInt(b, int64(j.Part), 10)
	}
	if j.Redo != 0 {
		b = append(b, `,"redo":`...)
		b = strconv.AppendInt(b, int64(j.Redo), 10)
	}
	// ShardArgs
	if j.Shard != "" {
		b = append(b, `,"shard":`...)
		b = appendJSONString(b, j.Shard)
	}
	if !j.NotBefore.IsZero() {
		b = append(b, `,"not_before":`...)
		b, ok = appendJSONTime(b, j.NotBefore, ok)
	}
	if j.Waits != 0 {
		b = append(b, `,"waits":`...)
		b = strconv.AppendInt(b, int64(j.Waits), 10)
	}
	if j.Attempts != 0 {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(j.Attempts), 10)
	}
	if j.Nonce != "" {
		b = append(b, `,"nonce":`...)
		b = appendJSONString(b, j.Nonce)
	}
	if j.Parent != "" {
		b = append(b, `,"parent":`...)
		b = appendJSONString(b, j.Parent)
	}
	return append(b, '}'), ok
}

// appendJSONTime appends t as time.Time.MarshalJSON writes it (RFC 3339
// with nanoseconds, quoted); ok becomes false (and stays so) for a time
// MarshalJSON refuses, checked as it checks.
func appendJSONTime(b []byte, t time.Time, ok bool) ([]byte, bool) {
	b = append(b, '"')
	n0 := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	switch {
	case len(b) < n0+len("9999-") || b[n0+len("9999")] != '-': // the year is not 4 digits
		ok = false
	case b[len(b)-1] != 'Z':
		c := b[len(b)-len("Z07:00")]
		hh := 10*(b[len(b)-len("07:00")]-'0') + (b[len(b)-len("7:00")] - '0')
		if ('0' <= c && c <= '9') || hh >= 24 {
			ok = false
		}
	}
	return append(b, '"'), ok
}

// jsonSafe says which ASCII bytes encoding/json writes as they are: all
// but the control characters, " and \, and (HTML escaping) < > &.
var jsonSafe = func() (safe [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		safe[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return safe
}()

// appendJSONString appends s quoted as encoding/json quotes a string (with
// its default HTML escaping): \" \\ \b \f \n \r \t, \u00XX for the other
// control characters and for < > &, \u2028 and \u2029, and \ufffd for each
// byte that is not UTF-8.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
