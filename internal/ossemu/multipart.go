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
	raw, e := readSmallBody(q.r, 4<<20)
	if e != nil {
		return e
	}
	completeAll := strings.EqualFold(q.r.Header.Get("x-oss-complete-all"), "yes")
	var doc struct {
		Parts []struct {
			PartNumber int    `xml:"PartNumber"`
			ETag       string `xml:"ETag"`
		} `xml:"Part"`
	}
	if !completeAll {
		if err := xml.Unmarshal(raw, &doc); err != nil {
			return errMalformedXML(err)
		}
		if len(doc.Parts) == 0 {
			return errMalformedXML(fmt.Errorf("no parts"))
		}
	} else if len(raw) > 0 {
		return errInvalidArgument("With x-oss-complete-all: yes the request body must be empty.")
	}
	minPart := s.opts.MinPartSize
	if minPart == 0 {
		minPart = defaultMinPartSize
	}

	s.mu.Lock()
	b, u, e := s.findUpload(q)
	if e != nil {
		s.mu.Unlock()
		return e
	}
	var chosen []*part
	if completeAll {
		for _, n := range sortedPartNumbers(u) {
			chosen = append(chosen, u.parts[n])
		}
		if len(chosen) == 0 {
			s.mu.Unlock()
			return errMalformedXML(fmt.Errorf("the upload has no parts"))
		}
	} else {
		prev := 0
		for _, dp := range doc.Parts {
			if dp.PartNumber <= prev {
				s.mu.Unlock()
				return &ossError{status: 400, code: "InvalidPartOrder", message: "The list of parts was not in ascending order. Parts must be ordered by part number.", extra: errorExtra{UploadID: u.id}}
			}
			prev = dp.PartNumber
			p := u.parts[dp.PartNumber]
			if p == nil || !strings.EqualFold(strings.Trim(dp.ETag, `"`), p.etag()) {
				s.mu.Unlock()
				return &ossError{status: 400, code: "InvalidPart", message: "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.",
					extra: errorExtra{UploadID: u.id, PartNumber: strconv.Itoa(dp.PartNumber), ETag: dp.ETag}}
			}
			chosen = append(chosen, p)
		}
	}
	for i, p := range chosen {
		if minPart > 0 && i < len(chosen)-1 && int64(len(p.data)) < minPart {
			s.mu.Unlock()
			return &ossError{status: 400, code: "EntityTooSmall", message: "Your proposed upload is smaller than the minimum allowed size.",
				extra: errorExtra{UploadID: u.id, PartNumber: strconv.Itoa(p.number)}}
		}
	}
	if strings.EqualFold(q.r.Header.Get("x-oss-forbid-overwrite"), "true") && b.objects[q.key] != nil {
		s.mu.Unlock()
		return &ossError{status: 409, code: "FileAlreadyExists", message: "The object you specified already exists and can not be overwritten.", extra: errorExtra{Key: q.key}}
	}
	var size int
	for _, p := range chosen {
		size += len(p.data)
	}
	data := make([]byte, 0, size)
	etags := md5.New()
	var crc uint64
	for _, p := range chosen {
		data = append(data, p.data...)
		etags.Write(p.md5)
		crc = crc64.Update(crc, crcTable, p.data)
	}
	o := s.newObject(q.key, data, nil, crc, "Multipart", u.meta)
	o.info.ETag = strings.ToUpper(hex.EncodeToString(etags.Sum(nil))) + "-" + strconv.Itoa(len(chosen))
	s.emitPut("ObjectCreated:CompleteMultipartUpload", q.bucket, q.id, o, b.put(o))
	delete(b.uploads, u.id)
	s.mu.Unlock()

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
	return nil
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

// listMultipartUploads lists uploads in progress by key, then upload ID,
// with key-marker/upload-id-marker paging.
func (s *Server) listMultipartUploads(w http.ResponseWriter, q *request) *ossError {
	v := q.query
	maxUploads, e := parseMaxKeys(v.Get("max-uploads"), 1000, 1000)
	if e != nil {
		return e
	}
	prefix, delimiter, keyMarker, idMarker := v.Get("prefix"), v.Get("delimiter"), v.Get("key-marker"), v.Get("upload-id-marker")
	urlEnc := v.Get("encoding-type") == "url"
	type uploadXML struct {
		Key          string `xml:"Key"`
		UploadID     string `xml:"UploadId"`
		StorageClass string `xml:"StorageClass"`
		Initiated    string `xml:"Initiated"`
	}
	type result struct {
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
	b, e := s.lockBucket(q.bucket)
	if e != nil {
		return e
	}
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
	out := result{Bucket: q.bucket, KeyMarker: encodeIf(urlEnc, keyMarker), UploadIDMarker: idMarker,
		Delimiter: encodeIf(urlEnc, delimiter), Prefix: encodeIf(urlEnc, prefix), MaxUploads: maxUploads}
	if urlEnc {
		out.EncodingType = "url"
	}
	passedMarker := keyMarker == ""
	lastPrefix := ""
	count := 0
	lastKey, lastID := "", ""
	for _, u := range ups {
		if !passedMarker {
			// Past key-marker: keys after it, or (with upload-id-marker) the
			// same key's uploads after that upload.
			if u.key < keyMarker || (u.key == keyMarker && (idMarker == "" || u.id <= idMarker)) {
				continue
			}
			passedMarker = true
		}
		if delimiter != "" {
			if j := strings.Index(u.key[len(prefix):], delimiter); j >= 0 {
				cp := u.key[:len(prefix)+j+len(delimiter)]
				if cp == lastPrefix || (keyMarker != "" && cp <= keyMarker) {
					continue
				}
				if count == maxUploads {
					out.IsTruncated = true
					break
				}
				out.CommonPrefixes = append(out.CommonPrefixes, commonPrefixXML{Prefix: encodeIf(urlEnc, cp)})
				lastPrefix, lastKey, lastID = cp, cp, ""
				count++
				continue
			}
		}
		if count == maxUploads {
			out.IsTruncated = true
			break
		}
		out.Uploads = append(out.Uploads, uploadXML{Key: encodeIf(urlEnc, u.key), UploadID: u.id, StorageClass: u.meta.storageClass, Initiated: isoTime(u.initiated)})
		lastKey, lastID = u.key, u.id
		count++
	}
	s.mu.Unlock()
	if out.IsTruncated {
		out.NextKeyMarker, out.NextUploadIDMarker = encodeIf(urlEnc, lastKey), lastID
	}
	writeXML(w, http.StatusOK, out)
	return nil
}
