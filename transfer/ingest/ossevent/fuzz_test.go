package ossevent_test

import (
	"testing"
	"unicode/utf8"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// FuzzParse: whatever the body, Parse does not panic, and a document it
// accepts has only records that pass Validate, with keys oss2s3 can use.
// Seeds: f.Add below and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(seedDocument))
	f.Add([]byte(`{"events":[]}`))
	f.Add([]byte(`{"events":[{"eventName":"ObjectRemoved:DeleteObject","oss":{"bucket":{"name":"b"},"object":{"key":"a%2Fb c+d"}}}]}`))
	f.Add([]byte(`{"events":[{"eventName":"x","eventTime":"2026-01-01T00:00:00Z","oss":{"bucket":{"name":"b"},"object":{"key":"k","size":-1}}}]}`))
	f.Add([]byte("{\"events\":[{\"eventName\":\"x\",\"oss\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"\\ud800\"}}}]}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := ossevent.Parse(body)
		if err != nil {
			return
		}
		if len(doc.Events) == 0 {
			t.Fatal("accepted a document without records")
		}
		for i := range doc.Events {
			r := &doc.Events[i]
			if err := r.Validate(); err != nil {
				t.Fatalf("accepted record %d that fails Validate: %v", i, err)
			}
			k := r.OSS.Object.Key
			if k == "" || len(k) > ossevent.MaxKeyBytes || !utf8.ValidString(k) {
				t.Fatalf("accepted an unusable key %q", k)
			}
			_ = ossevent.KindOf(r.EventName)
		}
	})
}
