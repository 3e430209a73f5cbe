package cloudevents_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/oss2s3/oss2s3/transfer/ingest/cloudevents"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// FuzzParse: whatever the body, Parse and ParseBatch do not panic, and what
// they accept is an OSS object event whose record passes Validate, with a
// key oss2s3 can use and an event name that agrees with the type.
// Seeds: f.Add below and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(docEvent))
	f.Add([]byte(event("", record("ObjectCreated:PutObject", "a/b.txt"))))
	f.Add([]byte("[" + event("", record("", "a")) + "]"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if ev, err := cloudevents.Parse(body); err == nil {
			checkEvent(t, ev)
		}
		evs, err := cloudevents.ParseBatch(body)
		if err != nil {
			return
		}
		if len(evs) == 0 {
			t.Fatal("ParseBatch accepted an empty batch")
		}
		for _, ev := range evs {
			checkEvent(t, ev)
		}
	})
}

func checkEvent(t *testing.T, ev *cloudevents.Event) {
	t.Helper()
	if ev.SpecVersion != "1.0" || ev.ID == "" || ev.Source != "acs.oss" || !strings.HasPrefix(ev.Type, "oss:Object") {
		t.Fatalf("accepted bad attributes %+v", ev)
	}
	r := &ev.Record
	if err := r.Validate(); err != nil {
		t.Fatalf("accepted a record that fails Validate: %v", err)
	}
	k := r.OSS.Object.Key
	if k == "" || len(k) > ossevent.MaxKeyBytes || !utf8.ValidString(k) {
		t.Fatalf("accepted an unusable key %q", k)
	}
	if strings.TrimPrefix(r.EventName, "oss:") != strings.TrimPrefix(ev.Type, "oss:") {
		t.Fatalf("eventName %q disagrees with type %q", r.EventName, ev.Type)
	}
}
