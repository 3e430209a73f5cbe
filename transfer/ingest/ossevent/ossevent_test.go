package ossevent_test

import (
	"strings"
	"testing"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// seedDocument is the trigger document of REFERENCE.md section 2, verbatim.
const seedDocument = `{"events":[{"eventName":"ObjectCreated:PutObject","eventSource":"acs:oss",
  "eventTime":"2026-11-24T08:00:00.000Z","eventVersion":"1.0",
  "oss":{"bucket":{"arn":"acs:oss:cn-hangzhou:1234:src","name":"src","ownerIdentity":"1234","virtualBucket":""},
         "object":{"deltaSize":1024,"eTag":"9E107D9D372BB6826BD81D3542A419D6","key":"a/b.txt",
                   "objectMeta":{"mimeType":"text/plain","userMeta":{}},"size":1024},
         "ossSchemaVersion":"1.0","ruleId":"9adac8e253828f4f7c0466d941fa3db81161e853"},
  "region":"cn-hangzhou","requestParameters":{"sourceIPAddress":"1.2.3.4"},
  "responseElements":{"requestId":"58F9FF2D3DF792092E12044C"},"userIdentity":{"principalId":"1234"}}]}`

func TestParseSeedDocument(t *testing.T) {
	t.Parallel()
	doc, err := ossevent.Parse([]byte(seedDocument))
	if err != nil {
		t.Fatal(err)
	}
	r := doc.Events[0]
	if r.OSS.Bucket.Name != "src" || r.OSS.Object.Key != "a/b.txt" || r.OSS.Object.Size != 1024 || r.ETag() != "9E107D9D372BB6826BD81D3542A419D6" {
		t.Fatalf("parsed %+v", r)
	}
	if r.Time().IsZero() || ossevent.KindOf(r.EventName) != ossevent.KindConverge {
		t.Fatalf("time %v kind %v", r.Time(), ossevent.KindOf(r.EventName))
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	rec := func(key string) string {
		return `{"eventName":"ObjectCreated:PutObject","oss":{"bucket":{"name":"src"},"object":{"key":"` + key + `","size":1}}}`
	}
	cases := []struct{ name, body, want string }{
		{"Empty", "", "empty body"},
		{"NotJSON", "hello", "not an OSS event document"},
		{"WrongShape", `{"events":{"a":1}}`, "not an OSS event document"},
		{"MissingEvents", `{"records":[]}`, `missing "events"`},
		{"EmptyEvents", `{"events":[]}`, `"events" is empty`},
		{"TrailingData", `{"events":[` + rec("a") + `]} {}`, "after top-level value"},
		{"TrailingBracket", `{"events":[` + rec("a") + `]}]`, "after top-level value"},
		{"LoneSurrogate", `{"events":[` + rec(`a\ud800b`) + `]}`, "lone UTF-16 surrogate"},
		{"LoneLowSurrogate", `{"events":[` + rec(`a\udc00`) + `]}`, "lone UTF-16 surrogate"},
		{"MissingKey", `{"events":[` + rec("") + `]}`, "events[0]: oss.object.key is missing"},
		{"SecondRecordBad", `{"events":[` + rec("a") + `,{"eventName":"x","oss":{"object":{"key":"k"}}}]}`, "events[1]: oss.bucket.name is missing"},
		{"KeyTooLong", `{"events":[` + rec(strings.Repeat("k", 1024)) + `]}`, "1024 bytes"},
		{"InvalidUTF8", "{\"events\":[" + rec("a\xff") + "]}", "body is not valid UTF-8"},
		{"BadTime", `{"events":[{"eventName":"x","eventTime":"yesterday","oss":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`, "eventTime"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ossevent.Parse([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseKeepsSurrogatePairs(t *testing.T) {
	t.Parallel()
	doc, err := ossevent.Parse([]byte(`{"events":[{"eventName":"ObjectCreated:PutObject","oss":{"bucket":{"name":"b"},"object":{"key":"smile-\ud83d\ude42-\\u","size":1}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Events[0].OSS.Object.Key; got != "smile-🙂-\\u" {
		t.Fatalf("key %q", got)
	}
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]ossevent.Kind{
		"ObjectCreated:PutObject":                   ossevent.KindConverge,
		"oss:ObjectCreated:CompleteMultipartUpload": ossevent.KindConverge,
		"ObjectCreated:SomethingNew":                ossevent.KindConverge,
		"ObjectCreated:UploadPart":                  ossevent.KindIgnore,
		"ObjectRemoved:DeleteObject":                ossevent.KindRemove,
		"ObjectRemoved:AbortMultipartUpload":        ossevent.KindIgnore,
		"ObjectModified:UpdateObjectMeta":           ossevent.KindConverge,
		"Unknown":                                   ossevent.KindIgnore,
	} {
		if got := ossevent.KindOf(name); got != want {
			t.Errorf("KindOf(%q) = %s, want %s", name, got, want)
		}
	}
}
