package ossemu

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc64"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// upload is a multipart upload in progress; the Server's mutex guards it.
type upload struct {
	id        string
	key       string
	initiated time.Time
	meta      requestMeta
	parts     map[int]*part
}

type part struct {
	number   int
	data     []byte
	md5      []byte
	crc      uint64
	modified time.Time
}

func (p *part) etag() string { return strings.ToUpper(hex.EncodeToString(p.md5)) }

const (
	maxPartNumber      = 10000
	defaultMinPartSize = 100 << 10
)

func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func (s *Server) initiateMultipartUpload(w http.ResponseWriter, q *request) *ossError {
	if e := validKey(q.key); e != nil {
		return e
	}
	m, e := objectMetaFromRequest(q.r.Header)
	if e != nil {
		return e
	}
	u := &upload{id: newUploadID(), key: q.key, initiated: s.now().UTC(), meta: m, parts: map[int]*part{}}
	b, e := s.lockBucket(q.bucket)
	if e != nil {
		return e
	}
	b.uploads[u.id] = u
	s.mu.Unlock()
	urlEnc := q.query.Get("encoding-type") == "url"
	type result struct {
		XMLName      xml.Name `xml:"InitiateMultipartUploadResult"`
		Bucket       string   `xml:"Bucket"`
		Key          string   `xml:"Key"`
		UploadID     string   `xml:"UploadId"`
		EncodingType string   `xml:"EncodingType,omitempty"`
	}
	out := result{Bucket: q.bucket, Key: encodeIf(urlEnc, q.key), UploadID: u.id}
	if urlEnc {
		out.EncodingType = "url"
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

// findUpload returns the upload a request names; it must belong to the
// request's key. Callers hold the Server's mutex.
func (s *Server) findUpload(q *request) (*bucket, *upload, *ossError) {
	b := s.buckets[q.bucket]
	if b == nil {
		return nil, nil, errNoSuchBucket(q.bucket)
	}
	id := q.query.Get("uploadId")
	u := b.uploads[id]
	if u == nil || u.key != q.key {
		return nil, nil, errNoSuchUpload(id)
	}
	return b, u, nil
}

func (s *Server) uploadPart(w http.ResponseWriter, q *request) *ossError {
	n, err := strconv.Atoi(q.query.Get("partNumber"))
	if err != nil || n < 1 || n > maxPartNumber {
		return errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive.")
	}
	s.mu.Lock()
	_, _, e := s.findUpload(q)
	s.mu.Unlock()
	if e != nil {
		return e
	}
	body, e := readBody(q.r, 0)
	if e != nil {
		return e
	}
	p := &part{number: n, data: body.data, md5: body.md5, crc: body.crc, modified: s.now().UTC().Truncate(time.Second)}
	s.mu.Lock()
	_, u, e := s.findUpload(q) // it may have been completed or aborted meanwhile
	if e == nil {
		u.parts[n] = p
	}
	s.mu.Unlock()
	if e != nil {
		return e
	}
	w.Header().Set("Content-MD5", base64MD5(p.md5))
	return writtenOK(w, p.etag(), p.crc)
}

func (s *Server) completeMultipartUpload(w http.ResponseWriter, q *request) *ossError {
	completeAll, listed, e := parseCompleteRequest(q)
	if e != nil {
		return e
	}
	minPart := s.opts.MinPartSize
	if minPart == 0 {
		minPart = defaultMinPartSize
	}
	s.mu.Lock()
	o, crc, e := s.completeLocked(q, completeAll, listed, minPart)
	s.mu.Unlock()
	if e != nil {
		return e
	}
	writeCompleteResult(w, q, o, crc)
	return nil
}

// completePart is a part the CompleteMultipartUpload body lists.
type completePart struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`
}

// parseCompleteRequest reads a CompleteMultipartUpload body: the parts it
// lists, or (with x-oss-complete-all: yes) nothing, when the body must be
// empty.
func parseCompleteRequest(q *request) (completeAll bool, listed []completePart, e *ossError) {
	raw, e := readSmallBody(q.r, 4<<20)
	if e != nil {
		return false, nil, e
	}
	completeAll = strings.EqualFold(q.r.Header.Get("x-oss-complete-all"), "yes")
	if completeAll {
		if len(raw) > 0 {
			return false, nil, errInvalidArgument("With x-oss-complete-all: yes the request body must be empty.")
		}
		return true, nil, nil
	}
	var doc struct {
		Parts []completePart `xml:"Part"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		return false, nil, errMalformedXML(err)
	}
	if len(doc.Parts) == 0 {
		return false, nil, errMalformedXML(fmt.Errorf("no parts"))
	}
	return false, doc.Parts, nil
}

// completeLocked checks the parts chosen and stores the object they make,
// replacing the upload; it returns the object and its CRC-64. Callers hold
// the Server's mutex.
func (s *Server) completeLocked(q *request, completeAll bool, listed []completePart, minPart int64) (*object, uint64, *ossError) {
	b, u, e := s.findUpload(q)
	if e != nil {
		return nil, 0, e
	}
	chosen, e := chooseParts(u, completeAll, listed)
	if e != nil {
		return nil, 0, e
	}
	if e := checkPartSizes(u, chosen, minPart); e != nil {
		return nil, 0, e
	}
	if strings.EqualFold(q.r.Header.Get("x-oss-forbid-overwrite"), "true") && b.objects[q.key] != nil {
		return nil, 0, &ossError{status: 409, code: "FileAlreadyExists", message: "The object you specified already exists and can not be overwritten.", extra: errorExtra{Key: q.key}}
	}
	data, etag, crc := joinParts(chosen)
	o := s.newObject(q.key, data, nil, crc, "Multipart", u.meta)
	o.info.ETag = etag
	s.emitPut("ObjectCreated:CompleteMultipartUpload", q.bucket, q.id, o, b.put(o))
	delete(b.uploads, u.id)
	return o, crc, nil
}

// chooseParts returns the parts of u the object is made of: all of them
// by number with completeAll, else those listed, which must be in
// ascending order and match the uploaded parts' ETags.
func chooseParts(u *upload, completeAll bool, listed []completePart) ([]*part, *ossError) {
	var chosen []*part
	if completeAll {
		for _, n := range sortedPartNumbers(u) {
			chosen = append(chosen, u.parts[n])
		}
		if len(chosen) == 0 {
			return nil, errMalformedXML(fmt.Errorf("the upload has no parts"))
		}
		return chosen, nil
	}
	prev := 0
	for _, dp := range listed {
		if dp.PartNumber <= prev {
			return nil, &ossError{status: 400, code: "InvalidPartOrder", message: "The list of parts was not in ascending order. Parts must be ordered by part number.", extra: errorExtra{UploadID: u.id}}
		}
		prev = dp.PartNumber
		p := u.parts[dp.PartNumber]
		if p == nil || !strings.EqualFold(strings.Trim(dp.ETag, `"`), p.etag()) {
			return nil, &ossError{status: 400, code: "InvalidPart", message: "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.",
				extra: errorExtra{UploadID: u.id, PartNumber: strconv.Itoa(dp.PartNumber), ETag: dp.ETag}}
		}
		chosen = append(chosen, p)
	}
	return chosen, nil
}

// checkPartSizes refuses a part other than the last smaller than minPart
// (0: no minimum).
func checkPartSizes(u *upload, chosen []*part, minPart int64) *ossError {
	for i, p := range chosen {
		if minPart > 0 && i < len(chosen)-1 && int64(len(p.data)) < minPart {
			return &ossError{status: 400, code: "EntityTooSmall", message: "Your proposed upload is smaller than the minimum allowed size.",
				extra: errorExtra{UploadID: u.id, PartNumber: strconv.Itoa(p.number)}}
		}
	}
	return nil
}

// joinParts returns the bytes of the parts one after the other, their
// multipart ETag (the MD5 of the parts' MD5s, "-" and the number of parts)
// and their CRC-64.
func joinParts(chosen []*part) (data []byte, etag string, crc uint64) {
	var size int
	for _, p := range chosen {
		size += len(p.data)
	}
	data = make([]byte, 0, size)
	etags := md5.New()
	for _, p := range chosen {
		data = append(data, p.data...)
		etags.Write(p.md5)
		crc = crc64.Update(crc, crcTable, p.data)
	}
	etag = strings.ToUpper(hex.EncodeToString(etags.Sum(nil))) + "-" + strconv.Itoa(len(chosen))
	return data, etag, crc
}

// writeCompleteResult answers a completed upload of o.
func writeCompleteResult(w http.ResponseWriter, q *request, o *object, crc uint64) {
	urlEnc := q.query.Get("encoding-type") == "url"
	type result struct {
		XMLName      xml.Name `xml:"CompleteMultipartUploadResult"`
		EncodingType string   `xml:"EncodingType,omitempty"`
		Location     string   `xml:"Location"`
		Bucket       string   `xml:"Bucket"`
		Key          string   `xml:"Key"`
		ETag         string   `xml:"ETag"`
	}
	out := result{Location: "http://" + q.r.Host + "/" + q.bucket + "/" + escapeSDK(q.key), Bucket: q.bucket, Key: encodeIf(urlEnc, q.key), ETag: quote(o.info.ETag)}
	if urlEnc {
		out.EncodingType = "url"
	}
	w.Header().Set("x-oss-hash-crc64ecma", strconv.FormatUint(crc, 10))
	writeXML(w, http.StatusOK, out)
}

func sortedPartNumbers(u *upload) []int {
	ns := make([]int, 0, len(u.parts))
	for n := range u.parts {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	return ns
}

func (s *Server) abortMultipartUpload(w http.ResponseWriter, q *request) *ossError {
	s.mu.Lock()
	b, u, e := s.findUpload(q)
	if e == nil {
		delete(b.uploads, u.id)
	}
	s.mu.Unlock()
	if e != nil {
		return e
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listParts(w http.ResponseWriter, q *request) *ossError {
	maxParts, e := parseMaxKeys(q.query.Get("max-parts"), 1000, 1000)
	if e != nil {
		return e
	}
	marker, e := queryInt(q.query, "part-number-marker", 0)
	if e != nil {
		return e
	}
	urlEnc := q.query.Get("encoding-type") == "url"
	type partXML struct {
		PartNumber   int    `xml:"PartNumber"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag"`
		HashCrc64    uint64 `xml:"HashCrc64ecma"`
		Size         int    `xml:"Size"`
	}
	type result struct {
		XMLName              xml.Name  `xml:"ListPartsResult"`
		EncodingType         string    `xml:"EncodingType,omitempty"`
		Bucket               string    `xml:"Bucket"`
		Key                  string    `xml:"Key"`
		UploadID             string    `xml:"UploadId"`
		PartNumberMarker     int       `xml:"PartNumberMarker"`
		NextPartNumberMarker int       `xml:"NextPartNumberMarker"`
		MaxParts             int       `xml:"MaxParts"`
		IsTruncated          bool      `xml:"IsTruncated"`
		Parts                []partXML `xml:"Part"`
	}
	s.mu.Lock()
	_, u, e := s.findUpload(q)
	if e != nil {
		s.mu.Unlock()
		return e
	}
	out := result{Bucket: q.bucket, Key: encodeIf(urlEnc, q.key), UploadID: u.id, PartNumberMarker: marker, MaxParts: maxParts}
	if urlEnc {
		out.EncodingType = "url"
	}
	for _, n := range sortedPartNumbers(u) {
		if n <= marker {
			continue
		}
		if len(out.Parts) == maxParts {
			out.IsTruncated = true
			break
		}
		p := u.parts[n]
		out.Parts = append(out.Parts, partXML{PartNumber: n, LastModified: isoTime(p.modified), ETag: quote(p.etag()), HashCrc64: p.crc, Size: len(p.data)})
		out.NextPartNumberMarker = n
	}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, out)
	return nil
}

type uploadXML struct {
	Key          string `xml:"Key"`
	UploadID     string `xml:"UploadId"`
	StorageClass string `xml:"StorageClass"`
	Initiated    string `xml:"Initiated"`
}

type listUploadsResult struct {
	XMLName            xml.Name          `xml:"ListMultipartUploadsResult"`
	EncodingType       string            `xml:"EncodingType,omitempty"`
	Bucket             string            `xml:"Bucket"`
	KeyMarker          string            `xml:"KeyMarker"`
	UploadIDMarker     string            `xml:"UploadIdMarker"`
	NextKeyMarker      string            `xml:"NextKeyMarker"`
	NextUploadIDMarker string            `xml:"NextUploadIdMarker"`
	Delimiter          string            `xml:"Delimiter"`
	Prefix             string            `xml:"Prefix"`
	MaxUploads         int               `xml:"MaxUploads"`
	IsTruncated        bool              `xml:"IsTruncated"`
	Uploads            []uploadXML       `xml:"Upload"`
	CommonPrefixes     []commonPrefixXML `xml:"CommonPrefixes"`
}

// uploadsQuery is what a ListMultipartUploads request asks for.
type uploadsQuery struct {
	prefix, delimiter, keyMarker, idMarker string
	max                                    int
	urlEnc                                 bool
}

// listMultipartUploads lists uploads in progress by key, then upload ID,
// with key-marker/upload-id-marker paging.
func (s *Server) listMultipartUploads(w http.ResponseWriter, q *request) *ossError {
	v := q.query
	maxUploads, e := parseMaxKeys(v.Get("max-uploads"), 1000, 1000)
	if e != nil {
		return e
	}
	uq := uploadsQuery{prefix: v.Get("prefix"), delimiter: v.Get("delimiter"), keyMarker: v.Get("key-marker"), idMarker: v.Get("upload-id-marker"),
		max: maxUploads, urlEnc: v.Get("encoding-type") == "url"}
	b, e := s.lockBucket(q.bucket)
	if e != nil {
		return e
	}
	out := listUploadsResult{Bucket: q.bucket, KeyMarker: encodeIf(uq.urlEnc, uq.keyMarker), UploadIDMarker: uq.idMarker,
		Delimiter: encodeIf(uq.urlEnc, uq.delimiter), Prefix: encodeIf(uq.urlEnc, uq.prefix), MaxUploads: maxUploads}
	if uq.urlEnc {
		out.EncodingType = "url"
	}
	lastKey, lastID := uq.page(sortedUploads(b, uq.prefix), &out)
	s.mu.Unlock()
	if out.IsTruncated {
		out.NextKeyMarker, out.NextUploadIDMarker = encodeIf(uq.urlEnc, lastKey), lastID
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

// sortedUploads returns the uploads of b whose key starts with prefix, by
// key, then upload ID. Callers hold the Server's mutex.
func sortedUploads(b *bucket, prefix string) []*upload {
	ups := make([]*upload, 0, len(b.uploads))
	for _, u := range b.uploads {
		if strings.HasPrefix(u.key, prefix) {
			ups = append(ups, u)
		}
	}
	sort.Slice(ups, func(i, j int) bool {
		if ups[i].key != ups[j].key {
			return ups[i].key < ups[j].key
		}
		return ups[i].id < ups[j].id
	})
	return ups
}

// page fills out with the page of ups (sorted) after the markers: uploads,
// and common prefixes when a delimiter is given, up to uq.max of them
// together. It returns the key (or common prefix) and upload ID the page
// ends with, the next page's markers if it is truncated.
func (uq uploadsQuery) page(ups []*upload, out *listUploadsResult) (lastKey, lastID string) {
	passedMarker := uq.keyMarker == ""
	lastPrefix := ""
	count := 0
	for _, u := range ups {
		if !passedMarker {
			// Past key-marker: keys after it, or (with upload-id-marker) the
			// same key's uploads after that upload.
			if u.key < uq.keyMarker || (u.key == uq.keyMarker && (uq.idMarker == "" || u.id <= uq.idMarker)) {
				continue
			}
			passedMarker = true
		}
		if uq.delimiter != "" {
			if j := strings.Index(u.key[len(uq.prefix):], uq.delimiter); j >= 0 {
				cp := u.key[:len(uq.prefix)+j+len(uq.delimiter)]
				if cp == lastPrefix || (uq.keyMarker != "" && cp <= uq.keyMarker) {
					continue
				}
				if count == uq.max {
					out.IsTruncated = true
					break
				}
				out.CommonPrefixes = append(out.CommonPrefixes, commonPrefixXML{Prefix: encodeIf(uq.urlEnc, cp)})
				lastPrefix, lastKey, lastID = cp, cp, ""
				count++
				continue
			}
		}
		if count == uq.max {
			out.IsTruncated = true
			break
		}
		out.Uploads = append(out.Uploads, uploadXML{Key: encodeIf(uq.urlEnc, u.key), UploadID: u.id, StorageClass: u.meta.storageClass, Initiated: isoTime(u.initiated)})
		lastKey, lastID = u.key, u.id
		count++
	}
	return lastKey, lastID
}
