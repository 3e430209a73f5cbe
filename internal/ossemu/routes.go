package ossemu

import (
	"net/http"
	"net/url"
	"slices"
)

// Where a request is aimed: the service (no bucket), a bucket (no key) or
// an object.
type routeLevel int

const (
	atService routeLevel = iota
	atBucket
	atObject
)

// routeRule is one line of a routing table: op is the operation of a
// request at level with method, every sub-resource in need present and no
// other sub-resource but those in need and also (the API's allowed
// function says what counts), and, where asked for, a copy-source header
// or list-type=2.
type routeRule struct {
	level   routeLevel
	method  string
	need    []string
	also    []string
	copy    bool
	listV2  bool
	ossOnly bool
	op      string
}

// routeTable is read in order: the first rule that fits names the
// operation, so a rule with sub-resources stands before the plain one.
type routeTable []routeRule

func (t routeTable) match(oss bool, method, bucket, key string, q url.Values, copySource bool, allowed func(names []string) bool) string {
	level := atObject
	switch {
	case bucket == "":
		level = atService
	case key == "":
		level = atBucket
	}
	for _, r := range t {
		if r.level != level || (r.ossOnly && !oss) || r.method != method || (r.copy && !copySource) || (r.listV2 && q.Get("list-type") != "2") {
			continue
		}
		if slices.ContainsFunc(r.need, func(n string) bool { return !q.Has(n) }) {
			continue
		}
		if allowed(slices.Concat(r.need, r.also)) {
			return r.op
		}
	}
	return "Unknown"
}

// routes are the operations of both APIs; ossOnly marks those S3 lacks.
// The names in also that are no S3 sub-resource (continuation-token,
// response-*, sequential) change nothing for S3, whose allowed function
// only looks at its own sub-resources.
var routes = routeTable{
	{level: atService, method: http.MethodGet, op: "ListBuckets"},

	{level: atBucket, method: http.MethodPut, op: "PutBucket"},
	{level: atBucket, method: http.MethodDelete, op: "DeleteBucket"},
	{level: atBucket, method: http.MethodHead, op: "HeadBucket"},
	{level: atBucket, method: http.MethodGet, need: []string{"uploads"}, op: "ListMultipartUploads"},
	{level: atBucket, method: http.MethodGet, need: []string{"bucketInfo"}, ossOnly: true, op: "GetBucketInfo"},
	{level: atBucket, method: http.MethodGet, need: []string{"location"}, op: "GetBucketLocation"},
	{level: atBucket, method: http.MethodGet, need: []string{"stat"}, ossOnly: true, op: "GetBucketStat"},
	{level: atBucket, method: http.MethodGet, listV2: true, also: []string{"continuation-token"}, op: "ListObjectsV2"},
	{level: atBucket, method: http.MethodGet, op: "ListObjects"},
	{level: atBucket, method: http.MethodPost, need: []string{"delete"}, op: "DeleteMultipleObjects"},

	{level: atObject, method: http.MethodPut, need: []string{"partNumber", "uploadId"}, copy: true, op: "UploadPartCopy"},
	{level: atObject, method: http.MethodPut, need: []string{"partNumber", "uploadId"}, op: "UploadPart"},
	{level: atObject, method: http.MethodPut, need: []string{"tagging"}, op: "PutObjectTagging"},
	{level: atObject, method: http.MethodPut, need: []string{"symlink"}, ossOnly: true, op: "PutSymlink"},
	{level: atObject, method: http.MethodPut, copy: true, op: "CopyObject"},
	{level: atObject, method: http.MethodPut, op: "PutObject"},
	{level: atObject, method: http.MethodGet, need: []string{"uploadId"}, op: "ListParts"},
	{level: atObject, method: http.MethodGet, need: []string{"tagging"}, op: "GetObjectTagging"},
	{level: atObject, method: http.MethodGet, need: []string{"symlink"}, ossOnly: true, op: "GetSymlink"},
	{level: atObject, method: http.MethodGet, also: []string{"response-*"}, op: "GetObject"},
	{level: atObject, method: http.MethodHead, need: []string{"objectMeta"}, ossOnly: true, op: "GetObjectMeta"},
	{level: atObject, method: http.MethodHead, op: "HeadObject"},
	{level: atObject, method: http.MethodDelete, need: []string{"uploadId"}, op: "AbortMultipartUpload"},
	{level: atObject, method: http.MethodDelete, need: []string{"tagging"}, op: "DeleteObjectTagging"},
	{level: atObject, method: http.MethodDelete, op: "DeleteObject"},
	{level: atObject, method: http.MethodPost, need: []string{"uploads"}, also: []string{"sequential"}, op: "InitiateMultipartUpload"},
	{level: atObject, method: http.MethodPost, need: []string{"uploadId"}, op: "CompleteMultipartUpload"},
	{level: atObject, method: http.MethodPost, need: []string{"append"}, also: []string{"position"}, ossOnly: true, op: "AppendObject"},
	{level: atObject, method: http.MethodPost, need: []string{"restore"}, op: "RestoreObject"},
}
