package reconcile

// Listing parser: a ListObjectsV2 page read straight from its bytes.

import (
	"bytes"
	"fmt"
	"html"
	"net/url"
	"strconv"
	"time"
)

// A listing page is a few hundred KB of XML with a fixed shape, and
// decoding it with encoding/xml (reflection, a token per element) was
// two thirds of a diff's CPU and most of its garbage. parseListing reads
// just the fields a diff needs, straight from the bytes. Keys cannot
// hide a tag from it: a '<' inside a value is always escaped (&lt;), and
// both sides are asked for url-encoded keys anyway.

// listPage is one parsed page.
type listPage struct {
	entries   []Entry
	prefixes  []string
	truncated bool
	next      string // the continuation token, as sent
}

// parseListing parses a ListObjectsV2 answer (OSS or S3). Keys and common
// prefixes are url-decoded when the answer says EncodingType url; the
// continuation token too when decodeToken (OSS encodes it, S3 does not).
//
// One pass over the page: each '<' opens or closes an element, and an
// element's text runs to the next '<' (its end tag). Searching each
// <Contents> block once per field, and the page for each block's end
// (bytes.Index stops at every '<'), cost twice the CPU. The first of a
// field in a block wins; elements nested in others (<Owner><ID>) are
// passed over, none of them is read here.
func parseListing(body []byte, decodeToken bool, es []Entry) (listPage, error) {
	p := listPage{entries: es[:0]}
	enc := false
	if v, ok := field(body, "EncodingType"); ok {
		enc = string(v) == "url"
	}
	decode := func(v []byte) (string, error) {
		s := unescape(v)
		if !enc {
			return s, nil
		}
		return url.QueryUnescape(s)
	}
	var c rawContents
	var inContents, inPrefixes bool
	var truncated, token []byte
	for i := 0; i < len(body); {
		name, v, next, ok := nextElement(body, i)
		if !ok {
			break
		}
		i = next
		switch {
		case inContents:
			if string(name) == "/Contents" {
				e, err := c.entry(decode)
				if err != nil {
					return p, err
				}
				p.entries = append(p.entries, e)
				inContents = false
				continue
			}
			c.set(name, v)
		case inPrefixes:
			switch string(name) {
			case "/CommonPrefixes":
				inPrefixes = false
			case "Prefix":
				s, err := decode(v)
				if err != nil {
					return p, fmt.Errorf("listing: prefix %q: %w", v, err)
				}
				p.prefixes = append(p.prefixes, s)
			}
		default:
			switch string(name) {
			case "Contents":
				inContents, c = true, rawContents{}
			case "CommonPrefixes":
				inPrefixes = true
			case "IsTruncated":
				truncated = firstOf(truncated, v)
			case "NextContinuationToken":
				token = firstOf(token, v)
			}
		}
	}
	if inContents {
		return p, fmt.Errorf("listing: unterminated <Contents>")
	}
	return p, p.finish(truncated, token, decodeToken && enc)
}

// nextElement reads the element whose tag is the first at or after
// body[i]: the tag's name ("/Name" for an end tag), its text (up to the
// next '<') and where the scan goes on; ok is false past the last tag.
func nextElement(body []byte, i int) (name, text []byte, next int, ok bool) {
	lt := bytes.IndexByte(body[i:], '<')
	if lt < 0 {
		return nil, nil, 0, false
	}
	i += lt + 1
	gt := bytes.IndexByte(body[i:], '>')
	if gt < 0 {
		return nil, nil, 0, false
	}
	name = body[i : i+gt]
	i += gt + 1
	end := bytes.IndexByte(body[i:], '<')
	if end < 0 {
		end = len(body) - i
	}
	return name, body[i : i+end], i + end, true
}

// finish sets the page's truncation and continuation token from their
// texts (the token url-decoded if decode).
func (p *listPage) finish(truncated, token []byte, decode bool) error {
	p.truncated = string(truncated) == "true"
	if token != nil {
		p.next = unescape(token)
		if decode {
			s, err := url.QueryUnescape(p.next)
			if err != nil {
				return fmt.Errorf("listing: continuation token %q: %w", p.next, err)
			}
			p.next = s
		}
	}
	if p.truncated && p.next == "" {
		return fmt.Errorf("listing: truncated page without a continuation token")
	}
	return nil
}

// rawContents is the text of the fields of one <Contents> element, as
// found (nil: not found).
type rawContents struct {
	key, size, etag, modified, class, typ []byte
}

// set notes the text v of the element name, if it is a field and the
// first of its name.
func (c *rawContents) set(name, v []byte) {
	switch string(name) {
	case "Key":
		c.key = firstOf(c.key, v)
	case "Size":
		c.size = firstOf(c.size, v)
	case "ETag":
		c.etag = firstOf(c.etag, v)
	case "LastModified":
		c.modified = firstOf(c.modified, v)
	case "StorageClass":
		c.class = firstOf(c.class, v)
	case "Type":
		c.typ = firstOf(c.typ, v)
	}
}

// entry makes the entry the fields say.
func (c *rawContents) entry(decode func([]byte) (string, error)) (Entry, error) {
	var e Entry
	if c.key == nil {
		return e, fmt.Errorf("listing: <Contents> without a <Key>")
	}
	var err error
	if e.Key, err = decode(c.key); err != nil {
		return e, fmt.Errorf("listing: key %q: %w", c.key, err)
	}
	if c.size != nil {
		if e.Size, err = strconv.ParseInt(string(c.size), 10, 64); err != nil {
			return e, fmt.Errorf("listing: size of %q: %w", e.Key, err)
		}
	}
	if c.etag != nil {
		e.ETag = etagText(c.etag)
	}
	if c.modified != nil {
		e.LastModified, _ = time.Parse(time.RFC3339Nano, string(c.modified))
	}
	if c.class != nil {
		e.StorageClass = intern(c.class)
	}
	if c.typ != nil {
		e.ObjectType = intern(c.typ)
	}
	return e, nil
}

// etagText is an ETag's text without its quotes, which a listing writes
// as &quot; or &#34; (S3) or raw (OSS): the quotes are cut before
// anything is copied, and the general unescape is left to the rest.
func etagText(v []byte) string {
	for _, q := range [...]string{"&quot;", "&#34;", `"`} {
		if inner, ok := bytes.CutPrefix(v, []byte(q)); ok {
			if inner, ok = bytes.CutSuffix(inner, []byte(q)); ok && bytes.IndexByte(inner, '&') < 0 {
				return string(inner)
			}
		}
	}
	return trimQuotes(unescape(v))
}

// intern returns the storage classes and object types every entry
// repeats without copying them again.
func intern(v []byte) string {
	switch string(v) {
	case "STANDARD":
		return "STANDARD"
	case "Standard":
		return "Standard"
	case "Normal":
		return "Normal"
	case "Multipart":
		return "Multipart"
	}
	return string(v)
}

// firstOf returns had if a field was seen already, else v (never nil: an
// empty field is there all the same).
func firstOf(had, v []byte) []byte {
	if had != nil {
		return had
	}
	if v == nil {
		return []byte{}
	}
	return v
}

// field returns the text of the first <name>...</name> in b.
func field(b []byte, name string) ([]byte, bool) {
	open := "<" + name + ">"
	i := bytes.Index(b, []byte(open))
	if i < 0 {
		return nil, false
	}
	v := b[i+len(open):]
	j := bytes.Index(v, []byte("</"+name+">"))
	if j < 0 {
		return nil, false
	}
	return v[:j], true
}

func unescape(v []byte) string {
	if bytes.IndexByte(v, '&') < 0 {
		return string(v)
	}
	return html.UnescapeString(string(v))
}

func trimQuotes(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}
