package transfer_test

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

// TestJobWireFormat: jobs as the queue holds them (flat JSON, written by
// every version so far) decode into the envelope and the payload of their
// kind, and encode back to the same members and values, so that jobs
// queued before the payloads had types of their own still run, and jobs
// queued now still run on an older replica during a rolling upgrade.
func TestJobWireFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind  string
		wire  string // as queued: one member per field, no nesting
		check func(j transfer.Job) bool
	}{
		{transfer.KindConverge,
			`{"task":"photos","bucket":"src","key":"a/b.jpg","etag":"E1","size":12,"event":"ObjectCreated:PutObject","kind":"converge","origin":"oss_webhook","event_time":"2026-12-05T08:00:00Z","queued_at":"2026-12-05T08:00:01Z","attempts":2,"nonce":"n1","parent":"reconcile-r1","force":true}`,
			func(j transfer.Job) bool {
				return j.ObjectArgs == transfer.ObjectArgs{Bucket: "src", Key: "a/b.jpg", ETag: "E1", Size: 12, Event: "ObjectCreated:PutObject", Force: true} &&
					j.PartArgs == transfer.PartArgs{} && j.ShardArgs == transfer.ShardArgs{} && j.Attempts == 2 && j.Parent == "reconcile-r1"
			}},
		{transfer.KindPart,
			`{"task":"photos","bucket":"src","key":"giant","etag":"E-9","size":99,"kind":"part","upload_id":"up1","part":7,"redo":1,"nonce":"n2"}`,
			func(j transfer.Job) bool {
				return j.PartArgs == transfer.PartArgs{UploadID: "up1", Part: 7, Redo: 1} && j.Key == "giant" && j.Nonce == "n2"
			}},
		{transfer.KindReconcile,
			`{"task":"photos","bucket":"src","key":"reconcile:r1:3","kind":"reconcile","nonce":"reconcile-r1-3","shard":"{\"run\":\"r1\",\"n\":3}"}`,
			func(j transfer.Job) bool {
				return j.ShardArgs == transfer.ShardArgs{Shard: `{"run":"r1","n":3}`} && j.PartArgs == transfer.PartArgs{}
			}},
		{transfer.KindRemove,
			`{"task":"photos","bucket":"src","key":"gone","event":"ObjectRemoved:DeleteObject","kind":"remove","event_time":"2026-12-05T08:00:00Z","waits":1}`,
			func(j transfer.Job) bool {
				return j.ObjectArgs == transfer.ObjectArgs{Bucket: "src", Key: "gone", Event: "ObjectRemoved:DeleteObject"} && j.Waits == 1
			}},
	} {
		var j transfer.Job
		if err := json.Unmarshal([]byte(tc.wire), &j); err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		if j.Kind != tc.kind || j.Task != "photos" || !tc.check(j) {
			t.Errorf("%s: decoded %+v", tc.kind, j)
		}
		again, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		var was, is map[string]any
		if err := json.Unmarshal([]byte(tc.wire), &was); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(again, &is); err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(was, is, func(a, b any) bool { return a == b }) {
			t.Errorf("%s: encoded as\n%s\nwant the members of\n%s", tc.kind, again, tc.wire)
		}
	}
}
