package cloudevents_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/oss2s3/oss2s3/transfer/ingest/cloudevents"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// docEvent is the "Example OSS message format" of
// https://www.alibabacloud.com/help/en/dataworks/user-guide/trigger-based-workflow
// (an OSS event as EventBridge delivers it), with the documentation's masked
// values ("1***********9", "******") replaced by concrete ones. Attribute
// order and spelling are as published.
const docEvent = `{
    "datacontenttype": "application/json;charset=utf-8",
    "aliyunaccountid": "1234567890123459",
    "data": {
        "eventVersion": "1.0",
        "responseElements": {
            "requestId": "69B1A2B3C4D5E6F7A8B9C0A8"
        },
        "eventSource": "acs:oss",
        "eventTime": "2026-03-11T05:40:45.000Z",
        "requestParameters": {
            "sourceIPAddress": "203.0.113.7"
        },
        "eventName": "ObjectCreated:PostObject",
        "userIdentity": {
            "principalId": "1234567890123459"
        },
        "region": "cn-hangzhou",
        "oss": {
            "bucket": {
                "name": "dwoss1024",
                "arn": "acs:oss:cn-hangzhou:1234567890123459:dwoss1024",
                "virtualBucket": "",
                "ownerIdentity": "1234567890123459"
            },
            "ossSchemaVersion": "1.0",
            "object": {
                "size": 59537,
                "objectMeta": {
                    "mimeType": "text/csv"
                },
                "deltaSize": 0,
                "eTag": "63A1B2C3D4E5F60718293A4B5C6D7D32",
                "key": "input/test_file_20260310.csv"
            }
        }
    },
    "subject": "acs:oss:cn-hangzhou:1234567890123459:dwoss1024/input/test_file_20260310.csv",
    "aliyunoriginalaccountid": "1234567890123459",
    "source": "acs.oss",
    "type": "oss:ObjectCreated:PostObject",
    "aliyunpublishtime": "2026-03-11T05:40:45.682Z",
    "specversion": "1.0",
    "aliyuneventbusname": "DATAWORKS_TRIGGER_FOR_BUCKET_dwoss1024",
    "id": "69B1A2B3C4D5E6F7A8B9C0A8",
    "time": "2026-03-11T05:40:45.000Z",
    "aliyunregionid": "cn-hangzhou"
}`

// event builds a compact event: attrs are raw JSON members placed before
// "data", data is the raw "data" value ("" leaves it out).
func event(attrs, data string) string {
	s := `{"specversion":"1.0","id":"e1","source":"acs.oss","type":"oss:ObjectCreated:PutObject"`
	if attrs != "" {
		s += "," + attrs
	}
	if data != "" {
		s += `,"data":` + data
	}
	return s + "}"
}

// record is a minimal valid OSS record for bucket "src" and the given key.
func record(eventName, key string) string {
	name := ""
	if eventName != "" {
		name = `"eventName":"` + eventName + `",`
	}
	return `{` + name + `"eventTime":"2026-11-24T08:00:00.000Z","oss":{"bucket":{"name":"src"},"object":{"key":"` + key + `","size":1024,"eTag":"9E107D9D372BB6826BD81D3542A419D6"}},"region":"cn-hangzhou"}`
}

func TestParseDocumentedEvent(t *testing.T) {
	t.Parallel()
	ev, err := cloudevents.Parse([]byte(docEvent))
	if err != nil {
		t.Fatal(err)
	}
	want := cloudevents.Event{
		SpecVersion:        "1.0",
		ID:                 "69B1A2B3C4D5E6F7A8B9C0A8",
		Source:             "acs.oss",
		Type:               "oss:ObjectCreated:PostObject",
		Subject:            "acs:oss:cn-hangzhou:1234567890123459:dwoss1024/input/test_file_20260310.csv",
		Time:               "2026-03-11T05:40:45.000Z",
		DataContentType:    "application/json;charset=utf-8",
		AliyunAccountID:    "1234567890123459",
		AliyunRegionID:     "cn-hangzhou",
		AliyunPublishTime:  "2026-03-11T05:40:45.682Z",
		AliyunEventBusName: "DATAWORKS_TRIGGER_FOR_BUCKET_dwoss1024",
	}
	got := *ev
	got.Record = ossevent.Record{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("attributes:\n got %+v\nwant %+v", got, want)
	}
	r := ev.Record
	if r.EventName != "ObjectCreated:PostObject" || r.OSS.Bucket.Name != "dwoss1024" ||
		r.OSS.Object.Key != "input/test_file_20260310.csv" || r.OSS.Object.Size != 59537 ||
		r.ETag() != "63A1B2C3D4E5F60718293A4B5C6D7D32" || r.Region != "cn-hangzhou" {
		t.Errorf("record: %+v", r)
	}
	if ossevent.KindOf(r.EventName) != ossevent.KindConverge {
		t.Errorf("kind %s", ossevent.KindOf(r.EventName))
	}
}

func TestParseTakesEventNameFromType(t *testing.T) {
	t.Parallel()
	body := `{"specversion":"1.0","id":"e1","source":"acs.oss","type":"oss:ObjectRemoved:DeleteObject","data":` + record("", "a/b.txt") + `}`
	ev, err := cloudevents.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Record.EventName != "ObjectRemoved:DeleteObject" || ossevent.KindOf(ev.Record.EventName) != ossevent.KindRemove {
		t.Fatalf("eventName %q", ev.Record.EventName)
	}
}

func TestParseAcceptsPrefixedEventNameInData(t *testing.T) {
	t.Parallel()
	ev, err := cloudevents.Parse([]byte(event("", record("oss:ObjectCreated:PutObject", "k"))))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Record.EventName != "oss:ObjectCreated:PutObject" {
		t.Fatalf("eventName %q", ev.Record.EventName)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	valid := record("ObjectCreated:PutObject", "a/b.txt")
	cases := []struct{ name, body, want string }{
		{"Empty", "  \n", "empty body"},
		{"InvalidUTF8", event("", record("ObjectCreated:PutObject", "a\xff")), "body is not valid UTF-8"},
		{"NotJSON", "hello", "body is not JSON: invalid character 'h' looking for beginning of value"},
		{"Truncated", `{"specversion":"1.0"`, "body is not JSON: unexpected end of JSON input"},
		{"TrailingData", event("", valid) + " {}", "trailing data after the JSON value"},
		{"String", `"hello"`, "body must be a JSON object (one CloudEvent) or array (a batch), got a string"},
		{"Array", "[" + event("", valid) + "]", "body is a JSON array (a batch of events): use ParseBatch"},
		{"NoSpecVersion", `{"id":"e1","source":"acs.oss","type":"oss:ObjectCreated:PutObject","data":` + valid + `}`, `missing required attribute "specversion"`},
		{"OldSpecVersion", `{"specversion":"0.3","id":"e1","source":"acs.oss","type":"oss:ObjectCreated:PutObject","data":` + valid + `}`, `unsupported specversion "0.3": want "1.0"`},
		{"NumericSpecVersion", `{"specversion":1.0,"id":"e1","source":"acs.oss","type":"oss:ObjectCreated:PutObject","data":` + valid + `}`, `attribute "specversion" must be a string, got a number`},
		{"NoID", `{"specversion":"1.0","source":"acs.oss","type":"oss:ObjectCreated:PutObject","data":` + valid + `}`, `missing required attribute "id"`},
		{"EmptyID", `{"specversion":"1.0","id":"","source":"acs.oss","type":"oss:ObjectCreated:PutObject","data":` + valid + `}`, `attribute "id" is empty`},
		{"UpperCaseID", `{"specversion":"1.0","ID":"e1","source":"acs.oss","type":"oss:ObjectCreated:PutObject","data":` + valid + `}`, `missing required attribute "id"`},
		{"NoSource", `{"specversion":"1.0","id":"e1","type":"oss:ObjectCreated:PutObject","data":` + valid + `}`, `missing required attribute "source"`},
		{"OtherSource", `{"specversion":"1.0","id":"e1","source":"acs.ecs","type":"oss:ObjectCreated:PutObject","data":` + valid + `}`, `source "acs.ecs" is not "acs.oss": only OSS events are accepted here`},
		{"NoType", `{"specversion":"1.0","id":"e1","source":"acs.oss","data":` + valid + `}`, `missing required attribute "type"`},
		{"TypeWithoutPrefix", `{"specversion":"1.0","id":"e1","source":"acs.oss","type":"ObjectCreated:PutObject","data":` + valid + `}`, `type "ObjectCreated:PutObject" does not start with "oss:"`},
		{"BucketEvent", `{"specversion":"1.0","id":"e1","source":"acs.oss","type":"oss:BucketCreated:PutBucket","data":{}}`, `type "oss:BucketCreated:PutBucket" is not an OSS object event: filter the EventBridge rule to oss:Object* types`},
		{"SubjectNotString", event(`"subject":42`, valid), `attribute "subject" must be a string, got a number`},
		{"AccountIDNotString", event(`"aliyunaccountid":1234`, valid), `attribute "aliyunaccountid" must be a string, got a number`},
		{"TextContentType", event(`"datacontenttype":"text/plain"`, valid), `datacontenttype "text/plain" is not JSON`},
		{"DataBase64", event(`"data_base64":"e30="`, ""), `"data_base64" is not supported`},
		{"NoData", event("", ""), `missing "data": want one OSS record`},
		{"NullData", event("", "null"), `"data" must be a JSON object (one OSS record), got null`},
		{"StringData", event("", `"{}"`), `"data" must be a JSON object (one OSS record), got a string`},
		{"WrappedInEvents", event("", `{"events":[`+valid+`]}`), `"data" is an OSS trigger document ({"events":[...]}); EventBridge delivers one record, not wrapped in "events"`},
		{"WrongFieldType", event("", `{"oss":{"bucket":{"name":"src"},"object":{"key":"k","size":"big"}}}`), `"data" is not an OSS record: json: cannot unmarshal string into Go struct field Object.oss.object.size of type int64`},
		{"NameDisagrees", event("", record("ObjectRemoved:DeleteObject", "k")), `data.eventName "ObjectRemoved:DeleteObject" disagrees with type "oss:ObjectCreated:PutObject"`},
		{"NoBucket", event("", `{"oss":{"object":{"key":"k"}}}`), "data: oss.bucket.name is missing"},
		{"NoKey", event("", record("", "")), "data: oss.object.key is missing"},
		{"KeyTooLong", event("", record("", strings.Repeat("k", 1024))), "data: oss.object.key is 1024 bytes, more than OSS allows (1023)"},
		{"LoneSurrogateKey", event("", record("", `\ud800`)), `body has an invalid \u escape at byte 182: a lone UTF-16 surrogate`},
		{"LowSurrogateFirst", event("", record("", `\udc00\ud800`)), `a lone UTF-16 surrogate`},
		{"HighSurrogateThenLetter", event("", record("", `\ud83dx`)), `a lone UTF-16 surrogate`},
		{"BadEventTime", event("", `{"eventTime":"yesterday","oss":{"bucket":{"name":"b"},"object":{"key":"k"}}}`), `data: eventTime "yesterday" is not an RFC 3339 time`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := cloudevents.Parse([]byte(tc.body))
			if err == nil {
				t.Fatalf("Parse accepted %s: %+v", tc.body, ev)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseKeepsSurrogatePairsAndEscapedBackslashes(t *testing.T) {
	t.Parallel()
	// A pair is one character (U+1F600); "\\ud800" is a backslash followed
	// by "ud800", not an escape.
	ev, err := cloudevents.Parse([]byte(event("", record("", `\ud83d\ude00/\\ud800`))))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ev.Record.OSS.Object.Key, "\U0001F600/\\ud800"; got != want {
		t.Fatalf("key %q, want %q", got, want)
	}
}

func TestParseBatch(t *testing.T) {
	t.Parallel()
	ok1 := event("", record("ObjectCreated:PutObject", "a"))
	ok2 := `{"specversion":"1.0","id":"e2","source":"acs.oss","type":"oss:ObjectRemoved:DeleteObject","data":` + record("", "b") + `}`

	t.Run("ArrayOfEvents", func(t *testing.T) {
		t.Parallel()
		evs, err := cloudevents.ParseBatch([]byte("[" + ok1 + ",\n" + ok2 + "]"))
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 || evs[0].Record.OSS.Object.Key != "a" || evs[1].Record.EventName != "ObjectRemoved:DeleteObject" {
			t.Fatalf("got %+v", evs)
		}
	})
	t.Run("SingleObjectIsABatchOfOne", func(t *testing.T) {
		t.Parallel()
		evs, err := cloudevents.ParseBatch([]byte(docEvent))
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].ID != "69B1A2B3C4D5E6F7A8B9C0A8" {
			t.Fatalf("got %+v", evs)
		}
	})

	cases := []struct{ name, body, want string }{
		{"Empty", "", "empty body"},
		{"EmptyArray", "[]", "empty batch: the JSON array has no events"},
		{"BadSingle", `{"specversion":"1.0"}`, `missing required attribute "id"`},
		{"SecondBad", "[" + ok1 + `,{"specversion":"1.0","id":"e2","source":"acs.ecs","type":"ecs:X","data":{}}]`, `batch[1]: source "acs.ecs" is not "acs.oss"`},
		{"ThirdNotObject", "[" + ok1 + "," + ok2 + `,"x"]`, "batch[2]: an event must be a JSON object, got a string"},
		{"NestedArray", "[[" + ok1 + "]]", "batch[0]: an event must be a JSON object, got an array"},
		{"InvalidUTF8", "[" + event("", record("", "\xc3\x28")) + "]", "body is not valid UTF-8"},
		{"TrailingBracket", "[" + ok1 + "]]", "trailing data after the JSON value"},
		{"TrailingBrace", ok1 + "}", "trailing data after the JSON value"},
		{"Number", "42", "body must be a JSON object (one CloudEvent) or array (a batch), got a number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			evs, err := cloudevents.ParseBatch([]byte(tc.body))
			if err == nil {
				t.Fatalf("ParseBatch accepted %s: %+v", tc.body, evs)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseBatch error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}
