package cloudevents_test

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/oss2s3/oss2s3/transfer/ingest/cloudevents"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// tinyEvent is the smallest event ParseBatch accepts.
const tinyEvent = `{"specversion":"1.0","id":"i","source":"acs.oss","type":"oss:ObjectCreated:PutObject","data":{"oss":{"bucket":{"name":"b"},"object":{"key":"k"}}}}`

// batchOf is a JSON array of element, about size bytes long.
func batchOf(element string, size int) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	for b.Len() < size-len(element)-1 {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(element)
	}
	b.WriteString("]")
	return b.Bytes()
}

// TestParseBatchHoldsASmallMultipleOfTheBody: a 1 MB batch costs a small
// multiple of a megabyte whatever it holds (issue 14), and past the limit
// it is refused before its events are decoded. Not parallel: it reads the
// process's allocation counter.
func TestParseBatchHoldsASmallMultipleOfTheBody(t *testing.T) {
	const size = 1 << 20
	for _, c := range []struct {
		name    string
		body    []byte
		max     int
		factor  float64
		wantErr string
	}{
		{"EmptyObjects", batchOf("{}", size), 0, 0.1, `batch[0]: missing required attribute "specversion"`},
		{"Zeros", batchOf("0", size), 0, 0.1, "batch[0]: an event must be a JSON object"},
		// Decoding one event through encoding/json's maps costs about 3 KB,
		// most of it garbage by the next event; the limit (the gateway's
		// webhook.max_records) is what keeps a request small.
		{"ValidEvents", batchOf(tinyEvent, size), 0, 32, ""},
		{"ValidEventsPastTheLimit", batchOf(tinyEvent, size), 100, 0.5, "too many records: more than 100 events"},
	} {
		var err error
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err = cloudevents.ParseBatchMax(c.body, c.max)
		runtime.ReadMemStats(&after)
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.wantErr)
		}
		n := after.TotalAlloc - before.TotalAlloc
		per := float64(n) / float64(len(c.body))
		t.Logf("%s: %d bytes of body, %d allocated (%.2f per byte)", c.name, len(c.body), n, per)
		if per > c.factor {
			t.Errorf("%s: allocated %d bytes for a body of %d (%.2f per byte), want at most %.2f per byte", c.name, n, len(c.body), per, c.factor)
		}
	}
}

func TestParseBatchMaxRejectsTheEventOneTooMany(t *testing.T) {
	t.Parallel()
	three := "[" + strings.Repeat(tinyEvent+",", 2) + tinyEvent + "]"
	if evs, err := cloudevents.ParseBatchMax([]byte(three), 3); err != nil || len(evs) != 3 {
		t.Fatalf("three events, limit 3: %d, %v", len(evs), err)
	}
	if _, err := cloudevents.ParseBatchMax([]byte(three), 2); !errors.Is(err, ossevent.ErrTooManyRecords) {
		t.Fatalf("three events, limit 2: %v, want ErrTooManyRecords", err)
	}
	if evs, err := cloudevents.ParseBatchMax([]byte(tinyEvent), 1); err != nil || len(evs) != 1 {
		t.Fatalf("one event, not in a batch, limit 1: %d, %v", len(evs), err)
	}
}
