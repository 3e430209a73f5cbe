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

var (
	tagContents   = []byte("<Contents>")
	endContents   = []byte("</Contents>")
	tagCommonPref = []byte("<CommonPrefixes>")
	endCommonPref = []byte("</CommonPrefixes>")
)

// parseListing parses a ListObjectsV2 answer (OSS or S3). Keys and common
// prefixes are url-decoded when the answer says EncodingType url; the
// continuation token too when decodeToken (OSS encodes it, S3 does not).
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
	err := eachElement(body, tagContents, endContents, func(blk []byte) error {
		e, err := parseContents(blk, decode)
		if err != nil {
			return err
		}
		p.entries = append(p.entries, e)
		return nil
	})
	if err != nil {
		return p, err
	}
	err = eachElement(body, tagCommonPref, endCommonPref, func(blk []byte) error {
		if v, ok := field(blk, "Prefix"); ok {
			s, err := decode(v)
			if err != nil {
				return fmt.Errorf("listing: prefix %q: %w", v, err)
			}
			p.prefixes = append(p.prefixes, s)
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	// Top-level fields: after the last <Contents>, or anywhere outside
	// them; a value never holds a raw '<', so a search finds only tags.
	if v, ok := field(body, "IsTruncated"); ok {
		p.truncated = string(v) == "true"
	}
	if v, ok := field(body, "NextContinuationToken"); ok {
		p.next = unescape(v)
		if decodeToken && enc {
			s, err := url.QueryUnescape(p.next)
			if err != nil {
				return p, fmt.Errorf("listing: continuation token %q: %w", p.next, err)
			}
			p.next = s
		}
	}
	if p.truncated && p.next == "" {
		return p, fmt.Errorf("listing: truncated page without a continuation token")
	}
	return p, nil
}

// parseContents parses the content of one <Contents> element.
func parseContents(blk []byte, decode func([]byte) (string, error)) (Entry, error) {
	var e Entry
	k, ok := field(blk, "Key")
	if !ok {
		return e, fmt.Errorf("listing: <Contents> without a <Key>")
	}
	var err error
	if e.Key, err = decode(k); err != nil {
		return e, fmt.Errorf("listing: key %q: %w", k, err)
	}
	if v, ok := field(blk, "Size"); ok {
		if e.Size, err = strconv.ParseInt(string(v), 10, 64); err != nil {
			return e, fmt.Errorf("listing: size of %q: %w", e.Key, err)
		}
	}
	if v, ok := field(blk, "ETag"); ok {
		e.ETag = trimQuotes(unescape(v))
	}
	if v, ok := field(blk, "LastModified"); ok {
		e.LastModified, _ = time.Parse(time.RFC3339Nano, string(v))
	}
	if v, ok := field(blk, "StorageClass"); ok {
		e.StorageClass = string(v)
	}
	if v, ok := field(blk, "Type"); ok {
		e.ObjectType = string(v)
	}
	return e, nil
}

// eachElement calls fn with the content of each <tag>...</tag> element
// of body (open and end are the two tags), in order.
func eachElement(body, open, end []byte, fn func(content []byte) error) error {
	for rest := body; ; {
		i := bytes.Index(rest, open)
		if i < 0 {
			return nil
		}
		content := rest[i+len(open):]
		j := bytes.Index(content, end)
		if j < 0 {
			return fmt.Errorf("listing: unterminated %s", open)
		}
		if err := fn(content[:j]); err != nil {
			return err
		}
		rest = content[j+len(end):]
	}
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
