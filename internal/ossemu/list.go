package ossemu

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Listings return keys in UTF-8 byte order (Go string order), as OSS does.
// With encoding-type=url every key-like field (Key, Prefix, Delimiter,
// StartAfter, Marker, NextMarker, NextContinuationToken, CommonPrefixes)
// is encoded with url.QueryEscape and spaces as %20, which the SDK's
// url.QueryUnescape and any path-unescape both decode exactly.

type contentsXML struct {
	Key          string    `xml:"Key"`
	LastModified string    `xml:"LastModified"`
	ETag         string    `xml:"ETag"`
	Type         string    `xml:"Type"`
	Size         int64     `xml:"Size"`
	StorageClass string    `xml:"StorageClass"`
	Owner        *ownerXML `xml:"Owner,omitempty"`
}

type commonPrefixXML struct {
	Prefix string `xml:"Prefix"`
}

// listEntry is one listing entry: an object, or a common prefix.
type listEntry struct {
	key    string
	obj    *object
	prefix string
}

func (e listEntry) name() string {
	if e.obj == nil {
		return e.prefix
	}
	return e.key
}

// walk collects up to max entries whose names sort after `after`, rolling
// keys that contain delimiter past prefix into common prefixes. Callers
// hold the Server's mutex.
func walk(b *bucket, prefix, delimiter, after string, max int) (entries []listEntry, truncated bool) {
	if b.gen != nil {
		return b.gen.walk(prefix, after, max)
	}
	keys := b.sortedKeys()
	i := sort.Search(len(keys), func(i int) bool { return keys[i] >= prefix && keys[i] > after })
	lastPrefix := ""
	for i < len(keys) {
		k := keys[i]
		if !strings.HasPrefix(k, prefix) {
			break
		}
		if delimiter != "" {
			if j := strings.Index(k[len(prefix):], delimiter); j >= 0 {
				cp := k[:len(prefix)+j+len(delimiter)]
				skip := cp == lastPrefix || cp <= after
				if !skip {
					if len(entries) == max {
						return entries, true
					}
					entries = append(entries, listEntry{prefix: cp})
					lastPrefix = cp
				}
				// Jump past every key under cp instead of visiting them.
				if end, ok := prefixEnd(cp); ok {
					i += sort.SearchStrings(keys[i:], end)
				} else {
					i = len(keys)
				}
				continue
			}
		}
		if len(entries) == max {
			return entries, true
		}
		entries = append(entries, listEntry{key: k, obj: b.objects[k]})
		i++
	}
	return entries, false
}

// prefixEnd returns the smallest string greater than every string that
// starts with p; ok is false when there is none (p is all 0xff bytes).
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for len(b) > 0 && b[len(b)-1] == 0xff {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return "", false
	}
	b[len(b)-1]++
	return string(b), true
}

func parseMaxKeys(v string, def, max int) (int, *ossError) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, errInvalidArgument("max-keys must be an integer from 1 to " + strconv.Itoa(max) + ".")
	}
	return n, nil
}

func encodeIf(enc bool, s string) string {
	if enc {
		return escapeSDK(s)
	}
	return s
}

func contents(o *object, key string, withOwner bool) contentsXML {
	c := contentsXML{
		Key:          key,
		LastModified: isoTime(o.info.LastModified),
		ETag:         quote(o.info.ETag),
		Type:         o.info.ObjectType,
		Size:         o.info.Size,
		StorageClass: o.info.StorageClass,
	}
	if withOwner {
		owner := emulatorOwner
		c.Owner = &owner
	}
	return c
}

// encodeToken makes an opaque continuation token from the name of the last
// entry returned; decodeToken reverses it.
func encodeToken(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

func decodeToken(tok string) (string, *ossError) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", errInvalidArgument("The continuation token provided is incorrect.")
	}
	return string(b), nil
}

// ossListParams reads the parameters both OSS object listings take:
// max-keys (1 to 1000, 100 by default), prefix, delimiter and
// encoding-type (url or none).
func ossListParams(v url.Values) (maxKeys int, prefix, delimiter string, urlEnc bool, e *ossError) {
	if maxKeys, e = parseMaxKeys(v.Get("max-keys"), 100, 1000); e != nil {
		return 0, "", "", false, e
	}
	if et := v.Get("encoding-type"); et != "" && et != "url" {
		return 0, "", "", false, errInvalidArgument("encoding-type must be url.")
	}
	return maxKeys, v.Get("prefix"), v.Get("delimiter"), v.Get("encoding-type") == "url", nil
}

func (s *Server) listObjectsV2(w http.ResponseWriter, q *request) *ossError {
	return s.listObjectsOSS(w, q, true)
}

// listObjects serves the original ListObjects (marker paging).
func (s *Server) listObjects(w http.ResponseWriter, q *request) *ossError {
	return s.listObjectsOSS(w, q, false)
}

// ossListResult is the ListBucketResult of both OSS listings; each sets
// only its own paging fields (V1: Marker, NextMarker; V2: StartAfter,
// ContinuationToken, NextContinuationToken, KeyCount), the order of the
// fields being that of both documents.
type ossListResult struct {
	XMLName               xml.Name          `xml:"ListBucketResult"`
	Name                  string            `xml:"Name"`
	Prefix                string            `xml:"Prefix"`
	Marker                *string           `xml:"Marker"`
	StartAfter            string            `xml:"StartAfter,omitempty"`
	ContinuationToken     string            `xml:"ContinuationToken,omitempty"`
	MaxKeys               int               `xml:"MaxKeys"`
	Delimiter             string            `xml:"Delimiter"`
	EncodingType          string            `xml:"EncodingType,omitempty"`
	IsTruncated           bool              `xml:"IsTruncated"`
	NextMarker            string            `xml:"NextMarker,omitempty"`
	NextContinuationToken string            `xml:"NextContinuationToken,omitempty"`
	KeyCount              *int              `xml:"KeyCount"`
	Contents              []contentsXML     `xml:"Contents"`
	CommonPrefixes        []commonPrefixXML `xml:"CommonPrefixes"`
}

// listObjectsOSS serves ListObjectsV2 (v2: start-after and continuation
// tokens, owners only with fetch-owner=true) and ListObjects (marker
// paging, owners always).
func (s *Server) listObjectsOSS(w http.ResponseWriter, q *request, v2 bool) *ossError {
	v := q.query
	maxKeys, prefix, delimiter, urlEnc, e := ossListParams(v)
	if e != nil {
		return e
	}
	out := ossListResult{Name: q.bucket, Prefix: encodeIf(urlEnc, prefix), MaxKeys: maxKeys, Delimiter: encodeIf(urlEnc, delimiter)}
	if urlEnc {
		out.EncodingType = "url"
	}
	after, withOwner := v.Get("marker"), true
	if v2 {
		startAfter, token := v.Get("start-after"), v.Get("continuation-token")
		after = startAfter
		if token != "" {
			if after, e = decodeToken(token); e != nil {
				return e
			}
		}
		out.StartAfter, out.ContinuationToken = encodeIf(urlEnc, startAfter), token
		withOwner = v.Get("fetch-owner") == "true"
	} else {
		m := encodeIf(urlEnc, after)
		out.Marker = &m
	}
	page, e := listPage(s, q, prefix, delimiter, after, maxKeys, urlEnc, func(o *object, key string) contentsXML {
		return contents(o, key, withOwner)
	})
	if e != nil {
		return e
	}
	out.IsTruncated, out.Contents, out.CommonPrefixes = page.truncated, page.contents, page.prefixes
	if v2 {
		out.KeyCount = &page.n
	}
	if page.truncated {
		if v2 {
			out.NextContinuationToken = encodeIf(urlEnc, encodeToken(page.last))
		} else {
			out.NextMarker = encodeIf(urlEnc, page.last)
		}
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

// objectPage is one page of a bucket listing: its objects (as content
// makes them) and common prefixes, both encoded when asked for, how many
// entries it holds, the name of its last entry and whether more follow.
type objectPage[C any] struct {
	contents  []C
	prefixes  []commonPrefixXML
	n         int
	last      string
	truncated bool
}

// listPage walks up to maxKeys entries of q's bucket after `after` (none
// when maxKeys is 0), with the OutOfOrder fault applied, the one walk
// behind the OSS listings (V1 and V2) and S3's.
func listPage[C any](s *Server, q *request, prefix, delimiter, after string, maxKeys int, urlEnc bool, content func(o *object, key string) C) (objectPage[C], *ossError) {
	var page objectPage[C]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[q.bucket]
	if b == nil {
		return page, errNoSuchBucket(q.bucket)
	}
	var entries []listEntry
	if maxKeys > 0 {
		entries, page.truncated = walk(b, prefix, delimiter, after, maxKeys)
	}
	page.n = len(entries)
	if page.n > 0 {
		// The shuffle leaves a page's last entry in place.
		page.last = entries[page.n-1].name()
	}
	shuffle(entries, q.outOfOrder)
	for _, en := range entries {
		if en.obj == nil {
			page.prefixes = append(page.prefixes, commonPrefixXML{Prefix: encodeIf(urlEnc, en.prefix)})
		} else {
			page.contents = append(page.contents, content(en.obj, encodeIf(urlEnc, en.key)))
		}
	}
	return page, nil
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// queryInt parses an optional non-negative integer parameter.
func queryInt(v url.Values, name string, def int) (int, *ossError) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errInvalidArgument(name + " must be a non-negative integer.")
	}
	return n, nil
}

// shuffle swaps the first two entries of a page (the OutOfOrder fault).
// Pages of fewer than 3 entries are left alone, so the continuation
// token still names the page's true last entry.
func shuffle(entries []listEntry, on bool) {
	if on && len(entries) >= 3 {
		entries[0], entries[1] = entries[1], entries[0]
	}
}
