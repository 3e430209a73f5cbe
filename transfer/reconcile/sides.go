package reconcile

// Sides: a task with the listers a diff of it reads, and what those listers
// need from the task's clients.

import (
	"context"
	"fmt"
	"slices"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/transfer"
)

// OSSBucket is a source whose bucket a diff lists with the OSS SDK
// (transfer.OSSSource).
type OSSBucket interface {
	Bucket() *oss.Bucket
	RequesterPays() bool
}

// keyedSource is a source whose requests are sent again once with keys
// read anew when OSS refuses them (transfer.OSSSource).
type keyedSource interface {
	WithKeys(ctx context.Context, request func() error) error
}

// S3Bucket is a destination whose bucket a diff lists with the S3 SDK
// (transfer.S3Destination).
type S3Bucket interface {
	Client() *s3.Client
	BucketName() string
}

// TaskSides is one task with what a diff of it needs.
type TaskSides struct {
	Runtime  *transfer.TaskRuntime
	Src, Dst Lister
	// List, if set, is the task's prefix list (source.prefix_list), read
	// at the start of each run instead of the task's prefixes.
	List *PrefixList
}

// NewTaskSides lists a task's source and destination through the clients
// its runtime copies with: src and dst are rt.Source and rt.Destination,
// seen as what a listing needs; they read the task's prefix list too.
func NewTaskSides(rt *transfer.TaskRuntime, src OSSBucket, dst S3Bucket) (*TaskSides, error) {
	lister := &OSSLister{Bucket: src.Bucket(), RequesterPays: src.RequesterPays()}
	if s, ok := src.(keyedSource); ok {
		lister.Send = s.WithKeys
	}
	ts := &TaskSides{Runtime: rt,
		Src: lister,
		Dst: &S3Lister{Client: dst.Client(), Bucket: dst.BucketName()}}
	if pl := rt.Task.Source.PrefixList; pl != "" {
		l, err := NewPrefixList(pl, src, dst)
		if err != nil {
			return nil, fmt.Errorf("task %s: source.prefix_list: %w", rt.Task.Name, err)
		}
		ts.List = l
	}
	return ts, nil
}

// Prefixes are the prefixes a run of the task with o lists, sorted and
// disjoint (see Disjoint): the run's own, else the task's list (read now,
// so that a list changed since the last run applies to this one), else
// the task's prefixes. None: the whole bucket.
func (ts *TaskSides) Prefixes(ctx context.Context, o Options) ([]string, error) {
	switch {
	case len(o.Prefixes) > 0:
		return Disjoint(slices.Clone(o.Prefixes)), nil
	case ts.List != nil:
		return ts.List.Read(ctx)
	}
	return Disjoint(slices.Clone(ts.Runtime.Task.Source.Prefixes)), nil
}

// Ranges are the listing ranges of a run of the task with o (see Prefixes).
func (ts *TaskSides) Ranges(ctx context.Context, o Options) ([]Range, error) {
	ps, err := ts.Prefixes(ctx, o)
	if err != nil {
		return nil, err
	}
	return rangesOf(ps), nil
}
