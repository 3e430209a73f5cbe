package mns

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// xmlNotification is the XML push body
// (https://www.alibabacloud.com/help/en/mns/developer-reference/notifycontentformat).
// The element is matched in any namespace: the documentation's own example
// spells the attribute "xlmns".
type xmlNotification struct {
	XMLName          xml.Name `xml:"Notification"`
	TopicOwner       string   `xml:"TopicOwner"`
	TopicName        string   `xml:"TopicName"`
	Subscriber       string   `xml:"Subscriber"`
	SubscriptionName string   `xml:"SubscriptionName"`
	MessageID        string   `xml:"MessageId"`
	MessageMD5       string   `xml:"MessageMD5"`
	MessageTag       string   `xml:"MessageTag"`
	Message          *string  `xml:"Message"`
	PublishTime      string   `xml:"PublishTime"`
}

// ParseNotification decodes an MNS push body into the OSS event document it
// carries, whatever the subscription's NotifyContentFormat:
//
//   - XML: <Notification xmlns="http://mns.aliyuncs.com/doc/v1/"> with
//     <Message>, <MessageMD5>, <MessageId>, ...
//   - JSON: {"TopicOwner":..., "Message":"...", "MessageMD5":..., ...}
//   - SIMPLIFIED: the body is the message itself.
//
// The message is the OSS document ({"events":[...]}) either as JSON text or
// as Base64 of it; OSS publishes it Base64-encoded, as Alibaba Cloud asks of
// every publisher. It is decoded defensively: JSON if it starts with "{",
// else Base64 (standard or URL alphabet, padded or not, line breaks allowed)
// and then JSON. MessageMD5, when present, must be the MD5 of the message
// (hex, either case): of the text as pushed, which is what MNS computes
// (MessageBodyMD5 of PublishMessage), or of its Base64-decoded bytes.
// The document is then validated with ossevent.Parse: one bad record
// rejects it all, naming the record.
//
// The message may also be the record Function Compute sends to a failure
// destination (an MNS topic) after the last retry of an asynchronous
// invocation: the OSS document is then its requestPayload, and the event
// the function could not deliver is queued from it.
//
// The format is recognised from the body; contentType (the request's
// Content-Type, covered by the signature) only sharpens error messages.
func ParseNotification(body []byte, contentType string) (*ossevent.Document, error) {
	return ParseNotificationMax(body, contentType, 0)
}

// ParseNotificationMax is ParseNotification that rejects an OSS document of
// more than maxRecords records (an error wrapping
// ossevent.ErrTooManyRecords) before building any. maxRecords <= 0: no
// limit.
func ParseNotificationMax(body []byte, contentType string, maxRecords int) (*ossevent.Document, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("empty body")
	}
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("body is not valid UTF-8")
	}
	switch trimmed[0] {
	case '<':
		return parseXML(trimmed, maxRecords)
	case '{':
		return parseJSON(trimmed, maxRecords)
	}
	if mt := mediaType(contentType); mt == "text/xml" || mt == "application/xml" {
		return nil, fmt.Errorf("body is not an XML <Notification> although Content-Type is %s", contentType)
	}
	doc, err := decodeMessage(string(trimmed), maxRecords)
	if err != nil {
		return nil, fmt.Errorf("SIMPLIFIED notification: %w", err)
	}
	return doc, nil
}

func parseXML(body []byte, maxRecords int) (*ossevent.Document, error) {
	// encoding/xml turns a character reference to a UTF-16 surrogate into
	// U+FFFD instead of refusing it, and a key changed that way names
	// another object. (Checked everywhere, CDATA included: strict is fine.)
	if ref, off := surrogateCharRef(body); off >= 0 {
		return nil, fmt.Errorf("XML notification: character reference %s at byte %d is a UTF-16 surrogate, not a character", ref, off)
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	var n xmlNotification
	if err := dec.Decode(&n); err != nil {
		return nil, fmt.Errorf("XML notification: %w", err)
	}
	// Only white space, comments and processing instructions may follow.
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("XML notification: after </Notification>: %w", err)
		}
		switch t := tok.(type) {
		case xml.Comment, xml.ProcInst:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, fmt.Errorf("XML notification: trailing data after </Notification>")
			}
		default:
			return nil, fmt.Errorf("XML notification: trailing data after </Notification>")
		}
	}
	if n.Message == nil {
		return nil, fmt.Errorf("XML notification: no <Message> element")
	}
	doc, err := checkedMessage(*n.Message, n.MessageMD5, maxRecords)
	if err != nil {
		return nil, fmt.Errorf("XML notification: %w", err)
	}
	return doc, nil
}

// parseJSON tells a JSON notification (it has "Message") from a SIMPLIFIED
// body holding the OSS document as JSON text (it has "events"). Member names
// are matched exactly; encoding/json's struct matching ignores case.
func parseJSON(body []byte, maxRecords int) (*ossevent.Document, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return nil, fmt.Errorf("body is not JSON: %w", err)
	}
	msg, isEnvelope := members["Message"]
	if !isEnvelope {
		_, isRecord := members[fcPayload]
		if _, ok := members["events"]; ok || isRecord {
			doc, err := parseEventOrRecord(body, maxRecords)
			if err != nil {
				return nil, fmt.Errorf("SIMPLIFIED notification: %w", err)
			}
			return doc, nil
		}
		return nil, fmt.Errorf(`JSON body is neither an MNS notification (no "Message") nor an OSS event document (no "events")`)
	}
	var md5Hex string
	if raw, ok := members["MessageMD5"]; ok {
		if err := json.Unmarshal(raw, &md5Hex); err != nil {
			return nil, fmt.Errorf(`JSON notification: "MessageMD5" must be a string`)
		}
	}
	var text string
	if err := json.Unmarshal(msg, &text); err != nil {
		// Not the documented shape, but a message that is itself a JSON
		// object is taken as is.
		if m := bytes.TrimSpace(msg); len(m) > 0 && m[0] == '{' && md5Hex == "" {
			doc, err := parseDocument(m, maxRecords)
			if err != nil {
				return nil, fmt.Errorf("JSON notification: message: %w", err)
			}
			return doc, nil
		}
		return nil, fmt.Errorf(`JSON notification: "Message" must be a string`)
	}
	if ossevent.LoneSurrogate(msg) >= 0 {
		return nil, fmt.Errorf(`JSON notification: "Message" has an invalid \u escape: a lone UTF-16 surrogate`)
	}
	doc, err := checkedMessage(text, md5Hex, maxRecords)
	if err != nil {
		return nil, fmt.Errorf("JSON notification: %w", err)
	}
	return doc, nil
}

// checkedMessage checks MessageMD5, if any, then decodes the message.
func checkedMessage(msg, md5Hex string, maxRecords int) (*ossevent.Document, error) {
	md5Hex = strings.TrimSpace(md5Hex)
	if md5Hex != "" {
		if _, err := hex.DecodeString(md5Hex); err != nil || len(md5Hex) != 2*md5.Size {
			return nil, fmt.Errorf("MessageMD5 %q is not 32 hex digits", md5Hex)
		}
		asSent := md5.Sum([]byte(msg))
		ok := strings.EqualFold(md5Hex, hex.EncodeToString(asSent[:]))
		if !ok {
			if dec, err := decodeBase64(msg); err == nil {
				decoded := md5.Sum(dec)
				ok = strings.EqualFold(md5Hex, hex.EncodeToString(decoded[:]))
			}
		}
		if !ok {
			return nil, fmt.Errorf("MessageMD5 %s does not match the message (MD5 %X)", md5Hex, asSent)
		}
	}
	return decodeMessage(msg, maxRecords)
}

// decodeMessage turns a message into the OSS document: JSON text, or Base64
// of it (one level; the decoded text must be JSON).
func decodeMessage(msg string, maxRecords int) (*ossevent.Document, error) {
	m := strings.TrimSpace(msg)
	if m == "" {
		return nil, fmt.Errorf("message is empty")
	}
	if m[0] == '{' {
		doc, err := parseEventOrRecord([]byte(m), maxRecords)
		if err != nil {
			return nil, fmt.Errorf("message: %w", err)
		}
		return doc, nil
	}
	dec, err := decodeBase64(m)
	if err != nil {
		return nil, fmt.Errorf("message is neither JSON nor Base64: %w", err)
	}
	if d := bytes.TrimSpace(dec); len(d) == 0 || d[0] != '{' {
		return nil, fmt.Errorf("message is Base64 but does not decode to a JSON object")
	}
	doc, err := parseEventOrRecord(dec, maxRecords)
	if err != nil {
		return nil, fmt.Errorf("message (Base64-decoded): %w", err)
	}
	return doc, nil
}

// parseDocument is ossevent.Parse plus the checks it lacks: nothing but
// white space after the document (json.Decoder.More misses a stray ']' or
// '}'), and no lone UTF-16 surrogate escape, which encoding/json would turn
// into U+FFFD and so into another key.
func parseDocument(b []byte, maxRecords int) (*ossevent.Document, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("not valid UTF-8")
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		var syn *json.SyntaxError
		if errors.As(err, &syn) && strings.HasSuffix(syn.Error(), "after top-level value") {
			return nil, fmt.Errorf("trailing data after the OSS event document")
		}
		return nil, fmt.Errorf("not an OSS event document: %w", err)
	}
	if off := ossevent.LoneSurrogate(b); off >= 0 {
		return nil, fmt.Errorf(`invalid \u escape at byte %d: a lone UTF-16 surrogate`, off)
	}
	return ossevent.ParseMax(b, maxRecords)
}

// decodeBase64 accepts the standard and URL alphabets, padded or not, with
// line breaks (as MIME encoders wrap it).
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func mediaType(v string) string {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return ""
	}
	return mt
}

// surrogateCharRef finds the first numeric character reference ("&#55296;",
// "&#xD800;") to a code point in U+D800..U+DFFF and returns it with its
// offset, or -1. Malformed references are left to the XML decoder.
func surrogateCharRef(b []byte) (string, int) {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("&#"))
		if j < 0 {
			return "", -1
		}
		start := i + j
		k := start + 2
		base := 10
		if k < len(b) && (b[k] == 'x' || b[k] == 'X') {
			base = 16
			k++
		}
		v, digits := 0, 0
		for ; k < len(b) && v <= 0x10FFFF; k++ {
			d := digitValue(b[k])
			if d < 0 || d >= base {
				break
			}
			v = v*base + d
			digits++
		}
		if digits > 0 && k < len(b) && b[k] == ';' && v >= 0xD800 && v <= 0xDFFF {
			return string(b[start : k+1]), start
		}
		i = start + 2
	}
}

func digitValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// fcPayload is the member of a Function Compute destination record that
// holds the invocation's original event (REFERENCE.md 12: timestamp,
// requestContext {requestId, functionArn, condition,
// approximateInvokeCount}, requestPayload, responseContext,
// responsePayload).
const fcPayload = "requestPayload"

// fcRecord is the part of a destination record read here.
type fcRecord struct {
	RequestContext *struct {
		RequestID string `json:"requestId"`
		Condition string `json:"condition"`
	} `json:"requestContext"`
	RequestPayload *string `json:"requestPayload"`
}

// parseEventOrRecord parses b as an OSS event document, or, if it is a
// Function Compute destination record (it has requestPayload and
// requestContext, names matched exactly), the document in its
// requestPayload.
func parseEventOrRecord(b []byte, maxRecords int) (*ossevent.Document, error) {
	if !bytes.Contains(b, []byte(`"`+fcPayload+`"`)) || !bytes.Contains(b, []byte(`"requestContext"`)) {
		return parseDocument(b, maxRecords)
	}
	var r fcRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("FC destination record: %w", err)
	}
	if r.RequestPayload == nil || r.RequestContext == nil {
		return parseDocument(b, maxRecords)
	}
	doc, err := parseDocument([]byte(*r.RequestPayload), maxRecords)
	if err != nil {
		return nil, fmt.Errorf("FC destination record (request %s, %s): requestPayload: %w",
			r.RequestContext.RequestID, r.RequestContext.Condition, err)
	}
	return doc, nil
}
