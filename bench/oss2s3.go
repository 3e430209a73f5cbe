package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/metrics"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
)

const (
	webhookSecret = "bench-webhook-secret-0123456789abcdef"
	benchTask     = "bench"
	// eventsPerDocument is how many records one POST carries, as an OSS
	// trigger batching events would.
	eventsPerDocument = 100
	// eventPosters is how many documents are in flight at once.
	eventPosters = 4
)

// buildOSS2S3 builds the server binary from the module at root into dir.
func buildOSS2S3(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "oss2s3")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./server")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./server: %w\n%s", err, out)
	}
	return bin, nil
}

// treeRevision describes the source tree the binary is built from: the
// commit, and whether files differ from it (others may be mid-edit).
func treeRevision(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown revision (not a git checkout?)"
	}
	rev := strings.TrimSpace(string(out))
	status, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	switch {
	case err != nil:
		return rev
	case len(bytes.TrimSpace(status)) > 0:
		return rev + " + uncommitted changes to tracked files"
	default:
		return rev
	}
}

// oss2s3Run is one oss2s3 process with a fresh data directory, copying one
// source bucket to one destination bucket.
type oss2s3Run struct {
	addr string
	proc *process
}

// oss2s3Config is what one run needs to write its configuration.
type oss2s3Config struct {
	DataDir   string
	OSSURL    string
	SrcBucket string
	S3URL     string
	CAFile    string
	DstBucket string
	// Workers is a YAML flow mapping for the workers section, e.g.
	// "{concurrency: 16}"; empty keeps every default.
	Workers string
	// TaskOptions is a YAML flow mapping for the task's options, e.g.
	// "{compare: false}"; empty keeps every default.
	TaskOptions string
	// Env is added to the process's environment (OSS2S3_CPUPROFILE=...).
	Env []string
}

func (c oss2s3Config) yaml(listen string) string {
	workers := ""
	if strings.TrimSpace(c.Workers) != "" {
		workers = "workers: " + c.Workers + "\n"
	}
	options := ""
	if strings.TrimSpace(c.TaskOptions) != "" {
		options = "    options: " + c.TaskOptions + "\n"
	}
	return fmt.Sprintf(`listen: %s
data_dir: %s
log: {level: warn, format: text}
webhook:
  secrets: ["${BENCH_WEBHOOK_SECRET}"]
%stasks:
  - name: %s
    source:
      endpoint: %s
      region: %s
      bucket: %s
      access_key_id: ${BENCH_OSS_AK}
      access_key_secret: ${BENCH_OSS_SK}
    destination:
      region: %s
      bucket: %s
      endpoint: %s
      ca_file: %s
      access_key_id: ${BENCH_S3_AK}
      secret_access_key: ${BENCH_S3_SK}
`, listen, c.DataDir, workers, benchTask, c.OSSURL, ossRegion, c.SrcBucket, s3Region, c.DstBucket, c.S3URL, c.CAFile) + options
}

// startOSS2S3 writes the configuration and starts `oss2s3 serve`, returning
// once /readyz answers 200.
func startOSS2S3(ctx context.Context, bin string, c oss2s3Config, logPath string) (*oss2s3Run, error) {
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return nil, err
	}
	addr, err := s3test.FreeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := c.DataDir + ".yaml"
	if err := os.WriteFile(cfgPath, []byte(c.yaml(addr)), 0o600); err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"BENCH_WEBHOOK_SECRET="+webhookSecret,
		"BENCH_OSS_AK="+ossAccessKey, "BENCH_OSS_SK="+ossSecretKey,
		"BENCH_S3_AK="+s3AccessKey, "BENCH_S3_SK="+s3SecretKey)
	env = append(env, c.Env...)
	p, err := startProcess(bin, []string{"serve", "--config", cfgPath}, env, logPath)
	if err != nil {
		return nil, err
	}
	r := &oss2s3Run{addr: addr, proc: p}
	if err := waitReady(ctx, p, addr); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *oss2s3Run) stop() error {
	if r == nil {
		return nil
	}
	return r.proc.stop(15 * time.Second)
}

// postEvents sends one ObjectCreated:PutObject record per object to
// POST /v1/events/oss, signed, eventsPerDocument to a document, as the
// Function Compute function would. It retries a 503 after its Retry-After.
func (r *oss2s3Run) postEvents(ctx context.Context, bucket string, objs []srcObject) error {
	var docs [][]byte
	now := time.Now()
	for start := 0; start < len(objs); start += eventsPerDocument {
		var doc ossevent.Document
		for _, o := range objs[start:min(start+eventsPerDocument, len(objs))] {
			doc.Events = append(doc.Events, ossevent.NewRecord("ObjectCreated:PutObject", ossRegion, bucket,
				o.Key, o.ETag, o.Size, "application/octet-stream", now))
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		docs = append(docs, b)
	}
	url := "http://" + r.addr + "/v1/events/oss"
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(eventPosters)
	for _, body := range docs {
		g.Go(func() error { return postSigned(ctx, url, body) })
	}
	return g.Wait()
}

func postSigned(ctx context.Context, url string, body []byte) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(signature.Header, signature.Sign(webhookSecret, time.Now(), body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("post events: %w", err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted:
			return nil
		case resp.StatusCode == http.StatusServiceUnavailable && attempt < 100:
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			return fmt.Errorf("post events: %s: %s", resp.Status, bytes.TrimSpace(msg))
		}
	}
}

// waitDone polls /metrics until the task's finished jobs (copied, plus
// skipped where that result exists) reach n, and returns the counts then.
// It fails at once on a dead letter, and after timeout.
//
// A scrape costs the process whose CPU is measured (every collector runs,
// the process collector reads /proc: about 0.5 ms of CPU), and rclone is
// never polled: so the polls are as far apart as the clock's precision
// allows, pollShare of the time waited so far (the clock stops at most
// that share late, which only lowers oss2s3's rate), from pollMin to
// pollMax.
func (r *oss2s3Run) waitDone(ctx context.Context, n int, timeout time.Duration) (objectCounts, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	tick := time.NewTimer(pollMin)
	defer tick.Stop()
	var last objectCounts
	for {
		c, err := r.counts(ctx)
		if err == nil {
			last = c
			if c.dead > 0 {
				return c, fmt.Errorf("oss2s3 dead-lettered %d job(s); counts %v; log:\n%s", c.dead, c.byResult, r.proc.tail())
			}
			if c.done >= n {
				return c, nil
			}
		}
		switch {
		case r.proc.exited():
			return last, fmt.Errorf("oss2s3 exited: %v; log:\n%s", r.proc.err, r.proc.tail())
		case time.Now().After(deadline):
			return last, fmt.Errorf("oss2s3 finished %d of %d jobs in %v (counts %v, last error %v); log:\n%s",
				last.done, n, timeout, last.byResult, err, r.proc.tail())
		}
		select {
		case <-tick.C:
			tick.Reset(pollInterval(time.Since(start)))
		case <-ctx.Done():
			return last, ctx.Err()
		}
	}
}

// The polls of waitDone: pollShare of the time waited so far apart, from
// pollMin to pollMax.
const (
	pollShare = 0.01
	pollMin   = 20 * time.Millisecond
	pollMax   = 100 * time.Millisecond
)

func pollInterval(waited time.Duration) time.Duration {
	return min(max(time.Duration(float64(waited)*pollShare), pollMin), pollMax)
}

// objectCounts is the task's oss2s3_objects_total by result.
type objectCounts struct {
	byResult map[string]int
	done     int // copied + skipped
	dead     int // failed for good: dead-lettered
	retried  int // attempts that failed and were tried again
}

func countsOf(by map[string]int) objectCounts {
	return objectCounts{byResult: by, done: by[metrics.CopyCopied] + by[metrics.CopySkipped],
		dead: by[metrics.CopyFailed], retried: by[metrics.CopyRetried]}
}

func (r *oss2s3Run) counts(ctx context.Context) (objectCounts, error) {
	// Only the one family (client_golang's name[] filter), uncompressed:
	// polled every 20 ms, formatting every family and gzip would be the
	// benchmark's own cost inside the process whose CPU it measures.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+"/metrics?name[]=oss2s3_objects_total", nil)
	if err != nil {
		return objectCounts{}, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return objectCounts{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return objectCounts{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	by, err := parseObjectsTotal(resp.Body, benchTask)
	if err != nil {
		return objectCounts{}, err
	}
	return countsOf(by), nil
}

var labelRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// parseObjectsTotal reads oss2s3_objects_total{task=task,result=...} from a
// Prometheus text exposition.
func parseObjectsTotal(r io.Reader, task string) (map[string]int, error) {
	out := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "oss2s3_objects_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		var gotTask, result string
		for _, m := range labelRE.FindAllStringSubmatch(labels, -1) {
			switch m[1] {
			case "task":
				gotTask = m[2]
			case "result":
				result = m[2]
			}
		}
		if gotTask != task || result == "" {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: %q: %w", sc.Text(), err)
		}
		out[result] = int(v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("metrics: no oss2s3_objects_total for task " + task)
	}
	return out, nil
}
