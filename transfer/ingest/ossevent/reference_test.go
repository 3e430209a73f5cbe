package ossevent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// parseReference is Parse as it was before its own JSON reader:
// json.Unmarshal into the whole Record. FuzzParseMatchesReference holds
// Parse to it.
func parseReference(body []byte) (*ossevent.Document, error) {
	var doc ossevent.Document
	if err := referenceDecode(body, &doc); err != nil {
		return nil, err
	}
	return checkEvents(&doc)
}

// checkEvents is the old Parse after decoding: the events array must be
// there, not empty, and every record valid.
func checkEvents(doc *ossevent.Document) (*ossevent.Document, error) {
	if doc.Events == nil {
		return nil, fmt.Errorf(`missing "events" array`)
	}
	if len(doc.Events) == 0 {
		return nil, fmt.Errorf(`"events" is empty`)
	}
	for i := range doc.Events {
		if err := doc.Events[i].Validate(); err != nil {
			return nil, fmt.Errorf("events[%d]: %w", i, err)
		}
	}
	return doc, nil
}

// referenceDecode is the old Parse up to and with json.Unmarshal.
func referenceDecode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("empty body")
	}
	if !utf8.Valid(body) {
		return fmt.Errorf("body is not valid UTF-8")
	}
	if i := ossevent.LoneSurrogate(body); i >= 0 {
		return fmt.Errorf("not an OSS event document: lone UTF-16 surrogate escape at byte %d", i)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("not an OSS event document: %w", err)
	}
	return nil
}

// leanDocument has only the members Parse decodes, with Record's types:
// encoding/json into it is parseReference without type checks of the
// unused members, which is what Parse promises.
type leanDocument struct {
	Events []struct {
		EventName string `json:"eventName"`
		EventTime string `json:"eventTime"`
		OSS       struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				ETag string `json:"eTag"`
				Key  string `json:"key"`
				Size int64  `json:"size"`
			} `json:"object"`
		} `json:"oss"`
	} `json:"events"`
}

// parseLeanReference is parseReference decoding into leanDocument.
func parseLeanReference(body []byte) (*ossevent.Document, error) {
	var lean leanDocument
	if err := referenceDecode(body, &lean); err != nil {
		return nil, err
	}
	doc := &ossevent.Document{Events: nil}
	if lean.Events != nil {
		doc.Events = make([]ossevent.Record, len(lean.Events))
	}
	for i, l := range lean.Events {
		r := &doc.Events[i]
		r.EventName, r.EventTime = l.EventName, l.EventTime
		r.OSS.Bucket.Name = l.OSS.Bucket.Name
		r.OSS.Object.ETag, r.OSS.Object.Key, r.OSS.Object.Size = l.OSS.Object.ETag, l.OSS.Object.Key, l.OSS.Object.Size
	}
	return checkEvents(doc)
}

// unusedFields are the Record members whose JSON types Parse does not
// check, as encoding/json names them in UnmarshalTypeError.Field.
var unusedFields = []string{
	"events.eventSource", "events.eventVersion", "events.region",
	"events.requestParameters", "events.responseElements", "events.userIdentity",
	"events.oss.ossSchemaVersion", "events.oss.ruleId",
	"events.oss.bucket.arn", "events.oss.bucket.ownerIdentity", "events.oss.bucket.virtualBucket",
	"events.oss.object.deltaSize", "events.oss.object.objectMeta",
}

// unusedTypeError reports whether err is encoding/json's complaint about the
// type of an unused member.
func unusedTypeError(err error) bool {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return false
	}
	for _, f := range unusedFields {
		if te.Field == f || len(te.Field) > len(f) && te.Field[:len(f)] == f && te.Field[len(f)] == '.' {
			return true
		}
	}
	return false
}

// usedNames is, per object Parse decodes, the members it keeps.
var usedNames = map[string][]string{
	"":           {"events"},
	"record":     {"eventName", "eventTime", "oss"},
	"oss":        {"bucket", "object"},
	"oss.bucket": {"name"},
	"oss.object": {"eTag", "key", "size"},
}

// duplicateUsedName reports whether the first JSON value in body has a
// member Parse keeps twice in one object (names compared as encoding/json
// matches them). It walks the tokens with encoding/json, independently of
// Parse; on a syntax error it reports what it found so far.
func duplicateUsedName(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dup, _ := walk(dec, "", true)
	return dup
}

// walk reads one value; ctx names the object kind when the value is an
// object Parse decodes (used), else the value is only skipped.
func walk(dec *json.Decoder, ctx string, used bool) (bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return false, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return false, nil
	}
	switch d {
	case '[':
		for dec.More() {
			// Elements of "events" are records.
			if dup, err := walk(dec, "record", used && ctx == "events"); dup || err != nil {
				return dup, err
			}
		}
	case '{':
		used = used && ctx != "events"
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return false, err
			}
			name := kt.(string)
			child, childUsed := "", false
			if used {
				for _, u := range usedNames[ctx] {
					if bytes.EqualFold([]byte(name), []byte(u)) {
						if seen[u] {
							return true, nil
						}
						seen[u] = true
						childUsed = true
						switch {
						case ctx == "":
							child = "events"
						case ctx == "record" && u == "oss":
							child = "oss"
						case ctx == "oss":
							child = "oss." + u
						default:
							childUsed = false
						}
					}
				}
			}
			if dup, err := walk(dec, child, childUsed); dup || err != nil {
				return dup, err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return false, err
}
