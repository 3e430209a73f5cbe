package ossevent_test

import (
	"testing"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// BenchmarkParse is the gateway's hot path: one signed single-record
// document per POST /v1/events/oss.
func BenchmarkParse(b *testing.B) {
	body := []byte(seedDocument)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ossevent.Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseReference is the json.Unmarshal parser Parse replaced, for
// comparison in the same run.
func BenchmarkParseReference(b *testing.B) {
	body := []byte(seedDocument)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseReference(body); err != nil {
			b.Fatal(err)
		}
	}
}
