package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/transfer"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const validConfig = `
listen: 127.0.0.1:8080
data_dir: /var/lib/oss2s3
webhook:
  secrets: ["${WEBHOOK_SECRET}", "${OLD_SECRET:-}"]
workers:
  concurrency: ${WORKERS:-8}
  part_size: 16MiB
queue:
  max_deliver: 7
  ack_wait: 90s
tasks:
  - name: photos
    source:
      endpoint: https://oss-cn-hangzhou.aliyuncs.com
      region: cn-hangzhou
      bucket: my-photos
      prefixes: [2024/, 2025/]
      access_key_id: ${OSS_AK}
      access_key_secret: ${OSS_SK}
      security_token: ${OSS_TOKEN:-}
    destination:
      region: us-west-2
      bucket: my-photos-copy
      prefix: from-oss/
      storage_class: INTELLIGENT_TIERING
      acl: bucket-owner-full-control
      sse: aws:kms
      sse_kms_key_id: alias/oss2s3
`

func TestParseConfigExpandsTheEnvironmentAndKeepsDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig("c.yaml", []byte(validConfig), env(map[string]string{
		"WEBHOOK_SECRET": "a-secret-of-enough-length", "OSS_AK": "ak", "OSS_SK": "s$k",
	}))
	if err != nil {
		t.Fatal(err)
	}
	task := cfg.Tasks[0]
	switch {
	case cfg.Webhook.Secrets[0] != "a-secret-of-enough-length":
		t.Errorf("secret %q", cfg.Webhook.Secrets[0])
	case task.Source.AccessKeySecret != "s$k":
		t.Errorf("a $ inside an expanded value must stay: %q", task.Source.AccessKeySecret)
	case *cfg.Workers.Concurrency != 8:
		t.Errorf("concurrency %d: ${WORKERS:-8} should give the default as a number", *cfg.Workers.Concurrency)
	case cfg.Workers.PartSize != 16*transfer.MiB:
		t.Errorf("part size %s", cfg.Workers.PartSize)
	case cfg.Queue.AckWait != 90*time.Second || cfg.Queue.MaxDeliver != 7:
		t.Errorf("queue %+v", cfg.Queue)
	case cfg.Queue.DuplicateWindow != 2*time.Minute:
		t.Errorf("a default was lost: duplicate window %s", cfg.Queue.DuplicateWindow)
	case task.Source.Prefixes[1] != "2025/" || task.Destination.StorageClass != "INTELLIGENT_TIERING":
		t.Errorf("task %+v", task)
	}
}

func TestParseConfigReportsEveryProblemWithItsPath(t *testing.T) {
	t.Parallel()
	bad := `
listen: nowhere
drain_delay: -1s
tls: {cert_file: /nonexistent/cert.pem, key_file: /nonexistent/key.pem}
webhook:
  secrets: [short]
workers:
  concurrency: -1
  part_size: 1MiB
tasks:
  - name: "bad name!"
    source:
      endpoint: oss-cn-hangzhou.aliyuncs.com
      bucket: B
      signature_version: v4
    destination:
      bucket: ok-bucket
      sse: rot13
  - name: dup
    source: {endpoint: "https://x", bucket: abc, access_key_id: a, access_key_secret: b}
    destination: {region: r, bucket: abc, storage_class: COLD}
  - name: dup
    source: {endpoint: "https://x", bucket: abc, access_key_id: a, access_key_secret: b}
    destination: {region: r, bucket: abc}
    reconcile: {schedule: "every hour", mode: mirror, verify: md5, max_deletes: -1, shards: 5000}
`
	_, err := parseConfig("c.yaml", []byte(bad), env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`listen: "nowhere" is not host:port`,
		"drain_delay: -1s: want 0 to 5m",
		"tls.cert_file: cannot load the certificate and key (/nonexistent/cert.pem, /nonexistent/key.pem)",
		"webhook.secrets[0]: is 5 characters",
		"workers.concurrency: want 0",
		"workers.part_size: 1MiB",
		`tasks[0].name: "bad name!"`,
		`tasks[0].source.endpoint: "oss-cn-hangzhou.aliyuncs.com": want an http(s):// URL`,
		`tasks[0].source.bucket: "B" is not an OSS bucket name`,
		"tasks[0].source: access_key_id and access_key_secret are required",
		"tasks[0].source.region: required with signature_version v4",
		"tasks[0].destination.region: required",
		`tasks[0].destination.sse: "rot13"`,
		`tasks[1].destination.storage_class: "COLD"`,
		`tasks[2].name: "dup" is also the name of tasks[1]`,
		`tasks[2].reconcile.schedule: "every hour"`,
		`tasks[2].reconcile.mode: "mirror"`,
		`tasks[2].reconcile.verify: "md5"`,
		`tasks[2].reconcile.max_deletes: -1`,
		`tasks[2].reconcile.shards: 5000: want 0 (the default) to 1024`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in:\n%s", want, err)
		}
	}
}

func TestParseConfigRejectsUnknownFieldsAndUnsetVariables(t *testing.T) {
	t.Parallel()
	_, err := parseConfig("c.yaml", []byte(`
webhook:
  secrets: ["${NOT_SET}"]
  secrit: x
tasks:
  - name: t
    source: {endpoint: "https://x", bucket: abc, acces_key_id: a}
`), env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"webhook.secrets[0] (line 3): environment variable NOT_SET is not set",
		`webhook (line 4): unknown field "secrit"`,
		`tasks[0].source (line 7): unknown field "acces_key_id"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in:\n%s", want, err)
		}
	}
}

func TestParseConfigRejectsBadYAMLAndTypes(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"NotYAML":     "tasks: [",
		"Empty":       "",
		"WrongType":   "workers:\n  concurrency: many\n",
		"BadByteSize": "workers:\n  part_size: huge\n",
	} {
		if _, err := parseConfig("c.yaml", []byte(body), env(nil)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The example configuration documents every field; it must stay valid and
// complete as fields are added. It is not a working configuration: every
// secret and credential comes from a variable the operator must set.
func TestExampleConfigIsValidAndComplete(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = parseConfig("config.example.yaml", data, env(nil))
	for _, v := range []string{"OSS2S3_WEBHOOK_SECRET", "OSS2S3_FC_HANGZHOU_SECRET", "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"} {
		if err == nil || !strings.Contains(err.Error(), "environment variable "+v+" is not set") {
			t.Errorf("loaded with %s unset: %v", v, err)
		}
	}
	yours := env(map[string]string{
		"OSS2S3_WEBHOOK_SECRET": randomHex(32), "OSS2S3_FC_HANGZHOU_SECRET": randomHex(32),
		"OSS_ACCESS_KEY_ID": "ak", "OSS_ACCESS_KEY_SECRET": "sk",
	})
	if _, err := parseConfig("config.example.yaml", data, yours); err != nil {
		t.Fatal(err)
	}
	// The sqs: section is commented out (its queue is an example); as
	// printed, uncommented, it must load too.
	uncommented, n := uncommentSection(string(data), "# sqs:")
	if n < 10 {
		t.Fatalf("found %d commented-out lines of the sqs: section", n)
	}
	cfg, err := parseConfig("config.example.yaml", []byte(uncommented), yours)
	if err != nil {
		t.Fatalf("with sqs: uncommented: %v", err)
	}
	if len(cfg.SQS) != 1 || cfg.SQS[0].Task != "photos" {
		t.Fatalf("with sqs: uncommented, sqs is %+v", cfg.SQS)
	}
	var missing []string
	walkYAMLFields(reflect.TypeOf(Config{}), "", func(path string) {
		if !strings.Contains(string(data), lastSegment(path)+":") {
			missing = append(missing, path)
		}
	})
	if len(missing) > 0 {
		t.Fatalf("deploy/config.example.yaml does not document: %v", missing)
	}
}

// uncommentSection takes "# " off the line equal to first and the lines
// right after it that start with "#  " (its indented body), as a reader
// enabling the section would, and says how many lines it changed.
func uncommentSection(text, first string) (string, int) {
	lines := strings.Split(text, "\n")
	n := 0
	for i, line := range lines {
		inside := line == first || (n > 0 && strings.HasPrefix(line, "#  "))
		if n > 0 && !inside {
			break
		}
		if inside {
			lines[i] = strings.TrimPrefix(line, "# ")
			n++
		}
	}
	return strings.Join(lines, "\n"), n
}

func walkYAMLFields(t reflect.Type, path string, visit func(string)) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		visit(join(path, name))
		walkYAMLFields(t.Field(i).Type, join(path, name), visit)
	}
}

func lastSegment(path string) string {
	return path[strings.LastIndex(path, ".")+1:]
}

func TestPrefixFileAddsItsPrefixes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var lines []string
	for i := range 3000 {
		lines = append(lines, fmt.Sprintf("data/%05d/", i))
	}
	_ = os.WriteFile(filepath.Join(dir, "prefixes.txt"), []byte("# prefixes\n\n"+strings.Join(lines, "\n")+"\n"), 0o600)
	cfgText := strings.Replace(validConfig, "prefixes: [2024/, 2025/]", "prefixes: [2024/]\n      prefix_file: prefixes.txt", 1)
	cfg, err := parseConfig(filepath.Join(dir, "c.yaml"), []byte(cfgText), env(map[string]string{
		"WEBHOOK_SECRET": "a-secret-of-enough-length", "OSS_AK": "ak", "OSS_SK": "sk",
	}))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Tasks[0].Source.Prefixes
	if len(p) != 3001 || p[0] != "2024/" || p[3000] != "data/02999/" {
		t.Fatalf("%d prefixes, first %q last %q", len(p), p[0], p[len(p)-1])
	}
	_, err = parseConfig(filepath.Join(dir, "c.yaml"), []byte(strings.Replace(cfgText, "prefixes.txt", "missing.txt", 1)), env(map[string]string{
		"WEBHOOK_SECRET": "a-secret-of-enough-length", "OSS_AK": "ak", "OSS_SK": "sk",
	}))
	if err == nil || !strings.Contains(err.Error(), "tasks[0].source.prefix_file") {
		t.Fatalf("missing prefix file: %v", err)
	}
}

// TestConfigOfTheGatewaysDefences: the settings issue 14 added, each
// checked where the file is read.
func TestConfigOfTheGatewaysDefences(t *testing.T) {
	t.Parallel()
	getenv := env(map[string]string{"WEBHOOK_SECRET": "0123456789abcdef0123", "OSS_AK": "ak", "OSS_SK": "sk"})
	load := func(extra string) (*Config, error) {
		return parseConfig("c.yaml", []byte(validConfig+extra), getenv)
	}
	cfg, err := load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Webhook.MaxRecords != 100 || len(cfg.TrustedProxies) != 0 {
		t.Fatalf("defaults: max_records %d, trusted_proxies %v", cfg.Webhook.MaxRecords, cfg.TrustedProxies)
	}

	t.Run("TrustedProxiesAreRangesOrAddresses", func(t *testing.T) {
		t.Parallel()
		cfg, err := load("trusted_proxies: [10.0.0.0/8, 192.0.2.7, '2001:db8::/32', '::1']\n")
		if err != nil {
			t.Fatal(err)
		}
		nets, err := cfg.trustedProxies()
		if err != nil || len(nets) != 4 {
			t.Fatalf("%v, %v", nets, err)
		}
		if got := nets[1].String(); got != "192.0.2.7/32" {
			t.Fatalf("a single address is %s, want 192.0.2.7/32", got)
		}
		if got := nets[3].String(); got != "::1/128" {
			t.Fatalf("a single address is %s, want ::1/128", got)
		}
		if _, err := load("trusted_proxies: [10.0.0.0/8, the-load-balancer]\n"); err == nil || !strings.Contains(err.Error(), `trusted_proxies: [1] "the-load-balancer" is not an address or a CIDR range`) {
			t.Fatalf("a name: %v", err)
		}
	})

	t.Run("MaxRecordsIsBounded", func(t *testing.T) {
		t.Parallel()
		for _, v := range []string{"0", "-1", "10001"} {
			text := strings.Replace(validConfig, "webhook:\n", "webhook:\n  max_records: "+v+"\n", 1)
			if _, err := parseConfig("c.yaml", []byte(text), getenv); err == nil || !strings.Contains(err.Error(), "webhook.max_records: "+v+": want 1 to 10000") {
				t.Errorf("max_records %s: %v", v, err)
			}
		}
	})

	// MNS signs with 512-bit RSA keys: a path token is required unless
	// the operator says otherwise, in so many words.
	t.Run("MNSNeedsAPathTokenUnlessToldOtherwise", func(t *testing.T) {
		t.Parallel()
		_, err := load("mns: {enabled: true}\n")
		if err == nil || !strings.Contains(err.Error(), "mns.path_tokens: required with mns.enabled") {
			t.Fatalf("enabled without a token: %v", err)
		}
		if _, err := load("mns: {enabled: true, allow_without_path_token: true}\n"); err != nil {
			t.Fatalf("enabled without a token, allowed: %v", err)
		}
		if _, err := load("mns: {enabled: true, path_tokens: [0123456789abcdef0123456789]}\n"); err != nil {
			t.Fatalf("enabled with a token: %v", err)
		}
	})
}

// TestDefaultsAreTheValuesTheExampleWritesOut: deploy/config.example.yaml
// writes out the default of every setting of the queue, the workers and
// the gateway's limits (the defaults live in the packages that use them); a
// file that leaves them out must get the same values.
func TestDefaultsAreTheValuesTheExampleWritesOut(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	example, err := parseConfig("config.example.yaml", data, env(map[string]string{
		"OSS2S3_WEBHOOK_SECRET": randomHex(32), "OSS2S3_FC_HANGZHOU_SECRET": randomHex(32),
		"OSS_ACCESS_KEY_ID": "ak", "OSS_ACCESS_KEY_SECRET": "sk",
	}))
	if err != nil {
		t.Fatal(err)
	}
	bare, err := parseConfig("c.yaml", []byte(`
webhook:
  secrets: ["0123456789abcdef0123"]
tasks:
  - name: t
    source: {endpoint: "https://x", bucket: abc, access_key_id: a, access_key_secret: b}
    destination: {region: r, bucket: abc}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if *bare.Workers.Concurrency != *example.Workers.Concurrency {
		t.Errorf("workers.concurrency: %d by default, %d in the example", *bare.Workers.Concurrency, *example.Workers.Concurrency)
	}
	bare.Workers.Concurrency, example.Workers.Concurrency = nil, nil
	for _, c := range []struct {
		name          string
		bare, example any
	}{
		{"queue", bare.Queue, example.Queue},
		{"workers", bare.Workers, example.Workers},
		{"nats.replicas", bare.NATS.Replicas, example.NATS.Replicas},
		{"log", bare.Log, example.Log},
		{"webhook.max_body_bytes", bare.Webhook.MaxBodyBytes, example.Webhook.MaxBodyBytes},
		{"webhook.max_records", bare.Webhook.MaxRecords, example.Webhook.MaxRecords},
		{"webhook.tolerance", bare.Webhook.Tolerance, example.Webhook.Tolerance},
	} {
		if !reflect.DeepEqual(c.bare, c.example) {
			t.Errorf("%s: %+v by default, %+v in the example", c.name, c.bare, c.example)
		}
	}
}

// TestConfigPrefixListIsCheckedForItsSyntaxOnly: a prefix_list names an
// object or a file read at each run's start; loading the configuration
// (and oss2s3 check) only checks how it is written.
func TestConfigPrefixListIsCheckedForItsSyntaxOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	getenv := env(map[string]string{"WEBHOOK_SECRET": "a-secret-of-enough-length", "OSS_AK": "ak", "OSS_SK": "sk"})
	load := func(from, to string) (*Config, error) {
		return parseConfig(filepath.Join(dir, "c.yaml"), []byte(strings.Replace(validConfig, from, to, 1)), getenv)
	}
	for list, want := range map[string]string{
		"oss://my-photos/lists/prefixes.txt": "oss://my-photos/lists/prefixes.txt",
		"s3://lists.example/p.txt":           "s3://lists.example/p.txt",
		"lists/prefixes.txt":                 filepath.Join(dir, "lists/prefixes.txt"),
	} {
		cfg, err := load("prefixes: [2024/, 2025/]", "prefix_list: "+list)
		if err != nil {
			t.Fatalf("%s: %v", list, err)
		}
		if got := cfg.Tasks[0].Source.PrefixList; got != want {
			t.Errorf("%s: prefix_list %q, want %q", list, got, want)
		}
	}
	for to, want := range map[string]string{
		"prefix_list: https://example.com/p.txt":   "tasks[0].source.prefix_list: \"https://example.com/p.txt\": want oss://bucket/key",
		"prefix_list: oss://my-photos/":            "tasks[0].source.prefix_list: \"oss://my-photos/\" names no object",
		"prefixes: [a/]\n      prefix_list: p.txt": "tasks[0].source.prefix_list: set either prefix_list or prefixes",
	} {
		if _, err := load("prefixes: [2024/, 2025/]", to); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", to, err, want)
		}
	}
	_ = os.WriteFile(filepath.Join(dir, "bad.txt"), []byte("# list\na/\n/b/\n"), 0o600)
	if _, err := load("prefixes: [2024/, 2025/]", "prefix_file: bad.txt"); err == nil || !strings.Contains(err.Error(), "bad.txt: line 3: ") {
		t.Errorf("prefix_file with a bad line 3: %v", err)
	}
}
