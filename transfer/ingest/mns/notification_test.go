package mns_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
)

// The fixtures in testdata carry one OSS document (testdata/oss_document.json:
// a PutObject of "a/b.txt" and a DeleteObject of a key with non-ASCII and
// XML-special characters) in every push format, shaped like the examples of
// https://www.alibabacloud.com/help/en/mns/developer-reference/notifycontentformat
// with real MD5 values:
//
//	notification_base64.xml        XML, Message = Base64 (as OSS publishes), MessageMD5 upper-case hex of the Base64 text
//	notification_json.xml          XML, Message = the JSON text, XML-escaped, MessageMD5 lower-case hex
//	notification_base64.json       JSON, Message = Base64, PublishTime a string (as documented)
//	notification_json.json         JSON, Message = the JSON text, PublishTime a number (as FC's MNS trigger sample)
//	simplified_base64.txt          SIMPLIFIED, the Base64 message alone
//	simplified_base64_wrapped.txt  SIMPLIFIED, Base64 wrapped at 76 columns with CRLF
//	oss_document.json              SIMPLIFIED, the JSON message alone
//	fc_destination_record.json     the record Function Compute sends to a failure destination after
//	                               an asynchronous invocation's last retry (REFERENCE.md 12), the
//	                               document as its requestPayload string
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseNotificationFormats(t *testing.T) {
	t.Parallel()
	doc := string(fixture(t, "oss_document.json"))
	b64 := base64.StdEncoding.EncodeToString([]byte(doc))
	fcRecord := string(fixture(t, "fc_destination_record.json"))
	cases := []struct{ name, body, contentType string }{
		{"XMLBase64", string(fixture(t, "notification_base64.xml")), "text/xml;charset=utf-8"},
		{"XMLJSON", string(fixture(t, "notification_json.xml")), "text/xml;charset=utf-8"},
		{"JSONBase64", string(fixture(t, "notification_base64.json")), "application/json;charset=utf-8"},
		{"JSONJSON", string(fixture(t, "notification_json.json")), "application/json"},
		{"SimplifiedBase64", string(fixture(t, "simplified_base64.txt")), "text/plain;charset=utf-8"},
		{"SimplifiedBase64Wrapped", string(fixture(t, "simplified_base64_wrapped.txt")), "text/plain;charset=utf-8"},
		{"SimplifiedJSON", doc, "text/plain;charset=utf-8"},
		{"SimplifiedBase64URLUnpadded", base64.RawURLEncoding.EncodeToString([]byte(doc)), ""},
		{"XMLCDATA", `<Notification><Message><![CDATA[` + doc + `]]></Message></Notification>`, ""},
		{"XMLDocumentedTypo", `<?xml version="1.0" encoding="utf-8"?> <Notification xlmns="http://mns.aliyuncs.com/doc/v1/"><Message>` + b64 + `</Message></Notification> <!-- end -->`, "text/xml"},
		{"ByteOrderMark", "\xef\xbb\xbf" + b64, ""},
		{"JSONMessageObject", `{"TopicName":"t","Message":` + doc + `}`, "application/json"},
		{"MessageMD5OfDecodedBytes", `{"Message":"` + b64 + `","MessageMD5":"FAB233F1849416FA4BC7181E412D7F23"}`, ""},
		// The FC function's failure destination: an MNS topic pushing here.
		{"FCDestinationRecordSimplified", fcRecord, "text/plain;charset=utf-8"},
		{"FCDestinationRecordBase64", base64.StdEncoding.EncodeToString([]byte(fcRecord)), ""},
		{"FCDestinationRecordInJSONNotification", `{"TopicName":"oss2s3-fc-failed","Message":` + jsonString(fcRecord) + `}`, "application/json"},
		{"FCDestinationRecordInXMLNotification", `<Notification><Message>` + base64.StdEncoding.EncodeToString([]byte(fcRecord)) + `</Message></Notification>`, "text/xml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := mns.ParseNotification([]byte(tc.body), tc.contentType)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Events) != 2 {
				t.Fatalf("%d events", len(got.Events))
			}
			e0, e1 := got.Events[0], got.Events[1]
			if e0.EventName != "ObjectCreated:PutObject" || e0.OSS.Bucket.Name != "src" || e0.OSS.Object.Key != "a/b.txt" || e0.OSS.Object.Size != 1024 {
				t.Errorf("events[0] = %+v", e0)
			}
			if e1.EventName != "ObjectRemoved:DeleteObject" || e1.OSS.Object.Key != "dir/中文 & <x>.txt" {
				t.Errorf("events[1] = %+v", e1)
			}
		})
	}
}

func TestParseNotificationRejects(t *testing.T) {
	t.Parallel()
	doc := string(fixture(t, "oss_document.json"))
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	rec := func(bucket, key string) string {
		return `{"eventName":"ObjectCreated:PutObject","oss":{"bucket":{"name":"` + bucket + `"},"object":{"key":"` + key + `"}}}`
	}
	xmlMsg := func(msg string) string { return `<Notification><Message>` + msg + `</Message></Notification>` }
	badSecond := `{"events":[` + rec("src", "a") + `,` + rec("", "b") + `]}`

	cases := []struct{ name, body, contentType, want string }{
		{"Empty", " \r\n", "", "empty body"},
		{"InvalidUTF8", "<Notification><Message>\xff</Message></Notification>", "", "body is not valid UTF-8"},

		{"XMLTruncated", "<Notification><Message>", "", "XML notification: XML syntax error on line 1: unexpected EOF"},
		{"XMLOtherRoot", "<Message>" + b64(doc) + "</Message>", "", "XML notification: expected element type <Notification> but have <Message>"},
		{"XMLNoMessage", "<Notification><TopicName>t</TopicName></Notification>", "", "XML notification: no <Message> element"},
		{"XMLEmptyMessage", xmlMsg(" "), "", "XML notification: message is empty"},
		{"XMLTrailingElement", xmlMsg(b64(doc)) + "<Notification/>", "", "XML notification: trailing data after </Notification>"},
		{"XMLTrailingText", xmlMsg(b64(doc)) + "x", "", "XML notification: trailing data after </Notification>"},
		{"XMLSurrogateCharRef", xmlMsg(`{"events":[` + rec("b", "&#xD800;") + `]}`), "", "XML notification: character reference &#xD800; at byte 119 is a UTF-16 surrogate, not a character"},
		{"XMLDecimalSurrogateCharRef", xmlMsg(`{"events":[` + rec("b", "a&#56320;") + `]}`), "", "XML notification: character reference &#56320; at byte 120"},
		{"XMLEntity", `<!DOCTYPE n [<!ENTITY x "y">]>` + xmlMsg("&x;"), "", "XML notification: XML syntax error on line 1: invalid character entity &x;"},
		{"XMLBadMD5", `<Notification><Message>` + b64(doc) + `</Message><MessageMD5>00000000000000000000000000000000</MessageMD5></Notification>`, "",
			"XML notification: MessageMD5 00000000000000000000000000000000 does not match the message (MD5 A634F87FECDE3EA434E81CB46C40A1BA)"},
		{"XMLMD5NotHex", `<Notification><Message>` + b64(doc) + `</Message><MessageMD5>A634F87FECDE3EA4</MessageMD5></Notification>`, "",
			`XML notification: MessageMD5 "A634F87FECDE3EA4" is not 32 hex digits`},
		{"XMLNotBase64", xmlMsg("not base64!"), "", "XML notification: message is neither JSON nor Base64: illegal base64 data at input byte 9"},
		{"XMLBase64NotJSON", xmlMsg(b64("hello")), "", "XML notification: message is Base64 but does not decode to a JSON object"},
		{"XMLBase64BadRecord", xmlMsg(b64(badSecond)), "", "XML notification: message (Base64-decoded): events[1]: oss.bucket.name is missing"},
		{"XMLJSONBadRecord", xmlMsg(strings.ReplaceAll(badSecond, `"`, "&quot;")), "", "XML notification: message: events[1]: oss.bucket.name is missing"},
		{"XMLJSONNoEvents", xmlMsg(`{"Records":[]}`), "", `XML notification: message: missing "events" array`},

		{"JSONNeither", `{"TopicOwner":"1234"}`, "", `JSON body is neither an MNS notification (no "Message") nor an OSS event document (no "events")`},
		{"JSONLowerCaseMessage", `{"message":"` + b64(doc) + `"}`, "", `JSON body is neither an MNS notification (no "Message")`},
		{"JSONMessageNumber", `{"Message":5}`, "", `JSON notification: "Message" must be a string`},
		{"JSONMessageObjectWithMD5", `{"Message":` + doc + `,"MessageMD5":"FAB233F1849416FA4BC7181E412D7F23"}`, "", `JSON notification: "Message" must be a string`},
		{"JSONMD5Number", `{"Message":"` + b64(doc) + `","MessageMD5":5}`, "", `JSON notification: "MessageMD5" must be a string`},
		{"JSONTrailing", `{"Message":"` + b64(doc) + `"} x`, "", "body is not JSON: invalid character 'x' after top-level value"},
		{"JSONLoneSurrogate", `{"Message":"{\"events\":[{\"eventName\":\"x\",\"oss\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"\ud800\"}}}]}"}`, "",
			`JSON notification: "Message" has an invalid \u escape: a lone UTF-16 surrogate`},
		{"JSONEscapedLoneSurrogate", `{"Message":"{\"events\":[{\"eventName\":\"x\",\"oss\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"\\ud800\"}}}]}"}`, "",
			`JSON notification: message: invalid \u escape at byte 74: a lone UTF-16 surrogate`},
		{"JSONBadRecord", `{"Message":"` + b64(badSecond) + `"}`, "", "JSON notification: message (Base64-decoded): events[1]: oss.bucket.name is missing"},

		{"SimplifiedJSONBadRecord", `{"events":[` + rec("src", "") + `]}`, "", "SIMPLIFIED notification: events[0]: oss.object.key is missing"},
		{"SimplifiedJSONEmptyEvents", `{"events":[]}`, "", `SIMPLIFIED notification: "events" is empty`},
		{"SimplifiedJSONTrailingBracket", doc + "]", "", "body is not JSON: invalid character ']' after top-level value"},
		{"SimplifiedJSONLoneSurrogate", `{"events":[` + rec("src", `\udc00`) + `]}`, "", `SIMPLIFIED notification: invalid \u escape at byte 98: a lone UTF-16 surrogate`},
		{"SimplifiedNotBase64", "hello world!", "text/plain", "SIMPLIFIED notification: message is neither JSON nor Base64: illegal base64 data at input byte 10"},
		{"SimplifiedBase64TrailingBracket", b64(doc + "]"), "", "SIMPLIFIED notification: message (Base64-decoded): trailing data after the OSS event document"},
		{"SimplifiedBase64TrailingObject", b64(doc + "{}"), "", "SIMPLIFIED notification: message (Base64-decoded): trailing data after the OSS event document"},
		{"SimplifiedBase64InvalidUTF8", b64(`{"events":[` + rec("src", "a\xffb") + `]}`), "", "SIMPLIFIED notification: message (Base64-decoded): not valid UTF-8"},
		{"SimplifiedBase64LoneSurrogate", b64(`{"events":[` + rec("src", `\ud800`) + `]}`), "", `SIMPLIFIED notification: message (Base64-decoded): invalid \u escape at byte 98: a lone UTF-16 surrogate`},
		{"SimplifiedBase64KeyTooLong", b64(`{"events":[` + rec("src", strings.Repeat("k", 1024)) + `]}`), "", "SIMPLIFIED notification: message (Base64-decoded): events[0]: oss.object.key is 1024 bytes, more than OSS allows (1023)"},
		{"SimplifiedBase64OfBase64", b64(b64(doc)), "", "SIMPLIFIED notification: message is Base64 but does not decode to a JSON object"},
		{"XMLContentTypeButBase64Body", b64(doc), "text/xml;charset=utf-8", "body is not an XML <Notification> although Content-Type is text/xml;charset=utf-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := mns.ParseNotification([]byte(tc.body), tc.contentType)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseNotification error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// jsonString is s as a JSON string literal.
func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestFCDestinationRecordOfSomethingElseIsRefused: a destination record
// whose requestPayload is not an OSS document is refused, saying which
// record it was; a document with a member named requestPayload but no
// requestContext is read as the document it is.
func TestFCDestinationRecordOfSomethingElseIsRefused(t *testing.T) {
	t.Parallel()
	bad := `{"timestamp":1,"requestContext":{"requestId":"r-1","condition":"Timeout"},"requestPayload":"{\"not\":\"oss\"}"}`
	_, err := mns.ParseNotification([]byte(bad), "")
	if err == nil || !strings.Contains(err.Error(), "FC destination record (request r-1, Timeout): requestPayload:") {
		t.Errorf("record of another event: %v", err)
	}
	notPayload := `{"TopicName":"t","Message":` + jsonString(`{"requestPayload":"x","events":[{"eventName":"ObjectCreated:PutObject","oss":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`) + `}`
	doc, err := mns.ParseNotification([]byte(notPayload), "")
	if err != nil || len(doc.Events) != 1 {
		t.Errorf("a document with a requestPayload member: %v", err)
	}
}
