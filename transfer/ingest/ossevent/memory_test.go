package ossevent_test

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// tinyDocument is a document of about size bytes whose events are all
// element, then last, if any.
func tinyDocument(element string, size int, last ...string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	for b.Len() < size-len(element)-2 {
		if b.Len() > len(`{"events":[`) {
			b.WriteByte(',')
		}
		b.WriteString(element)
	}
	for _, l := range last {
		b.WriteString("," + l)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// allocated is the number of bytes f allocates. The test calling it must
// not run in parallel with others (the counter is the process's).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestParseHoldsASmallMultipleOfTheBody is the second finding of issue 14:
// a signed 1 MB body of {"events":[0,0,0,...]} raised the gateway's memory
// by about 110 MB, because Parse made a record for each of its 524,000
// elements before looking at its type, and built every record before
// validating any. Not parallel: it reads the process's allocation counter.
func TestParseHoldsASmallMultipleOfTheBody(t *testing.T) {
	const size = 1 << 20
	valid := `{"eventName":"ObjectCreated:PutObject","oss":{"bucket":{"name":"b"},"object":{"key":"k"}}}`
	for _, c := range []struct {
		name    string
		body    []byte
		max     int
		factor  float64 // bytes allocated per byte of body, at most
		wantErr string
	}{
		{"Zeros", tinyDocument("0", size), 0, 0.1, "cannot unmarshal number"},
		{"Nulls", tinyDocument("null", size), 0, 0.1, "events[0]: eventName is missing"},
		{"EmptyObjects", tinyDocument("{}", size), 0, 0.1, "events[0]: eventName is missing"},
		{"ValidRecordsThenAZero", tinyDocument(valid, size, "0"), 0, 2, "cannot unmarshal number"},
		{"ValidRecordsThenAnEmptyObject", tinyDocument(valid, size, "{}"), 0, 6, "eventName is missing"},
		{"ValidRecords", tinyDocument(valid, size), 0, 8, ""},
		{"ValidRecordsPastTheLimit", tinyDocument(valid, size), 100, 0.1, "too many records: more than 100"},
		{"ZerosPastTheLimit", tinyDocument("0", size), 100, 0.1, "too many records"},
	} {
		var err error
		n := allocated(func() { _, err = ossevent.ParseMax(c.body, c.max) })
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.wantErr)
		}
		per := float64(n) / float64(len(c.body))
		t.Logf("%s: %d bytes of body, %d allocated (%.2f per byte)", c.name, len(c.body), n, per)
		if per > c.factor {
			t.Errorf("%s: Parse allocated %d bytes for a body of %d (%.2f per byte), want at most %.2f per byte", c.name, n, len(c.body), per, c.factor)
		}
	}
}

func TestParseMaxRejectsTheRecordOneTooMany(t *testing.T) {
	t.Parallel()
	one := rec(`"key":"a"`)
	for _, c := range []struct {
		name string
		body string
		max  int
		ok   bool
	}{
		{"AtTheLimit", events(one, one, one), 3, true},
		{"OnePast", events(one, one, one, one), 3, false},
		{"OnePastEvenIfTheRestIsNotJSON", events(one, one) + "garbage", 1, false},
		{"NullsCount", events(one, "null"), 1, false},
		{"NoLimit", events(one, one, one, one), 0, true},
	} {
		_, err := ossevent.ParseMax([]byte(c.body), c.max)
		if c.ok != (err == nil) || !c.ok && !errors.Is(err, ossevent.ErrTooManyRecords) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
