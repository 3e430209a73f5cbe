package mns_test

import (
	"testing"
	"unicode/utf8"

	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// FuzzParseNotification: whatever the body and Content-Type,
// ParseNotification does not panic, and a document it accepts has records
// that all pass Validate, with keys oss2s3 can use.
// Seeds: the fixtures below and testdata/fuzz/FuzzParseNotification, which
// holds every push format, valid and malformed, and any input the fuzzer
// once broke the parser with.
func FuzzParseNotification(f *testing.F) {
	for _, name := range []string{
		"notification_base64.xml", "notification_json.xml", "notification_base64.json",
		"notification_json.json", "simplified_base64.txt", "simplified_base64_wrapped.txt", "oss_document.json",
	} {
		f.Add(fixture(f, name), "")
	}
	f.Add([]byte("<Notification><Message>e30=</Message></Notification>"), "text/xml;charset=utf-8")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		doc, err := mns.ParseNotification(body, contentType)
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
			if r.EventName == "" || r.OSS.Bucket.Name == "" {
				t.Fatalf("accepted record %d without event name or bucket", i)
			}
		}
	})
}
