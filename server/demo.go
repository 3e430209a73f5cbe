package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/transfer"
)

const (
	demoAK, demoSK   = "DEMOACCESSKEYID", "demo-access-key-secret"
	demoSrc, demoDst = "demo-src", "demo-dst"
	demoRegion       = "cn-hangzhou"
)

// demoObject is one object of the sample set and what S3 must end up with.
type demoObject struct {
	key       string
	data      []byte
	opts      []oss.Option
	ctype     string
	meta      map[string]string
	multipart bool
}

// runDemo runs the whole pipeline on this machine: the OSS emulator fires
// signed webhooks at the gateway, which queues jobs in an embedded JetStream,
// whose workers copy the objects into an in-process S3. It then checks every
// object in S3 byte for byte.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "keep everything running after the check, and print the URLs")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the copies")
	verbose := fs.Bool("v", false, "log every job")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose || *keep {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	dir, err := os.MkdirTemp("", "oss2s3-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	s3srv, stopS3, err := s3test.StartFake()
	if err != nil {
		return err
	}
	defer stopS3()
	if err := s3srv.CreateBucket(ctx, demoDst); err != nil {
		return err
	}
	emu := ossemu.New(ossemu.Options{Credentials: map[string]string{demoAK: demoSK}, Region: demoRegion, Logger: log})
	ossURL, err := emu.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer emu.Close()
	emu.CreateBucket(demoSrc)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	secret, adminToken := randomHex(32), randomHex(32)
	cfg := demoConfig(ln.Addr().String(), dir, secret, ossURL, s3srv)
	cfg.Admin.Tokens = []string{adminToken}
	if problems := cfg.validate(); len(problems) > 0 {
		return &ConfigError{File: "(demo)", Problems: problems}
	}
	// The app's services (the reconciler's watches) and the server end
	// together when the demo returns: a.serve waits for both.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	a, err := openApp(sctx, cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- a.serve(sctx, ln) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			log.Warn("gateway stopped with an error", "err", err)
		}
	}()

	gateway := "http://" + ln.Addr().String()
	emu.SetWebhook(gateway+"/v1/events/oss", secret)
	fmt.Fprintf(stdout, "oss2s3 demo: OSS emulator -> signed webhook -> gateway -> JetStream -> copy workers -> S3\n\n")

	objects := demoObjects()
	start := time.Now()
	if err := uploadDemo(ossURL, objects); err != nil {
		return err
	}
	results := waitForCopies(ctx, s3srv.Client, objects, *timeout)
	elapsed := time.Since(start)
	ok := printDemoTable(stdout, objects, results, elapsed)
	if errs := emu.WebhookErrors(); len(errs) > 0 {
		fmt.Fprintf(stdout, "webhook deliveries that failed: %v\n", errs)
		ok = false
	}
	if *keep {
		fmt.Fprintf(stdout, "\nEverything keeps running until Ctrl-C:\n"+
			"  webhook   POST %s/v1/events/oss  (header X-Oss2s3-Signature, secret %s)\n"+
			"  status    %s/ui/  (sign in with the admin token below)\n"+
			"  metrics   %s/metrics\n  health    %s/healthz, %s/readyz\n"+
			"  admin     token %s, e.g.\n"+
			"            curl -H 'Authorization: Bearer %s' %s/v1/dlq\n"+
			"            curl -H 'Authorization: Bearer %s' %s/v1/tasks\n"+
			"            curl -X POST -H 'Authorization: Bearer %s' %s/v1/tasks/demo/reconcile\n"+
			"  OSS       %s  bucket %s  (access key %s / %s)\n"+
			"  S3        %s  bucket %s  (access key %s / %s)\n"+
			"Upload to the OSS emulator (e.g. with ossutil or the OSS SDK) and watch the copy arrive in S3.\n",
			gateway, secret, gateway, gateway, gateway, gateway, adminToken, adminToken, gateway, adminToken, gateway, adminToken, gateway, ossURL, demoSrc, demoAK, demoSK,
			s3srv.Endpoint, demoDst, s3srv.AccessKey, s3srv.SecretKey)
		<-ctx.Done()
	}
	if !ok {
		return errors.New("demo: not every object arrived in S3 intact")
	}
	return nil
}

func demoConfig(listen, dir, secret, ossURL string, s3srv *s3test.Server) *Config {
	cfg := defaultConfig()
	cfg.Listen, cfg.DataDir = listen, dir
	cfg.Log = LogConfig{Level: "info", Format: "text"}
	cfg.Webhook.Secrets = []string{secret}
	cfg.Workers.PartSize = 5 * transfer.MiB
	cfg.Workers.MultipartThreshold = 8 * transfer.MiB
	cfg.Queue.RetryBase, cfg.Queue.RetryMax = 200*time.Millisecond, 2*time.Second
	cfg.Tasks = []transfer.Task{{
		Name: "demo",
		Source: transfer.SourceConfig{
			Endpoint: ossURL, Region: demoRegion, Bucket: demoSrc,
			AccessKeyID: demoAK, AccessKeySecret: demoSK,
		},
		Destination: transfer.DestinationConfig{
			Region: s3srv.Region, Bucket: demoDst, Endpoint: s3srv.Endpoint,
			AccessKeyID: s3srv.AccessKey, SecretAccessKey: s3srv.SecretKey,
		},
	}}
	return &cfg
}

func demoObjects() []demoObject {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte("2026-11-25 12:00:00 INFO request served\n"), 2000))
	_ = zw.Close()
	big := make([]byte, 21<<20+12345)
	_, _ = rand.Read(big)
	return []demoObject{
		{key: "hello.txt", data: []byte("hello, S3!\n"), ctype: "text/plain"},
		{key: "empty", data: []byte{}, ctype: "application/octet-stream"},
		{key: "docs/with space.txt", data: []byte("spaces in keys\n"), ctype: "text/plain",
			meta: map[string]string{"author": "demo"}},
		{key: "unicode/中文 ü 🙂.txt", data: []byte("unicode keys\n"), ctype: "text/plain; charset=utf-8"},
		{key: "percent/100%+plus.txt", data: []byte("percent and plus\n"), ctype: "text/plain"},
		{key: "logs/app.log.gz", data: gz.Bytes(), ctype: "text/plain", opts: []oss.Option{oss.ContentEncoding("gzip")}},
		{key: "big/random.bin", data: big, ctype: "application/octet-stream", multipart: true,
			meta: map[string]string{"source": "demo"}},
	}
}

func uploadDemo(ossURL string, objects []demoObject) error {
	client, err := oss.New(ossURL, demoAK, demoSK)
	if err != nil {
		return err
	}
	bucket, err := client.Bucket(demoSrc)
	if err != nil {
		return err
	}
	for _, o := range objects {
		opts := append([]oss.Option{oss.ContentType(o.ctype)}, o.opts...)
		for k, v := range o.meta {
			opts = append(opts, oss.Meta(k, v))
		}
		if !o.multipart {
			if err := bucket.PutObject(o.key, bytes.NewReader(o.data), opts...); err != nil {
				return fmt.Errorf("upload %s: %w", o.key, err)
			}
			continue
		}
		// The way big files reach OSS: a multipart upload, whose ETag is
		// not an MD5 of the content.
		imur, err := bucket.InitiateMultipartUpload(o.key, opts...)
		if err != nil {
			return fmt.Errorf("upload %s: %w", o.key, err)
		}
		var parts []oss.UploadPart
		const ps = 5 << 20
		for i, off := 1, 0; off < len(o.data); i, off = i+1, off+ps {
			end := min(off+ps, len(o.data))
			p, err := bucket.UploadPart(imur, bytes.NewReader(o.data[off:end]), int64(end-off), i)
			if err != nil {
				return fmt.Errorf("upload %s part %d: %w", o.key, i, err)
			}
			parts = append(parts, p)
		}
		if _, err := bucket.CompleteMultipartUpload(imur, parts); err != nil {
			return fmt.Errorf("upload %s: %w", o.key, err)
		}
	}
	return nil
}

// demoResult is what S3 holds for one key.
type demoResult struct {
	verified bool
	problem  string
}

func waitForCopies(ctx context.Context, client *s3.Client, objects []demoObject, timeout time.Duration) map[string]demoResult {
	results := map[string]demoResult{}
	deadline := time.Now().Add(timeout)
	for {
		pending := 0
		for _, o := range objects {
			if results[o.key].verified {
				continue
			}
			results[o.key] = checkCopy(ctx, client, o)
			if !results[o.key].verified {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return results
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkCopy compares S3's object with the original: bytes, content type,
// content encoding and user metadata.
func checkCopy(ctx context.Context, client *s3.Client, o demoObject) demoResult {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(demoDst), Key: aws.String(o.key)})
	if err != nil {
		return demoResult{problem: "not in S3 yet"}
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	switch {
	case err != nil:
		return demoResult{problem: err.Error()}
	case !bytes.Equal(got, o.data):
		return demoResult{problem: fmt.Sprintf("bytes differ (%d vs %d)", len(got), len(o.data))}
	case aws.ToString(out.ContentType) != o.ctype:
		return demoResult{problem: fmt.Sprintf("content type %q", aws.ToString(out.ContentType))}
	}
	for k, v := range o.meta {
		if out.Metadata[k] != v {
			return demoResult{problem: fmt.Sprintf("metadata %s=%q", k, out.Metadata[k])}
		}
	}
	if strings.HasSuffix(o.key, ".gz") && aws.ToString(out.ContentEncoding) != "gzip" {
		return demoResult{problem: "content encoding lost"}
	}
	return demoResult{verified: true}
}

func printDemoTable(w io.Writer, objects []demoObject, results map[string]demoResult, elapsed time.Duration) bool {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tBYTES\tVERIFIED")
	var total int64
	verified := 0
	for _, o := range objects {
		r := results[o.key]
		mark := "yes"
		if !r.verified {
			mark = "NO: " + r.problem
		} else {
			verified++
		}
		total += int64(len(o.data))
		fmt.Fprintf(tw, "%s\t%d\t%s\n", o.key, len(o.data), mark)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nobjects %d/%d verified byte for byte, %.1f MiB, %s from first upload to last check\n",
		verified, len(objects), float64(total)/math.Pow(2, 20), elapsed.Round(time.Millisecond))
	return verified == len(objects)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
