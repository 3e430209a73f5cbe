package ossemu

// Object operations beyond put, get, head and delete: copy, append,
// multi-delete, restore and tagging.

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc64"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

func (s *Server) deleteMultipleObjects(w http.ResponseWriter, q *request) *ossError {
	raw, e := readSmallBody(q.r, 2<<20)
	if e != nil {
		return e
	}
	if want := q.r.Header.Get("Content-MD5"); want != "" {
		sum := md5.Sum(raw)
		if want != base64.StdEncoding.EncodeToString(sum[:]) {
			return &ossError{status: 400, code: "InvalidDigest", message: "The Content-MD5 you specified was invalid."}
		}
	}
	var doc struct {
		Quiet   bool `xml:"Quiet"`
		Objects []struct {
			Key string `xml:"Key"`
		} `xml:"Object"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		return errMalformedXML(err)
	}
	if len(doc.Objects) == 0 || len(doc.Objects) > 1000 {
		return errMalformedXML(fmt.Errorf("%d objects, want 1 to 1000", len(doc.Objects)))
	}
	urlEnc := q.query.Get("encoding-type") == "url"
	type deleted struct {
		Key string `xml:"Key"`
	}
	type result struct {
		XMLName      xml.Name  `xml:"DeleteResult"`
		EncodingType string    `xml:"EncodingType,omitempty"`
		Deleted      []deleted `xml:"Deleted"`
	}
	out := result{}
	if urlEnc {
		out.EncodingType = "url"
	}
	b, e := s.lockBucket(q.bucket)
	if e != nil {
		return e
	}
	for _, obj := range doc.Objects {
		s.emitRemove("ObjectRemoved:DeleteObjects", q.bucket, q.id, obj.Key, b.remove(obj.Key))
		if !doc.Quiet {
			out.Deleted = append(out.Deleted, deleted{Key: encodeIf(urlEnc, obj.Key)})
		}
	}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, out)
	return nil
}

// copyObject serves PutObject with x-oss-copy-source within the emulator.
// The copy keeps the source's bytes, ETag and CRC64; with the default
// x-oss-metadata-directive COPY it keeps the source's content headers and
// user metadata too.
func (s *Server) copyObject(w http.ResponseWriter, q *request) *ossError {
	if e := validKey(q.key); e != nil {
		return e
	}
	src := strings.TrimPrefix(q.r.Header.Get("x-oss-copy-source"), "/")
	srcBucket, srcKeyEnc, ok := strings.Cut(src, "/")
	if srcKeyEnc, _, _ = strings.Cut(srcKeyEnc, "?"); !ok || srcKeyEnc == "" {
		return errInvalidArgument("x-oss-copy-source is invalid.")
	}
	srcKey, err := url.QueryUnescape(srcKeyEnc)
	if err != nil {
		return errInvalidArgument("x-oss-copy-source is not URL-encoded correctly.")
	}
	m, e := objectMetaFromRequest(q.r.Header)
	if e != nil {
		return e
	}
	so, e := s.lookup(srcBucket, srcKey)
	if e != nil {
		return e
	}
	if !s.readable(so) {
		return errInvalidObjectState(srcKey)
	}
	switch dir := q.r.Header.Get("x-oss-metadata-directive"); {
	case dir == "" || strings.EqualFold(dir, "COPY"):
		m.header = so.info.Header.Clone()
		m.meta = maps.Clone(so.info.Meta)
	case strings.EqualFold(dir, "REPLACE"):
	default:
		return errInvalidArgument("x-oss-metadata-directive must be COPY or REPLACE.")
	}
	if q.r.Header.Get("x-oss-tagging-directive") == "" || strings.EqualFold(q.r.Header.Get("x-oss-tagging-directive"), "Copy") {
		m.tags = maps.Clone(so.info.Tags)
	}
	o := s.newObject(q.key, so.data, so.md5, so.info.CRC64, so.info.ObjectType, m)
	o.info.ETag = so.info.ETag
	// A synthetic source stays synthetic; a symlink source copies the link
	// itself, not its target.
	o.info.Size = so.info.Size
	o.info.Synthetic, o.info.Seed, o.info.SymlinkTarget = so.info.Synthetic, so.info.Seed, so.info.SymlinkTarget
	if o.info.ObjectType == "Appendable" {
		o.info.ObjectType = "Normal"
	}
	if e := s.store(q, o, "ObjectCreated:CopyObject"); e != nil {
		return e
	}
	w.Header().Set("x-oss-hash-crc64ecma", strconv.FormatUint(o.info.CRC64, 10))
	type result struct {
		XMLName      xml.Name `xml:"CopyObjectResult"`
		LastModified string   `xml:"LastModified"`
		ETag         string   `xml:"ETag"`
	}
	writeXML(w, http.StatusOK, result{LastModified: isoTime(o.info.LastModified), ETag: quote(o.info.ETag)})
	return nil
}

// appendObject serves POST ?append&position=N. The ETag of an Appendable
// object is the MD5 of its whole content (OSS documents it only as "not
// the MD5 of the content"; the emulator needs some stable value).
func (s *Server) appendObject(w http.ResponseWriter, q *request) *ossError {
	if e := validKey(q.key); e != nil {
		return e
	}
	pos, err := strconv.ParseInt(q.query.Get("position"), 10, 64)
	if err != nil || pos < 0 {
		return errInvalidArgument("position is invalid.")
	}
	m, e := objectMetaFromRequest(q.r.Header)
	if e != nil {
		return e
	}
	if !s.bucketExists(q.bucket) {
		return errNoSuchBucket(q.bucket)
	}
	// The client seeds its CRC with the object's current CRC, so a sent
	// x-oss-hash-crc64ecma covers the whole object; check it after the append.
	sentCRC := q.r.Header.Get("x-oss-hash-crc64ecma")
	q.r.Header.Del("x-oss-hash-crc64ecma")
	b, e := readBody(q.r, 0)
	if e != nil {
		return e
	}
	bk, e := s.lockBucket(q.bucket)
	if e != nil {
		return e
	}
	old := bk.objects[q.key]
	var size int64
	if old != nil {
		size = old.info.Size
	}
	switch {
	case old != nil && old.info.ObjectType != "Appendable":
		s.mu.Unlock()
		return &ossError{status: 409, code: "ObjectNotAppendable", message: "The object is not appendable.", extra: errorExtra{Key: q.key}}
	case pos != size:
		s.mu.Unlock()
		return &ossError{status: 409, code: "PositionNotEqualToLength", message: "Position is not equal to file length.",
			header: map[string]string{"x-oss-next-append-position": strconv.FormatInt(size, 10)}}
	}
	newCRC := b.crc
	if old != nil {
		newCRC = crc64.Update(old.info.CRC64, crcTable, b.data)
	}
	if sentCRC != "" {
		if v, err := strconv.ParseUint(sentCRC, 10, 64); err != nil || v != newCRC {
			s.mu.Unlock()
			return &ossError{status: 400, code: "InvalidDigest", message: "The x-oss-hash-crc64ecma you specified does not match the object."}
		}
	}
	var o *object
	if old == nil {
		o = s.newObject(q.key, b.data, nil, b.crc, "Appendable", m)
		o.appendH = md5.New()
	} else {
		// Readers of old keep old.data[:old.Size]; appending in place only
		// writes past it.
		data := append(old.data, b.data...)
		info := old.info.clone()
		info.Size = int64(len(data))
		info.CRC64 = newCRC
		info.LastModified = s.now().UTC().Truncate(time.Second)
		o = &object{info: info, data: data, appendH: old.appendH}
	}
	o.appendH.Write(b.data)
	o.info.ETag = strings.ToUpper(hex.EncodeToString(o.appendH.Sum(nil)))
	s.emitPut("ObjectCreated:AppendObject", q.bucket, q.id, o, bk.put(o))
	s.mu.Unlock()
	w.Header().Set("x-oss-next-append-position", strconv.FormatInt(o.info.Size, 10))
	return writtenOK(w, o.info.ETag, o.info.CRC64)
}

// restoreObject starts or extends the restore of an archived object. It
// completes after Options.RestoreDelay and lasts the requested Days
// (default 1).
func (s *Server) restoreObject(w http.ResponseWriter, q *request) *ossError {
	raw, e := readSmallBody(q.r, 64<<10)
	if e != nil {
		return e
	}
	days := 1
	if len(bytes.TrimSpace(raw)) > 0 {
		var doc struct {
			Days int `xml:"Days"`
		}
		if err := xml.Unmarshal(raw, &doc); err != nil {
			return errMalformedXML(err)
		}
		if doc.Days > 0 {
			days = doc.Days
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, o, e := s.findLocked(q.bucket, q.key, false)
	if e != nil {
		return e
	}
	if !isArchived(o.info.StorageClass) {
		return &ossError{status: 400, code: "OperationNotSupported", message: "The operation is not supported for this resource.", extra: errorExtra{Key: q.key}}
	}
	now := s.now()
	rs := &o.restore
	switch {
	case !rs.readyAt.IsZero() && now.Before(rs.readyAt):
		return &ossError{status: 409, code: "RestoreAlreadyInProgress", message: "The restore operation is in progress.", extra: errorExtra{Key: q.key}}
	case !rs.readyAt.IsZero() && !now.After(rs.expires):
		rs.expires = now.Add(time.Duration(days) * 24 * time.Hour)
		w.WriteHeader(http.StatusOK)
	default:
		rs.readyAt = now.Add(s.opts.RestoreDelay)
		rs.expires = rs.readyAt.Add(time.Duration(days) * 24 * time.Hour)
		w.WriteHeader(http.StatusAccepted)
	}
	return nil
}

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type taggingXML struct {
	XMLName xml.Name `xml:"Tagging"`
	Tags    []tagXML `xml:"TagSet>Tag"`
}

func (s *Server) putObjectTagging(w http.ResponseWriter, q *request) *ossError {
	raw, e := readSmallBody(q.r, 64<<10)
	if e != nil {
		return e
	}
	var doc taggingXML
	if err := xml.Unmarshal(raw, &doc); err != nil {
		return errMalformedXML(err)
	}
	if len(doc.Tags) > maxTags {
		return errInvalidArgument("An object can have at most 10 tags.")
	}
	tags := make(map[string]string, len(doc.Tags))
	for _, t := range doc.Tags {
		tags[t.Key] = t.Value
	}
	return s.setTags(w, q, tags)
}

func (s *Server) deleteObjectTagging(w http.ResponseWriter, q *request) *ossError {
	return s.setTags(w, q, nil)
}

// setTags replaces the tag set; the object is otherwise unchanged (a new
// *object, so readers of the old one are unaffected).
func (s *Server) setTags(w http.ResponseWriter, q *request, tags map[string]string) *ossError {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, o, e := s.findLocked(q.bucket, q.key, false)
	if e != nil {
		return e
	}
	n := *o
	n.info = o.info.clone()
	n.info.Tags = tags
	b.objects[q.key] = &n
	if q.r.Method == http.MethodDelete {
		w.WriteHeader(http.StatusNoContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

func (s *Server) getObjectTagging(w http.ResponseWriter, q *request) *ossError {
	o, e := s.lookup(q.bucket, q.key)
	if e != nil {
		return e
	}
	out := taggingXML{}
	for _, k := range sortedMapKeys(o.info.Tags) {
		out.Tags = append(out.Tags, tagXML{Key: k, Value: o.info.Tags[k]})
	}
	writeXML(w, http.StatusOK, out)
	return nil
}
