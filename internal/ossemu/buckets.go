package ossemu

import (
	"encoding/xml"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// bucket is one bucket's state; the Server's mutex guards it.
type bucket struct {
	name    string
	created time.Time
	objects map[string]*object
	uploads map[string]*upload
	index   keyIndex
	// gen, if set, replaces the objects in listings (see SetGenerated).
	gen *generated
	// requesterPays: requests must carry x-oss-request-payer: requester
	// (see SetRequesterPays).
	requesterPays bool
}

func newBucket(name string, now time.Time) *bucket {
	return &bucket{name: name, created: now.UTC().Truncate(time.Second), objects: map[string]*object{}, uploads: map[string]*upload{}}
}

// put stores o and returns the object it replaced, if any.
func (b *bucket) put(o *object) *object {
	old := b.objects[o.info.Key]
	if old == nil {
		b.index.add(o.info.Key)
	}
	b.objects[o.info.Key] = o
	return old
}

// remove deletes key and returns the object removed, if any.
func (b *bucket) remove(key string) *object {
	old := b.objects[key]
	if old != nil {
		delete(b.objects, key)
		b.index.stale++
	}
	return old
}

// sortedKeys returns every live key in UTF-8 byte order. The slice is
// shared: callers hold the Server's mutex while they read it.
func (b *bucket) sortedKeys() []string {
	b.index.settle(b.objects)
	return b.index.sorted
}

// keyIndex keeps the keys in byte order without re-sorting the whole bucket
// after every write: new keys wait in pending and are merged in by the next
// listing; deleted keys stay until a listing compacts them. A listing after
// writes costs O(n + p log p) once, every other page O(log n + page).
type keyIndex struct {
	sorted  []string
	pending []string
	stale   int
}

func (ix *keyIndex) add(key string) { ix.pending = append(ix.pending, key) }

func (ix *keyIndex) settle(live map[string]*object) {
	if len(ix.pending) == 0 && ix.stale == 0 {
		return
	}
	slices.Sort(ix.pending)
	merged := make([]string, 0, len(live))
	i, j := 0, 0
	last := ""
	emit := func(k string) {
		if _, ok := live[k]; ok && (len(merged) == 0 || k != last) {
			merged = append(merged, k)
			last = k
		}
	}
	for i < len(ix.sorted) || j < len(ix.pending) {
		switch {
		case j == len(ix.pending) || (i < len(ix.sorted) && ix.sorted[i] <= ix.pending[j]):
			emit(ix.sorted[i])
			i++
		default:
			emit(ix.pending[j])
			j++
		}
	}
	ix.sorted, ix.pending, ix.stale = merged, nil, 0
}

// bucketNameRE is OSS's rule: 3-63 characters, lower-case letters, digits
// and hyphens, starting and ending with a letter or digit.
var bucketNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

func (s *Server) putBucket(w http.ResponseWriter, q *request) *ossError {
	if !bucketNameRE.MatchString(q.bucket) {
		return &ossError{status: 400, code: "InvalidBucketName", message: "The specified bucket is not valid.", extra: errorExtra{BucketName: q.bucket}}
	}
	s.mu.Lock()
	s.createBucketLocked(q.bucket)
	s.mu.Unlock()
	w.Header().Set("Location", "/"+q.bucket)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deleteBucket(w http.ResponseWriter, q *request) *ossError {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[q.bucket]
	if b == nil {
		return errNoSuchBucket(q.bucket)
	}
	if len(b.objects) > 0 || len(b.uploads) > 0 {
		return &ossError{status: 409, code: "BucketNotEmpty", message: "The bucket you tried to delete is not empty.", extra: errorExtra{BucketName: q.bucket}}
	}
	delete(s.buckets, q.bucket)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) headBucket(w http.ResponseWriter, q *request) *ossError {
	if !s.bucketExists(q.bucket) {
		return errNoSuchBucket(q.bucket)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) bucketExists(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buckets[name] != nil
}

type ownerXML struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

var emulatorOwner = ownerXML{ID: "1234", DisplayName: "1234"}

type bucketXML struct {
	Name             string `xml:"Name"`
	Location         string `xml:"Location"`
	CreationDate     string `xml:"CreationDate"`
	ExtranetEndpoint string `xml:"ExtranetEndpoint"`
	IntranetEndpoint string `xml:"IntranetEndpoint"`
	Region           string `xml:"Region"`
	StorageClass     string `xml:"StorageClass"`
}

func (s *Server) bucketXML(b *bucket) bucketXML {
	return bucketXML{
		Name:             b.name,
		Location:         "oss-" + s.region,
		CreationDate:     isoTime(b.created),
		ExtranetEndpoint: "oss-" + s.region + ".aliyuncs.com",
		IntranetEndpoint: "oss-" + s.region + "-internal.aliyuncs.com",
		Region:           s.region,
		StorageClass:     "Standard",
	}
}

func (s *Server) listBuckets(w http.ResponseWriter, q *request) *ossError {
	prefix, marker := q.query.Get("prefix"), q.query.Get("marker")
	maxKeys, e := parseMaxKeys(q.query.Get("max-keys"), 100, 1000)
	if e != nil {
		return e
	}
	type result struct {
		XMLName     xml.Name    `xml:"ListAllMyBucketsResult"`
		Prefix      string      `xml:"Prefix,omitempty"`
		Marker      string      `xml:"Marker,omitempty"`
		MaxKeys     int         `xml:"MaxKeys,omitempty"`
		IsTruncated bool        `xml:"IsTruncated,omitempty"`
		NextMarker  string      `xml:"NextMarker,omitempty"`
		Owner       ownerXML    `xml:"Owner"`
		Buckets     []bucketXML `xml:"Buckets>Bucket"`
	}
	out := result{Prefix: prefix, Marker: marker, Owner: emulatorOwner}
	if q.query.Has("max-keys") {
		out.MaxKeys = maxKeys
	}
	s.mu.Lock()
	names := s.bucketNames(prefix, marker)
	for i, n := range names {
		if i == maxKeys {
			out.IsTruncated = true
			out.NextMarker = names[i-1]
			break
		}
		out.Buckets = append(out.Buckets, s.bucketXML(s.buckets[n]))
	}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, out)
	return nil
}

// lockBucket locks s.mu and returns the bucket named, for the caller to
// unlock; when there is no such bucket it unlocks and returns the error.
func (s *Server) lockBucket(name string) (*bucket, *ossError) {
	s.mu.Lock()
	b := s.buckets[name]
	if b == nil {
		s.mu.Unlock()
		return nil, errNoSuchBucket(name)
	}
	return b, nil
}

func (s *Server) getBucketInfo(w http.ResponseWriter, q *request) *ossError {
	b, e := s.lockBucket(q.bucket)
	if e != nil {
		return e
	}
	info := s.bucketXML(b)
	s.mu.Unlock()
	type bucketInfo struct {
		bucketXML
		ACL            string   `xml:"AccessControlList>Grant"`
		RedundancyType string   `xml:"DataRedundancyType"`
		Owner          ownerXML `xml:"Owner"`
	}
	type result struct {
		XMLName xml.Name   `xml:"BucketInfo"`
		Bucket  bucketInfo `xml:"Bucket"`
	}
	writeXML(w, http.StatusOK, result{Bucket: bucketInfo{bucketXML: info, ACL: "private", RedundancyType: "LRS", Owner: emulatorOwner}})
	return nil
}

// getBucketStat answers GetBucketStat: the bucket's object count and
// bytes stored (OSS updates them about hourly; here they are exact), the
// multipart uploads open, and the newest change. A generated bucket
// counts its formula's objects.
func (s *Server) getBucketStat(w http.ResponseWriter, q *request) *ossError {
	b, e := s.lockBucket(q.bucket)
	if e != nil {
		return e
	}
	type result struct {
		XMLName              xml.Name `xml:"BucketStat"`
		Storage              int64    `xml:"Storage"`
		ObjectCount          int64    `xml:"ObjectCount"`
		MultipartUploadCount int64    `xml:"MultipartUploadCount"`
		LiveChannelCount     int64    `xml:"LiveChannelCount"`
		LastModifiedTime     int64    `xml:"LastModifiedTime"`
		StandardStorage      int64    `xml:"StandardStorage"`
		StandardObjectCount  int64    `xml:"StandardObjectCount"`
	}
	var r result
	if g := b.gen; g != nil {
		for i := range g.Count {
			if g.present(i) {
				r.ObjectCount++
				r.Storage += GeneratedSize(i)
			}
			if g.extra(i) {
				r.ObjectCount++
				r.Storage += GeneratedSize(i)
			}
		}
		r.LastModifiedTime = g.modified.Unix()
	} else {
		for _, o := range b.objects {
			r.ObjectCount++
			r.Storage += o.info.Size
			r.LastModifiedTime = max(r.LastModifiedTime, o.info.LastModified.Unix())
		}
	}
	r.MultipartUploadCount = int64(len(b.uploads))
	s.mu.Unlock()
	r.StandardStorage, r.StandardObjectCount = r.Storage, r.ObjectCount
	writeXML(w, http.StatusOK, r)
	return nil
}

func (s *Server) getBucketLocation(w http.ResponseWriter, q *request) *ossError {
	return s.writeLocation(w, q, "")
}

// writeLocation answers GetBucketLocation, its LocationConstraint in the
// XML namespace ns (S3's) or none (OSS's).
func (s *Server) writeLocation(w http.ResponseWriter, q *request, ns string) *ossError {
	if !s.bucketExists(q.bucket) {
		return errNoSuchBucket(q.bucket)
	}
	type result struct {
		XMLName  xml.Name
		Location string `xml:",chardata"`
	}
	writeXML(w, http.StatusOK, result{XMLName: xml.Name{Space: ns, Local: "LocationConstraint"}, Location: "oss-" + s.region})
	return nil
}

// bucketNames are the names of the buckets with prefix that sort after
// `after`, in order. The caller holds s.mu.
func (s *Server) bucketNames(prefix, after string) []string {
	names := make([]string, 0, len(s.buckets))
	for n := range s.buckets {
		if strings.HasPrefix(n, prefix) && n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// isoTime formats t as OSS does in XML documents.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
