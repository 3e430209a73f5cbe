package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// docTemplate writes the single-record document that json.Marshal makes of
// ossevent.NewRecord(ingestEvent, ...) for a key, ETag and time, by
// appending bytes: the load generator's documents are the real ones
// (TestDocTemplateIsTheMarshalledRecord compares them), at a fraction of
// the CPU reflection and maps cost on the machine being measured.
type docTemplate struct {
	lits   [][]byte   // lits[i] comes before fields[i]; the last one ends the document
	fields []docField // what goes between the literals
}

type docField int

const (
	fieldKey docField = iota
	fieldETag
	fieldTime  // eventTime, as NewRecord formats it
	fieldReqID // responseElements.requestId: the time's nanoseconds in hex
)

var ingestDoc = newDocTemplate()

func newDocTemplate() *docTemplate {
	// Values that occur nowhere else in the document mark where each
	// field goes; keys and ETags of the load need no JSON escaping.
	t0 := time.Date(2001, 2, 3, 4, 5, 6, 789_000_000, time.UTC)
	marks := map[string]docField{
		"@@key@@":                        fieldKey,
		"@@ETAG@@":                       fieldETag,
		t0.Format(ossEventTimeLayout):    fieldTime,
		fmt.Sprintf("%X", t0.UnixNano()): fieldReqID,
	}
	rec := ossevent.NewRecord(ingestEvent, ossRegion, ingestBucket, "@@key@@", "@@ETAG@@", ingestSize, "text/plain", t0)
	doc, err := json.Marshal(ossevent.Document{Events: []ossevent.Record{rec}})
	if err != nil {
		panic(err)
	}
	t := &docTemplate{}
	for rest := doc; ; {
		at, mark := -1, ""
		for m := range marks {
			if i := bytes.Index(rest, []byte(m)); i >= 0 && (at < 0 || i < at) {
				at, mark = i, m
			}
		}
		if at < 0 {
			t.lits = append(t.lits, rest)
			break
		}
		t.lits = append(t.lits, rest[:at])
		t.fields = append(t.fields, marks[mark])
		rest = rest[at+len(mark):]
	}
	if len(t.fields) != len(marks) {
		panic(fmt.Sprintf("ingest document template: %d fields found, want %d: %s", len(t.fields), len(marks), doc))
	}
	return t
}

// ossEventTimeLayout is how ossevent.NewRecord writes eventTime.
const ossEventTimeLayout = "2006-01-02T15:04:05.000Z"

// append appends the document for key, etag (upper-case hex) and t to b.
func (d *docTemplate) append(b, key, etag []byte, t time.Time) []byte {
	for i, f := range d.fields {
		b = append(b, d.lits[i]...)
		switch f {
		case fieldKey:
			b = append(b, key...)
		case fieldETag:
			b = append(b, etag...)
		case fieldTime:
			b = t.UTC().AppendFormat(b, ossEventTimeLayout)
		case fieldReqID:
			b = appendPadded(b, t.UnixNano(), 16, 0)
		}
	}
	return append(b, d.lits[len(d.lits)-1]...)
}

// appendKey appends the key of event seq whose client (or publisher)
// has prefix (ingest/<run>/<client>/).
func appendKey(b []byte, prefix string, seq int) []byte {
	return appendPadded(append(b, prefix...), int64(seq), 10, 9)
}

// appendETag appends an MD5-shaped hint for event seq of client c; the key
// alone makes each job distinct.
func appendETag(b []byte, c, seq int) []byte {
	return appendPadded(appendPadded(b, int64(c), 16, 8), int64(seq), 16, 24)
}

// appendPadded appends n in base (upper-case digits), zero-padded to
// width.
func appendPadded(b []byte, n int64, base, width int) []byte {
	var tmp [64]byte
	d := strconv.AppendInt(tmp[:0], n, base)
	for range width - len(d) {
		b = append(b, '0')
	}
	for _, c := range d {
		if c >= 'a' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}
