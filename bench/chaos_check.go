package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/oss2s3/oss2s3/transfer"
)

// queueState is what is left to do, read from JetStream, the SQS emulator
// and the OSS emulator's webhook queue, not from oss2s3.
type queueState struct {
	jobs       uint64 // messages in the job stream
	pending    uint64 // of them, not yet delivered to a worker
	ackPending uint64 // delivered, not acknowledged (copies in flight, retries waiting)
	sqs        int    // SQS messages not yet deleted
	webhooks   bool   // webhook deliveries still queued
}

func (q queueState) empty() bool {
	return q.jobs == 0 && q.pending == 0 && q.ackPending == 0 && q.sqs == 0 && !q.webhooks
}

func (q queueState) String() string {
	return fmt.Sprintf("jobs=%d (undelivered %d, unacked %d) sqs=%d webhooks_queued=%v", q.jobs, q.pending, q.ackPending, q.sqs, q.webhooks)
}

func (b *chaosBed) queueState(ctx context.Context) (queueState, error) {
	var q queueState
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := b.js.Stream(cctx, transfer.JobStream)
	if err != nil {
		return q, err
	}
	q.jobs = s.CachedInfo().State.Msgs
	for _, l := range transfer.Lanes {
		c, err := b.js.Consumer(cctx, transfer.JobStream, l.Consumer)
		if err != nil {
			return q, err
		}
		ci := c.CachedInfo()
		q.pending += ci.NumPending
		q.ackPending += uint64(ci.NumAckPending) //nolint:gosec // G115: a count from the server, >= 0
	}
	st := b.sqs.Stats(b.queueURL)
	q.sqs = st.Visible + st.InFlight + st.Delayed
	wctx, wcancel := context.WithTimeout(ctx, time.Millisecond)
	q.webhooks = b.emu.WaitWebhooks(wctx) != nil
	wcancel()
	return q, nil
}

// drain waits until every event is delivered and every job done: the
// webhooks sent, the SQS queue and the job stream empty and nothing held by
// the consumer, twice in a row a second apart. It returns the state at the
// end, which is not empty if timeout passed first.
func (b *chaosBed) drain(ctx context.Context, timeout time.Duration) (queueState, time.Duration) {
	start := time.Now()
	var last queueState
	emptyTwice := 0
	lastLog := time.Now()
	for {
		q, err := b.queueState(ctx)
		if err == nil {
			last = q
			if q.empty() {
				emptyTwice++
			} else {
				emptyTwice = 0
			}
		}
		if emptyTwice >= 2 {
			return last, time.Since(start)
		}
		if time.Since(start) > timeout || ctx.Err() != nil {
			return last, time.Since(start)
		}
		if time.Since(lastLog) >= 15*time.Second {
			lastLog = time.Now()
			conv, pend := b.lag.counts()
			b.logf("drain: %s; changes at the destination %d, awaited %d", q, conv, pend)
		}
		time.Sleep(time.Second)
	}
}

// stuckJobs describes the jobs left in the stream (up to max).
func (b *chaosBed) stuckJobs(ctx context.Context, max int) []transfer.Job {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := b.js.Stream(cctx, transfer.JobStream)
	if err != nil {
		return nil
	}
	st := s.CachedInfo().State
	var out []transfer.Job
	for seq := st.FirstSeq; seq <= st.LastSeq && len(out) < max; seq++ {
		m, err := s.GetMsg(cctx, seq)
		if err != nil {
			continue
		}
		var j transfer.Job
		if json.Unmarshal(m.Data, &j) == nil {
			out = append(out, j)
		}
	}
	return out
}

// deadLetter is one message of the dead-letter stream.
type deadLetter struct {
	job      transfer.Job
	err      string
	attempts string
}

// deadLetters reads the whole dead-letter stream without consuming it.
func (b *chaosBed) deadLetters(ctx context.Context) ([]deadLetter, error) {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := b.js.Stream(cctx, transfer.DeadStream)
	if err != nil {
		return nil, err
	}
	st := s.CachedInfo().State
	var out []deadLetter
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(cctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		d := deadLetter{err: m.Header.Get(transfer.HeaderError), attempts: m.Header.Get(transfer.HeaderAttempts)}
		if err := json.Unmarshal(m.Data, &d.job); err != nil {
			d.job.Key = "(undecodable: " + err.Error() + ")"
		}
		out = append(out, d)
	}
	return out, nil
}

// openUploads lists the multipart uploads open in the destination bucket.
func (b *chaosBed) openUploads(ctx context.Context) ([]string, error) {
	var out []string
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(chaosDstBucket)}
	for {
		page, err := b.s3.Client.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list multipart uploads: %w", err)
		}
		for _, u := range page.Uploads {
			out = append(out, fmt.Sprintf("%s (upload %s, initiated %s)", aws.ToString(u.Key), aws.ToString(u.UploadId),
				aws.ToTime(u.Initiated).Format("15:04:05")))
		}
		if !aws.ToBool(page.IsTruncated) {
			return out, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

// problem is one key the end check found wrong, and why.
type problem struct{ key, why string }

func (p problem) String() string {
	if p.why == "" {
		return p.key
	}
	return p.key + ": " + p.why
}

// verdict is the end check of the destination against the source.
type verdict struct {
	objects   int       // source objects expected at the destination
	missing   []problem // source objects the destination lacks
	wrong     []problem // held with other bytes
	undeleted []problem // deleted at the source, still at the destination
	extra     []problem // at the destination, never at the source
	blocked   []problem // unfixable objects that reached the destination anyway
}

func (v verdict) lost() int { return len(v.missing) + len(v.wrong) + len(v.undeleted) + len(v.extra) }

// verify lists the source (through the emulator's OSS API) and the
// destination (versitygw directly), reads every destination object in full
// and compares its CRC-64 with the source's. The source listing must agree
// with the harness's own model of it, or the harness is wrong.
func (b *chaosBed) verify(ctx context.Context) (verdict, error) {
	var v verdict
	live, deleted, unfixable := b.src.snapshot()
	src, err := b.listSource()
	if err != nil {
		return v, err
	}
	if err := checkModel(src, live); err != nil {
		return v, err
	}
	dst, err := b.listDestination(ctx)
	if err != nil {
		return v, err
	}
	toRead := v.compare(live, deleted, unfixable, dst)
	if err := b.readBack(ctx, toRead, &v); err != nil {
		return v, err
	}
	v.sort()
	return v, nil
}

// checkModel reports a harness bug when the source's listing src differs
// from the harness's model live of it.
func checkModel(src, live map[string]srcVersion) error {
	for k, o := range src {
		m, ok := live[k]
		if !ok || !sameETag(m.etag, o.etag) || m.size != o.size {
			return fmt.Errorf("harness bug: the source holds %s (%d bytes, ETag %s) but the harness's model says %+v (present %v)", k, o.size, o.etag, m, ok)
		}
	}
	if len(src) != len(live) {
		return fmt.Errorf("harness bug: the source holds %d objects, the harness's model %d", len(src), len(live))
	}
	return nil
}

// listDestination lists the destination bucket: each key with its size.
func (b *chaosBed) listDestination(ctx context.Context) (map[string]int64, error) {
	dst := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(b.s3.Client, &s3.ListObjectsV2Input{Bucket: aws.String(chaosDstBucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list destination: %w", err)
		}
		for _, o := range page.Contents {
			dst[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	return dst, nil
}

// compare records in v what the destination listing dst lacks, holds with
// the wrong size, still holds after a deletion, never should have held or
// holds although unfixable; it returns the objects whose bytes are left to
// check.
func (v *verdict) compare(live map[string]srcVersion, deleted, unfixable map[string]bool, dst map[string]int64) []srcObject {
	var toRead []srcObject
	for k, o := range live {
		if unfixable[k] {
			if _, ok := dst[k]; ok {
				v.blocked = append(v.blocked, problem{key: k})
			}
			continue
		}
		v.objects++
		size, ok := dst[k]
		switch {
		case !ok:
			v.missing = append(v.missing, problem{key: k})
		case size != o.size:
			v.wrong = append(v.wrong, problem{k, fmt.Sprintf("%d bytes, the source has %d", size, o.size)})
		default:
			toRead = append(toRead, srcObject{Key: k, Size: o.size, ETag: o.etag, CRC64: o.crc})
		}
	}
	for k := range dst {
		if _, ok := live[k]; ok {
			continue
		}
		if deleted[k] {
			v.undeleted = append(v.undeleted, problem{key: k})
		} else {
			v.extra = append(v.extra, problem{key: k})
		}
	}
	return toRead
}

// readBack reads every object of toRead in full from the destination and
// records in v those whose bytes differ from the source's.
func (b *chaosBed) readBack(ctx context.Context, toRead []srcObject, v *verdict) error {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, o := range toRead {
		g.Go(func() error {
			err := verifyBytes(gctx, b.s3.Client, chaosDstBucket, o)
			if err != nil && gctx.Err() == nil {
				err = verifyBytes(gctx, b.s3.Client, chaosDstBucket, o) // once more: a read error is not a wrong copy
			}
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				mu.Lock()
				v.wrong = append(v.wrong, problem{o.Key, err.Error()})
				mu.Unlock()
			}
			return nil
		})
	}
	return g.Wait()
}

// sort orders every list of v by key.
func (v *verdict) sort() {
	for _, l := range [][]problem{v.missing, v.wrong, v.undeleted, v.extra, v.blocked} {
		slices.SortFunc(l, func(a, b problem) int { return strings.Compare(a.key, b.key) })
	}
}

// listSource lists the source bucket through the emulator's OSS API, with
// each object's CRC-64 from the emulator.
func (b *chaosBed) listSource() (map[string]srcVersion, error) {
	client, err := oss.New(b.ossURL, ossAccessKey, ossSecretKey)
	if err != nil {
		return nil, err
	}
	bucket, err := client.Bucket(chaosSrcBucket)
	if err != nil {
		return nil, err
	}
	out := map[string]srcVersion{}
	token := ""
	for {
		opts := []oss.Option{oss.MaxKeys(1000)}
		if token != "" {
			opts = append(opts, oss.ContinuationToken(token))
		}
		page, err := bucket.ListObjectsV2(opts...)
		if err != nil {
			return nil, fmt.Errorf("list source: %w", err)
		}
		for _, o := range page.Objects {
			info, _, ok := b.emu.Object(chaosSrcBucket, o.Key)
			if !ok {
				return nil, fmt.Errorf("source lists %s but does not hold it", o.Key)
			}
			out[o.Key] = srcVersion{size: o.Size, etag: strings.Trim(o.ETag, `"`), crc: info.CRC64}
		}
		if !page.IsTruncated {
			return out, nil
		}
		token = page.NextContinuationToken
	}
}

// logLines returns the last n lines of the replicas' logs that name key,
// oldest first, each prefixed with its replica.
func (b *chaosBed) logLines(key string, n int) []string {
	quoted, _ := json.Marshal(key)
	needle := `"key":` + string(quoted)
	var out []string
	for _, r := range b.replicas.rs {
		f, err := os.Open(r.logPath)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), needle) {
				out = append(out, r.name()+": "+sc.Text())
			}
		}
		f.Close()
	}
	// Lines of different replicas sort by their JSON time, which leads.
	slices.SortStableFunc(out, func(a, b string) int { return strings.Compare(a[4:], b[4:]) })
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
