package reconcile_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// rotatingKeys hand out old keys until Refresh, then new ones, as a secret
// rotated under a running process does.
type rotatingKeys struct {
	mu        sync.Mutex
	gen       uint64
	refreshes int
}

func (k *rotatingKeys) Keys() (transfer.OSSKeys, uint64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gen == 0 {
		return transfer.OSSKeys{AccessKeyID: "LTAI-old", AccessKeySecret: "old"}, 0, nil
	}
	return transfer.OSSKeys{AccessKeyID: "LTAI-new", AccessKeySecret: "new"}, k.gen, nil
}

func (k *rotatingKeys) Refresh(_ context.Context, seen uint64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gen == seen {
		k.gen++
		k.refreshes++
	}
	return nil
}

// TestListingFollowsRotatedKeys: a diff's listing whose keys OSS refuses
// reads them again and goes on, as the copies do.
func TestListingFollowsRotatedKeys(t *testing.T) {
	t.Parallel()
	emu := ossemu.New(ossemu.Options{Credentials: map[string]string{"LTAI-old": "old"}})
	url, err := emu.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	emu.CreateBucket("src")
	for _, k := range []string{"a", "b"} {
		if _, err := emu.PutObject("src", k, []byte(k), http.Header{}); err != nil {
			t.Fatal(err)
		}
	}
	keys := &rotatingKeys{}
	src, err := transfer.NewOSSSourceKeys(transfer.SourceConfig{Endpoint: url, Bucket: "src"}, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := transfer.NewS3Destination(context.Background(), transfer.DestinationConfig{Region: "us-east-1", Bucket: "dst",
		Endpoint: "http://127.0.0.1:1", AccessKeyID: "AK", SecretAccessKey: "SK"})
	if err != nil {
		t.Fatal(err)
	}
	sides, err := reconcile.NewTaskSides(&transfer.TaskRuntime{Task: &transfer.Task{Name: "t"}, Source: src, Destination: dst}, src, dst)
	if err != nil {
		t.Fatal(err)
	}

	emu.SetKey("LTAI-new", "new")
	emu.RevokeKey("LTAI-old")
	var got []string
	err = sides.Src.List(context.Background(), reconcile.Query{}, func(es []reconcile.Entry) error {
		for _, e := range es {
			got = append(got, e.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing after the rotation: %v", err)
	}
	if len(got) != 2 || keys.refreshes != 1 {
		t.Fatalf("listed %v with %d re-reads of the keys, want [a b] with 1", got, keys.refreshes)
	}
}
