package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/oss2s3/oss2s3/internal/sqsemu"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// fcOptions are the flags of `bench fc`.
type fcOptions struct {
	starts int
	modes  []string
	dir    string
	seed   bool
}

func parseFCFlags(args []string, stderr io.Writer) (fcOptions, error) {
	var o fcOptions
	fs := flag.NewFlagSet("bench fc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./bench fc [flags]\n\n"+
			"Builds the Function Compute function as aliyun-fc/build.sh does (linux/amd64, CGO_ENABLED=0,\n"+
			"-trimpath -ldflags=\"-s -w\"), zips it as code.zip, then starts it -starts times in each mode\n"+
			"against a local sink (webhook: an HTTP server answering 202; sqs: the SQS emulator) and\n"+
			"measures the cold start: from process start to the first answered POST /invoke (200).\n"+
			"Prints, as its last line (webhook mode):\n"+
			"  fc binary_bytes=N cold_start_ms_p50=X cold_start_ms_p99=Y\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.starts, "starts", 20, "process starts per mode")
	modes := fs.String("modes", "sqs,webhook", "comma-separated modes to measure; webhook makes the last line")
	fs.StringVar(&o.dir, "dir", "", "where to build (default $TMPDIR)")
	fs.BoolVar(&o.seed, "seed", true, "also time the seed's Python function (python3 with boto3, the handler of the DTH tutorial verbatim) against the SQS emulator, if python3 and boto3 are installed")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.starts < 1 {
		return o, errors.New("-starts must be at least 1")
	}
	for _, m := range strings.Split(*modes, ",") {
		switch m = strings.TrimSpace(m); m {
		case "webhook", "sqs":
			if !slices.Contains(o.modes, m) {
				o.modes = append(o.modes, m)
			}
		default:
			return o, fmt.Errorf("-modes: %q is neither webhook nor sqs", m)
		}
	}
	if !slices.Contains(o.modes, "webhook") {
		return o, errors.New("-modes must include webhook (it makes the last line)")
	}
	return o, nil
}

func runFC(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFCFlags(args, stderr)
	if err != nil {
		return err
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return fmt.Errorf("the function is built for linux/amd64 (FC's platform) and run here: this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	dir, err := os.MkdirTemp(o.dir, "bench-fc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bin, zipBytes, err := buildFunction(ctx, dir)
	if err != nil {
		return err
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# %s %s/%s, %d CPUs; bootstrap %d bytes, code.zip %d bytes\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), fi.Size(), zipBytes)

	doc, err := fcDocument()
	if err != nil {
		return err
	}
	var webhook []time.Duration
	for _, mode := range o.modes {
		env, stop, err := fcSink(mode)
		if err != nil {
			return err
		}
		ds, err := coldStarts(ctx, bin, env, doc, o.starts)
		stop()
		if err != nil {
			return fmt.Errorf("%s mode: %w", mode, err)
		}
		slices.Sort(ds)
		p50, p99 := percentile(ds, 0.50), percentile(ds, 0.99)
		fmt.Fprintf(stdout, "fc mode=%s starts=%d cold_start_ms_p50=%.1f cold_start_ms_p99=%.1f min_ms=%.1f max_ms=%.1f\n",
			mode, len(ds), ms(p50), ms(p99), ms(ds[0]), ms(ds[len(ds)-1]))
		if mode == "webhook" {
			webhook = ds
		}
	}
	if o.seed {
		if err := seedColdStarts(ctx, dir, doc, o.starts, stdout); err != nil {
			return fmt.Errorf("seed function: %w", err)
		}
	}
	fmt.Fprintf(stdout, "fc binary_bytes=%d cold_start_ms_p50=%.1f cold_start_ms_p99=%.1f\n",
		fi.Size(), ms(percentile(webhook, 0.50)), ms(percentile(webhook, 0.99)))
	return nil
}

// buildFunction builds bootstrap and code.zip in dir as build.sh does and
// returns the binary's path and the zip's size.
func buildFunction(ctx context.Context, dir string) (string, int64, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return "", 0, fmt.Errorf("run from the oss2s3 module (go env GOMOD: %q, %v)", out, err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./aliyun-fc")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", 0, fmt.Errorf("build aliyun-fc: %v\n%s", err, b)
	}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	fi, err := os.Stat(bin)
	if err != nil {
		return "", 0, err
	}
	h, err := zip.FileInfoHeader(fi)
	if err != nil {
		return "", 0, err
	}
	h.Method = zip.Deflate
	w, err := zw.CreateHeader(h)
	if err != nil {
		return "", 0, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", 0, err
	}
	if _, err := w.Write(data); err != nil {
		return "", 0, err
	}
	if err := zw.Close(); err != nil {
		return "", 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "code.zip"), zb.Bytes(), 0o644); err != nil {
		return "", 0, err
	}
	return bin, int64(zb.Len()), nil
}

// fcSink starts what the function delivers to in mode and returns the
// function's environment.
func fcSink(mode string) (map[string]string, func(), error) {
	if mode == "webhook" {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusAccepted)
		}))
		return map[string]string{"OSS2S3_GATEWAY_URL": srv.URL, "OSS2S3_WEBHOOK_SECRET": "bench-secret"}, srv.Close, nil
	}
	const ak, sk = "BENCHFCACCESSKEY", "bench-fc-secret"
	q := sqsemu.New(sqsemu.Options{Credentials: map[string]string{ak: sk}, Region: "us-west-2"})
	endpoint, err := q.Start("127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	url := q.CreateQueue("bench-fc", nil)
	return map[string]string{
		"OSS2S3_MODE": "sqs", "OSS2S3_SQS_FORMAT": "event", "OSS2S3_SQS_QUEUE_URL": url, "OSS2S3_SQS_REGION": "us-west-2",
		"OSS2S3_SQS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk,
	}, func() { q.Close() }, nil
}

func fcDocument() ([]byte, error) {
	now := time.Now()
	return json.Marshal(ossevent.Document{Events: []ossevent.Record{
		ossevent.NewRecord("ObjectCreated:PutObject", "cn-hangzhou", "src", "bench/cold-start.txt", "9E107D9D372BB6826BD81D3542A419D6", 1024, "text/plain", now),
	}})
}

// coldStarts starts the function n times and measures, each time, process
// start to the first 200 answer to POST /invoke (the request is retried
// while nothing listens, as FC waits for the port).
func coldStarts(ctx context.Context, bin string, env map[string]string, doc []byte, n int) ([]time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	var out []time.Duration
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ln.Close()
		cmd := exec.Command(bin)
		cmd.Env = []string{"FC_CUSTOM_LISTEN_PORT=" + port}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var logs bytes.Buffer
		cmd.Stderr = &logs
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		d, err := firstAnswer(ctx, client, "http://127.0.0.1:"+port+"/invoke", doc, fmt.Sprintf("bench-%d", i), start)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if err != nil {
			return nil, fmt.Errorf("start %d: %w\n%s", i, err, logs.String())
		}
		out = append(out, d)
	}
	return out, nil
}

func firstAnswer(ctx context.Context, client *http.Client, url string, doc []byte, reqID string, start time.Time) (time.Duration, error) {
	deadline := start.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(doc))
		if err != nil {
			return 0, err
		}
		req.Header.Set("x-fc-request-id", reqID)
		req.Header.Set("x-fc-function-name", "oss2s3-forwarder")
		req.Header.Set("x-fc-invocation-type", "Async")
		resp, err := client.Do(req)
		if err != nil {
			time.Sleep(200 * time.Microsecond) // not listening yet
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("invoke answered %d: %s", resp.StatusCode, body)
		}
		return d, nil
	}
	return 0, errors.New("no answer within 10s")
}

// seedHandler is the seed's function, index.py of the Data Transfer Hub
// OSS -> S3 tutorial (shared/seed/), verbatim.
const seedHandler = `import json
import logging
import os
import boto3


def handler(event, context):
    logger = logging.getLogger()
    logger.setLevel('INFO')
    evt = json.loads(event)
    if 'events' in evt and len(evt['events']) == 1:
        evt = evt['events'][0]
        logger.info('Got event {}'.format(evt['eventName']))
        obj = evt['oss']['object']
        # logger.info(obj)
        ak = os.environ['ACCESS_KEY']
        sk = os.environ['SECRET_KEY']
        queue_url = os.environ['QUEUE_URL']
        region_name = os.environ['REGION_NAME']
        # minimum info of a message
        obj_msg = {
            'key': obj['key'],
            'size': obj['size']
        }
        # start sending the msg
        sqs = boto3.client('sqs', region_name=region_name,
                        aws_access_key_id=ak, aws_secret_access_key=sk)
        try:
            sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=json.dumps(obj_msg)
            )
        except Exception as e:
            logger.error(
                'Unable to send the message to Amazon SQS, Exception:', e)
    else:
        logger.warning('Unknown Message '+evt)

    return 'Done'
`

// seedDriver stands in for FC's Python runtime: import the handler's
// module (boto3 with it), call it once with the event, say when it returned.
const seedDriver = `import sys
sys.path.insert(0, sys.argv[1])
import index
index.handler(sys.stdin.read(), None)
print("returned", flush=True)
`

// seedColdStarts times the seed's function the way coldStarts times ours:
// from starting python3 to the handler's return, each start checked to
// have put its message in the queue (the seed logs failures and returns
// "Done" anyway).
func seedColdStarts(ctx context.Context, dir string, doc []byte, n int, stdout io.Writer) error {
	if err := exec.CommandContext(ctx, "python3", "-c", "import boto3").Run(); err != nil {
		fmt.Fprintf(stdout, "fc seed=python skipped: python3 with boto3 is not installed (%v)\n", err)
		return nil
	}
	seedDir := filepath.Join(dir, "seed")
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(seedDir, "index.py"), []byte(seedHandler), 0o644); err != nil {
		return err
	}
	const ak, sk = "BENCHSEEDACCESSKEY", "bench-seed-secret"
	q := sqsemu.New(sqsemu.Options{Credentials: map[string]string{ak: sk}, Region: "us-west-2"})
	endpoint, err := q.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer q.Close()
	url := q.CreateQueue("bench-seed", nil)
	ver, _ := exec.CommandContext(ctx, "python3", "-c", "import sys, boto3; print(sys.version.split()[0], boto3.__version__)").Output()

	var ds []time.Duration
	for i := range n {
		cmd := exec.CommandContext(ctx, "python3", "-c", seedDriver, seedDir)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
			"ACCESS_KEY=" + ak, "SECRET_KEY=" + sk, "QUEUE_URL=" + url, "REGION_NAME=us-west-2",
			"AWS_ENDPOINT_URL_SQS=" + endpoint, "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull}
		cmd.Stdin = bytes.NewReader(doc)
		var logs bytes.Buffer
		cmd.Stderr = &logs
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		before := q.Stats(url).Sent
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		line, _ := io.ReadAll(io.LimitReader(out, 64))
		d := time.Since(start)
		_ = cmd.Wait()
		if !strings.HasPrefix(string(line), "returned") {
			return fmt.Errorf("start %d: the handler did not return\n%s", i, logs.String())
		}
		if q.Stats(url).Sent != before+1 {
			return fmt.Errorf("start %d: the handler returned without sending its message\n%s", i, logs.String())
		}
		ds = append(ds, d)
	}
	slices.Sort(ds)
	fmt.Fprintf(stdout, "fc seed=python (python %s) starts=%d cold_start_ms_p50=%.1f cold_start_ms_p99=%.1f min_ms=%.1f max_ms=%.1f\n",
		strings.TrimSpace(string(ver)), len(ds), ms(percentile(ds, 0.50)), ms(percentile(ds, 0.99)), ms(ds[0]), ms(ds[len(ds)-1]))
	return nil
}
