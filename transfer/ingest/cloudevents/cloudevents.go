// Package cloudevents owns the decoding and validation of OSS events as an
// Alibaba Cloud EventBridge HTTP target delivers them (CloudEvents 1.0,
// structured JSON mode, one event or a batch), and the credentials check for
// that endpoint (API key header or HTTP basic auth, as configured on the
// EventBridge connection).
//
// It is a pure library: no routing, no I/O. The gateway wires it into a
// handler and turns every error into a 400 (Parse, ParseBatch) or 401 (Check)
// whose body is the error text, so the messages say exactly what is wrong.
//
// What an EventBridge OSS event looks like (pinned in testdata and in
// cloudevents_test.go) comes from Alibaba Cloud's documentation:
//   - event types: https://www.alibabacloud.com/help/en/eventbridge/user-guide/oss-events
//   - a full OSS event as delivered (data is ONE OSS record, not {"events":[...]},
//     with aliyunaccountid, aliyunregionid, aliyunpublishtime, aliyuneventbusname):
//     https://www.alibabacloud.com/help/en/dataworks/user-guide/trigger-based-workflow
//     ("Example OSS message format")
//   - connection authentication (basic, API key, OAuth, none):
//     https://www.alibabacloud.com/help/en/eventbridge/user-guide/manage-api-destinations
package cloudevents

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// SpecVersion is the only CloudEvents version accepted.
const SpecVersion = "1.0"

// SourceOSS is the CloudEvents source of every OSS event in EventBridge.
const SourceOSS = "acs.oss"

// typePrefix starts every OSS event type ("oss:ObjectCreated:PutObject");
// the record's eventName is the type without it.
const typePrefix = "oss:"

// Event is one OSS object event delivered by EventBridge.
type Event struct {
	SpecVersion     string
	ID              string // unique per Source; a natural de-duplication key
	Source          string // always "acs.oss"
	Type            string // "oss:ObjectCreated:PutObject"
	Subject         string // "acs:oss:cn-hangzhou:1234:bucket/key"
	Time            string // as sent; not validated (see parseEvent)
	DataContentType string
	DataSchema      string

	// Alibaba Cloud extension attributes ("" when absent).
	AliyunAccountID    string
	AliyunRegionID     string
	AliyunPublishTime  string
	AliyunEventBusName string

	// Record is the "data" member: one OSS record. It has passed
	// ossevent.Record.Validate, and its EventName is set (taken from Type
	// when data has none).
	Record ossevent.Record
}

// Parse decodes and validates one CloudEvent in structured JSON mode.
// A JSON array is refused with a pointer to ParseBatch.
func Parse(body []byte) (*Event, error) {
	raw, err := decodeTop(body)
	if err != nil {
		return nil, err
	}
	if raw[0] == '[' {
		return nil, fmt.Errorf("body is a JSON array (a batch of events): use ParseBatch")
	}
	return parseEvent(raw)
}

// ParseBatch decodes a batch: a JSON array of CloudEvents (EventBridge batch
// push), or a single CloudEvent object, which it returns as a batch of one.
// Any bad event rejects the whole batch, naming its index, so that nothing
// from a half-valid batch is queued.
func ParseBatch(body []byte) ([]*Event, error) {
	return ParseBatchMax(body, 0)
}

// ParseBatchMax is ParseBatch that rejects a batch of more than maxEvents
// events (an error wrapping ossevent.ErrTooManyRecords) as soon as it
// reaches the one too many. maxEvents <= 0: no limit.
//
// The events are decoded one at a time, each checked before the next is
// read, so what a batch costs besides its body grows with its valid
// events only: an array of a million empty objects is rejected at its
// first.
func ParseBatchMax(body []byte, maxEvents int) ([]*Event, error) {
	raw, err := decodeTop(body)
	if err != nil {
		return nil, err
	}
	if raw[0] == '{' {
		ev, err := parseEvent(raw)
		if err != nil {
			return nil, err
		}
		return []*Event{ev}, nil
	}
	// decodeTop checked the whole body: the decoder meets no syntax error.
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // [
		return nil, fmt.Errorf("not a batch of CloudEvents: %w", err)
	}
	var events []*Event
	for i := 0; dec.More(); i++ {
		if maxEvents > 0 && i >= maxEvents {
			return nil, fmt.Errorf("%w: more than %d events in one batch", ossevent.ErrTooManyRecords, maxEvents)
		}
		var item json.RawMessage
		if err := dec.Decode(&item); err != nil {
			return nil, fmt.Errorf("not a batch of CloudEvents: %w", err)
		}
		item = bytes.TrimSpace(item)
		if len(item) == 0 || item[0] != '{' {
			return nil, fmt.Errorf("batch[%d]: an event must be a JSON object, got %s", i, jsonKind(item))
		}
		ev, err := parseEvent(item)
		if err != nil {
			return nil, fmt.Errorf("batch[%d]: %w", i, err)
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("empty batch: the JSON array has no events")
	}
	return events, nil
}

// decodeTop checks what every body must be: non-empty UTF-8 holding exactly
// one JSON object or array. It returns that value, trimmed: a slice of
// body, not a copy.
func decodeTop(body []byte) ([]byte, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("empty body")
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD, and a key
	// changed that way names another object.
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("body is not valid UTF-8")
	}
	// Valid, unlike Decoder.Decode followed by More, checks the whole
	// body: More reports no more values before a stray ']' or '}'.
	// Unmarshal, which copies, runs only to word the error.
	if !json.Valid(body) {
		var v json.RawMessage
		err := json.Unmarshal(body, &v)
		var syn *json.SyntaxError
		if errors.As(err, &syn) && strings.HasSuffix(syn.Error(), "after top-level value") {
			return nil, fmt.Errorf("trailing data after the JSON value")
		}
		return nil, fmt.Errorf("body is not JSON: %w", err)
	}
	// encoding/json turns a lone UTF-16 surrogate escape ("\ud800") into
	// U+FFFD, which is valid UTF-8 but not what was sent.
	if off := ossevent.LoneSurrogate(body); off >= 0 {
		return nil, fmt.Errorf("body has an invalid \\u escape at byte %d: a lone UTF-16 surrogate", off)
	}
	raw := bytes.TrimSpace(body)
	if raw[0] != '{' && raw[0] != '[' {
		return nil, fmt.Errorf("body must be a JSON object (one CloudEvent) or array (a batch), got %s", jsonKind(raw))
	}
	return raw, nil
}

// parseEvent validates one event object. Attributes are read by their exact
// (lower-case) CloudEvents names: encoding/json's case-insensitive struct
// matching would let "ID" or "Source" stand in for them.
func parseEvent(raw []byte) (*Event, error) {
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &attrs); err != nil {
		return nil, fmt.Errorf("not a CloudEvent: %w", err)
	}
	str := func(name string) (string, bool, error) {
		v, ok := attrs[name]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", true, fmt.Errorf("attribute %q must be a string, got %s", name, jsonKind(v))
		}
		return s, true, nil
	}
	required := func(name string) (string, error) {
		s, ok, err := str(name)
		switch {
		case err != nil:
			return "", err
		case !ok:
			return "", fmt.Errorf("missing required attribute %q", name)
		case s == "":
			return "", fmt.Errorf("attribute %q is empty", name)
		}
		return s, nil
	}

	var ev Event
	var err error
	if ev.SpecVersion, err = required("specversion"); err != nil {
		return nil, err
	}
	if ev.SpecVersion != SpecVersion {
		return nil, fmt.Errorf("unsupported specversion %q: want %q", ev.SpecVersion, SpecVersion)
	}
	if ev.ID, err = required("id"); err != nil {
		return nil, err
	}
	if ev.Source, err = required("source"); err != nil {
		return nil, err
	}
	if ev.Source != SourceOSS {
		return nil, fmt.Errorf("source %q is not %q: only OSS events are accepted here", ev.Source, SourceOSS)
	}
	if ev.Type, err = required("type"); err != nil {
		return nil, err
	}
	name, ok := strings.CutPrefix(ev.Type, typePrefix)
	if !ok {
		return nil, fmt.Errorf("type %q does not start with %q", ev.Type, typePrefix)
	}
	// Bucket, ActionTrail and CloudMonitor events share the source but
	// carry no object record; the EventBridge rule should filter them out.
	if !strings.HasPrefix(name, "Object") {
		return nil, fmt.Errorf("type %q is not an OSS object event: filter the EventBridge rule to oss:Object* types", ev.Type)
	}
	optional := []struct {
		name string
		dst  *string
	}{
		{"subject", &ev.Subject},
		// time is kept as sent, unvalidated: oss2s3 orders nothing by it
		// (the record's eventTime is validated instead), and Alibaba's own
		// samples show values that are not RFC 3339
		// ("2020-08-17T16:04:46.149Asia/Shanghai").
		{"time", &ev.Time},
		{"datacontenttype", &ev.DataContentType},
		{"dataschema", &ev.DataSchema},
		{"aliyunaccountid", &ev.AliyunAccountID},
		{"aliyunregionid", &ev.AliyunRegionID},
		{"aliyunpublishtime", &ev.AliyunPublishTime},
		{"aliyuneventbusname", &ev.AliyunEventBusName},
	}
	for _, o := range optional {
		if *o.dst, _, err = str(o.name); err != nil {
			return nil, err
		}
	}
	if ev.DataContentType != "" && !isJSONMediaType(ev.DataContentType) {
		return nil, fmt.Errorf("datacontenttype %q is not JSON", ev.DataContentType)
	}
	if _, ok := attrs["data_base64"]; ok {
		return nil, fmt.Errorf(`"data_base64" is not supported: an OSS event carries its record as a JSON object in "data"`)
	}
	data, ok := attrs["data"]
	if !ok {
		return nil, fmt.Errorf(`missing "data": want one OSS record`)
	}
	data = bytes.TrimSpace(data)
	if data[0] != '{' {
		return nil, fmt.Errorf(`"data" must be a JSON object (one OSS record), got %s`, jsonKind(data))
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf(`"data" is not an OSS record: %w`, err)
	}
	if _, wrapped := probe["events"]; wrapped {
		return nil, fmt.Errorf(`"data" is an OSS trigger document ({"events":[...]}); EventBridge delivers one record, not wrapped in "events"`)
	}
	if err := json.Unmarshal(data, &ev.Record); err != nil {
		return nil, fmt.Errorf(`"data" is not an OSS record: %w`, err)
	}
	if ev.Record.EventName == "" {
		ev.Record.EventName = name
	} else if got := strings.TrimPrefix(ev.Record.EventName, typePrefix); got != name {
		return nil, fmt.Errorf("data.eventName %q disagrees with type %q", ev.Record.EventName, ev.Type)
	}
	if err := ev.Record.Validate(); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return &ev, nil
}

// isJSONMediaType accepts application/json and any +json type, with or
// without parameters ("application/json;charset=utf-8" is what EventBridge
// sends).
func isJSONMediaType(v string) bool {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// jsonKind names the kind of a JSON value for error messages.
func jsonKind(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}
