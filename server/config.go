package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oss2s3/oss2s3/handlers/cloudevents"
	"github.com/oss2s3/oss2s3/handlers/mns"
	"github.com/oss2s3/oss2s3/handlers/sqsingest"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// Config is the one configuration file (deploy/config.example.yaml documents
// every field).
type Config struct {
	Listen      string             `yaml:"listen"`
	TLS         TLSConfig          `yaml:"tls"`
	DrainDelay  time.Duration      `yaml:"drain_delay"`
	DataDir     string             `yaml:"data_dir"`
	Log         LogConfig          `yaml:"log"`
	NATS        NATSConfig         `yaml:"nats"`
	Queue       QueueConfig        `yaml:"queue"`
	Webhook     WebhookConfig      `yaml:"webhook"`
	Workers     WorkersConfig      `yaml:"workers"`
	Admin       AdminConfig        `yaml:"admin"`
	EventBridge EventBridgeConfig  `yaml:"eventbridge"`
	MNS         MNSConfig          `yaml:"mns"`
	SQS         []sqsingest.Config `yaml:"sqs"`
	Tasks       []transfer.Task    `yaml:"tasks"`
}

// LogConfig sets the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json (default when serving) or text
}

// NATSConfig says where JetStream is.
type NATSConfig struct {
	URL            string `yaml:"url"`             // empty: embedded server with a file store under data_dir
	CredsFile      string `yaml:"creds_file"`      // credentials for url
	Replicas       int    `yaml:"replicas"`        // stream replicas; 3 on a 3-node cluster
	EmbeddedListen string `yaml:"embedded_listen"` // optional client port of the embedded server
}

// QueueConfig shapes the job and dead-letter streams.
type QueueConfig struct {
	MaxDeliver      int               `yaml:"max_deliver"`
	AckWait         time.Duration     `yaml:"ack_wait"`
	DuplicateWindow time.Duration     `yaml:"duplicate_window"`
	MaxJobs         int64             `yaml:"max_jobs"`
	MaxBytes        transfer.ByteSize `yaml:"max_bytes"`
	DeadLetterAge   time.Duration     `yaml:"dead_letter_max_age"`
	RetryBase       time.Duration     `yaml:"retry_base"`
	RetryMax        time.Duration     `yaml:"retry_max"`
}

// WebhookConfig authenticates /v1/events/oss.
type WebhookConfig struct {
	Secrets      []string          `yaml:"secrets"`
	Sources      []WebhookSource   `yaml:"sources"`
	MaxBodyBytes transfer.ByteSize `yaml:"max_body_bytes"`
	Tolerance    time.Duration     `yaml:"tolerance"`
}

// WebhookSource is one sender with secrets of its own, allowed to report
// events of some buckets only.
type WebhookSource struct {
	Name    string   `yaml:"name"`
	Secrets []string `yaml:"secrets"`
	Buckets []string `yaml:"buckets"` // empty: any bucket
}

// EventBridgeConfig authenticates POST /v1/events/eventbridge as the
// EventBridge connection is set up: an API key in a header, or basic auth.
type EventBridgeConfig struct {
	APIKeyHeader string              `yaml:"api_key_header"`
	APIKeys      []string            `yaml:"api_keys"`
	BasicUsers   map[string][]string `yaml:"basic_users"`
}

// MNSConfig turns on POST /v1/events/mns (an MNS HTTP push subscription).
type MNSConfig struct {
	Enabled         bool     `yaml:"enabled"`
	CertHostPattern string   `yaml:"cert_host_pattern"` // regexp for the signing certificate's host; "": Aliyun's MNS hosts
	PathTokens      []string `yaml:"path_tokens"`       // require /v1/events/mns/<token>
}

func (e EventBridgeConfig) auth() cloudevents.Auth {
	return cloudevents.Auth{Header: e.APIKeyHeader, APIKeys: e.APIKeys, BasicUsers: e.BasicUsers}
}

// AdminConfig authenticates the admin API (/v1/dlq, ...).
type AdminConfig struct {
	Tokens []string `yaml:"tokens"` // bearer tokens; none: the admin API answers 403
}

// WorkersConfig shapes this process's copy workers.
type WorkersConfig struct {
	Concurrency        *int              `yaml:"concurrency"` // 0: gateway only, no workers in this process
	PartSize           transfer.ByteSize `yaml:"part_size"`
	MultipartThreshold transfer.ByteSize `yaml:"multipart_threshold"`
	PartsInFlight      int               `yaml:"parts_in_flight"`
	GiantThreshold     transfer.ByteSize `yaml:"giant_threshold"`
	MemoryBudget       transfer.ByteSize `yaml:"memory_budget"`
	JobTimeout         time.Duration     `yaml:"job_timeout"`
	ShutdownGrace      time.Duration     `yaml:"shutdown_grace"`
}

// defaultConfig holds every default in one place.
func defaultConfig() Config {
	sixteen := 16
	return Config{
		Listen:  ":8080",
		DataDir: "oss2s3-data",
		Log:     LogConfig{Level: "info", Format: "json"},
		NATS:    NATSConfig{Replicas: 1},
		Queue: QueueConfig{
			MaxDeliver: 5, AckWait: time.Minute, DuplicateWindow: 2 * time.Minute,
			MaxJobs: 10_000_000, MaxBytes: 8 * transfer.GiB, DeadLetterAge: 14 * 24 * time.Hour,
			RetryBase: 5 * time.Second, RetryMax: 5 * time.Minute,
		},
		Webhook: WebhookConfig{MaxBodyBytes: transfer.MiB, Tolerance: 5 * time.Minute},
		Workers: WorkersConfig{
			Concurrency: &sixteen, PartSize: 8 * transfer.MiB, MultipartThreshold: 16 * transfer.MiB,
			PartsInFlight: 4, GiantThreshold: transfer.GiB, MemoryBudget: 64 * transfer.MiB, JobTimeout: 6 * time.Hour, ShutdownGrace: 30 * time.Second,
		},
	}
}

// ConfigError lists every problem found in a configuration file.
type ConfigError struct {
	File     string
	Problems []string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "configuration %s has %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p)
	}
	return b.String()
}

// loadConfig reads, expands and validates the file at path. ${NAME} (and
// ${NAME:-default}) in any value is replaced by the environment variable, so
// that secrets stay out of the file; $$ is a literal $.
func loadConfig(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return parseConfig(path, data, getenv)
}

func parseConfig(name string, data []byte, getenv func(string) string) (*Config, error) {
	cerr := &ConfigError{File: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		cerr.Problems = append(cerr.Problems, "not valid YAML: "+err.Error())
		return nil, cerr
	}
	cfg := defaultConfig()
	if len(root.Content) == 0 {
		cerr.Problems = append(cerr.Problems, "the file is empty")
		return nil, cerr
	}
	doc := root.Content[0]
	expandNode(doc, "", getenv, &cerr.Problems)
	checkKnownFields(doc, reflect.TypeOf(cfg), "", &cerr.Problems)
	if err := doc.Decode(&cfg); err != nil {
		cerr.Problems = append(cerr.Problems, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	for i := range cfg.Tasks {
		if err := loadPrefixFile(&cfg.Tasks[i].Source, filepath.Dir(name)); err != nil {
			cerr.Problems = append(cerr.Problems, fmt.Sprintf("tasks[%d].source.prefix_file: %v", i, err))
		}
	}
	// An empty secret or token is a rotation slot left unused (${OLD:-}).
	empty := func(s string) bool { return s == "" }
	cfg.Webhook.Secrets = slices.DeleteFunc(cfg.Webhook.Secrets, empty)
	cfg.Admin.Tokens = slices.DeleteFunc(cfg.Admin.Tokens, empty)
	cfg.EventBridge.APIKeys = slices.DeleteFunc(cfg.EventBridge.APIKeys, empty)
	cfg.MNS.PathTokens = slices.DeleteFunc(cfg.MNS.PathTokens, empty)
	for i := range cfg.Webhook.Sources {
		cfg.Webhook.Sources[i].Secrets = slices.DeleteFunc(cfg.Webhook.Sources[i].Secrets, empty)
	}
	if len(cerr.Problems) == 0 {
		cerr.Problems = cfg.validate()
	}
	if len(cerr.Problems) > 0 {
		return nil, cerr
	}
	return &cfg, nil
}

// loadPrefixFile adds the prefixes listed in src.PrefixFile (one a line;
// blank lines and lines starting with # are skipped) to src.Prefixes. A
// relative path is relative to the configuration file.
func loadPrefixFile(src *transfer.SourceConfig, dir string) error {
	if src.PrefixFile == "" {
		return nil
	}
	path := src.PrefixFile
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		src.Prefixes = append(src.Prefixes, line)
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s lists no prefixes", path)
	}
	return nil
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandNode replaces environment references in every scalar below n.
func expandNode(n *yaml.Node, path string, getenv func(string) string, problems *[]string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			if ref == "$$" {
				return "$"
			}
			m := envRef.FindStringSubmatch(ref)
			if v := getenv(m[1]); v != "" {
				return v
			}
			if m[2] != "" {
				return m[3]
			}
			*problems = append(*problems, fmt.Sprintf("%s (line %d): environment variable %s is not set", orRoot(path), n.Line, m[1]))
			return ""
		})
		if n.Style == 0 {
			n.Tag = "" // let the expanded value resolve as a number or bool again
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandNode(n.Content[i+1], join(path, n.Content[i].Value), getenv, problems)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandNode(c, fmt.Sprintf("%s[%d]", path, i), getenv, problems)
		}
	case yaml.DocumentNode, yaml.AliasNode:
		for _, c := range n.Content {
			expandNode(c, path, getenv, problems)
		}
	}
}

// checkKnownFields reports mapping keys that no struct field of t is named
// by, so a misspelt option is an error rather than silently ignored.
func checkKnownFields(n *yaml.Node, t reflect.Type, path string, problems *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = t.Field(i).Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				*problems = append(*problems, fmt.Sprintf("%s (line %d): unknown field %q", orRoot(path), k.Line, k.Value))
				continue
			}
			checkKnownFields(n.Content[i+1], ft, join(path, k.Value), problems)
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			checkKnownFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

var (
	taskName   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	s3Classes  = set("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
		"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE")
	ossClasses = set("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
	s3ACLs     = set("private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
		"bucket-owner-read", "bucket-owner-full-control")
)

func set(vals ...string) map[string]bool {
	m := map[string]bool{}
	for _, v := range vals {
		m[v] = true
	}
	return m
}

// validate returns every problem, each with its path in the file.
func (c *Config) validate() []string {
	var p []string
	bad := func(path, format string, args ...any) { p = append(p, path+": "+fmt.Sprintf(format, args...)) }

	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port (e.g. :8080)", c.Listen)
	}
	c.TLS.validate(bad)
	if c.DrainDelay < 0 || c.DrainDelay > 5*time.Minute {
		bad("drain_delay", "%s: want 0 to 5m", c.DrainDelay)
	}
	if c.NATS.URL == "" && c.DataDir == "" {
		bad("data_dir", "required when nats.url is empty (the embedded JetStream keeps its files there)")
	}
	if c.NATS.URL != "" {
		for _, u := range strings.Split(c.NATS.URL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || pu.Host == "" || !set("nats", "tls", "ws", "wss")[pu.Scheme] {
				bad("nats.url", "%q is not a nats://host:port URL (or a comma-separated list of them)", u)
			}
		}
	}
	if c.NATS.EmbeddedListen != "" {
		if _, _, err := net.SplitHostPort(c.NATS.EmbeddedListen); err != nil {
			bad("nats.embedded_listen", "%q is not host:port", c.NATS.EmbeddedListen)
		}
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		bad("nats.replicas", "%d: want 1 to 5", c.NATS.Replicas)
	}
	if !set("debug", "info", "warn", "error")[c.Log.Level] {
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if !set("json", "text")[c.Log.Format] {
		bad("log.format", "%q: want json or text", c.Log.Format)
	}
	q := c.Queue
	if q.MaxDeliver < 1 {
		bad("queue.max_deliver", "%d: want at least 1", q.MaxDeliver)
	}
	if q.AckWait < time.Second {
		bad("queue.ack_wait", "%s: want at least 1s", q.AckWait)
	}
	if q.DuplicateWindow < time.Second {
		bad("queue.duplicate_window", "%s: want at least 1s", q.DuplicateWindow)
	}
	if q.MaxJobs < 1 {
		bad("queue.max_jobs", "%d: want at least 1", q.MaxJobs)
	}
	if q.MaxBytes < transfer.MiB {
		bad("queue.max_bytes", "%s: want at least 1MiB", q.MaxBytes)
	}
	if q.RetryBase <= 0 || q.RetryMax < q.RetryBase {
		bad("queue.retry_base", "%s (retry_max %s): want 0 < retry_base <= retry_max", q.RetryBase, q.RetryMax)
	}
	if len(c.Webhook.Secrets) == 0 && len(c.Webhook.Sources) == 0 {
		bad("webhook.secrets", "at least one secret (or webhook.sources) is required: /v1/events/oss accepts only signed requests")
	}
	checkSecrets := func(path string, secrets []string) {
		for i, s := range secrets {
			if len(s) < 16 {
				bad(fmt.Sprintf("%s[%d]", path, i), "is %d characters; use at least 16 (e.g. openssl rand -hex 32)", len(s))
			}
		}
	}
	checkSecrets("webhook.secrets", c.Webhook.Secrets)
	checkSecrets("mns.path_tokens", c.MNS.PathTokens)
	if _, err := mns.HostPattern(c.MNS.CertHostPattern); err != nil {
		bad("mns.cert_host_pattern", "%v", err)
	}
	if eb := c.EventBridge; len(eb.APIKeys) > 0 || len(eb.BasicUsers) > 0 {
		if err := eb.auth().Validate(); err != nil {
			bad("eventbridge", "%v", err)
		}
		checkSecrets("eventbridge.api_keys", eb.APIKeys)
		for user, pws := range eb.BasicUsers {
			checkSecrets("eventbridge.basic_users."+user, pws)
		}
	}
	sourceNames := map[string]bool{}
	for i, src := range c.Webhook.Sources {
		p := fmt.Sprintf("webhook.sources[%d]", i)
		if !taskName.MatchString(src.Name) || sourceNames[src.Name] {
			bad(p+".name", "%q: want a unique name of letters, digits, '-' or '_'", src.Name)
		}
		sourceNames[src.Name] = true
		if len(src.Secrets) == 0 {
			bad(p+".secrets", "at least one secret is required")
		}
		checkSecrets(p+".secrets", src.Secrets)
	}
	for i, s := range c.Admin.Tokens {
		if len(s) < 16 {
			bad(fmt.Sprintf("admin.tokens[%d]", i), "is %d characters; use at least 16", len(s))
		}
	}
	if c.Webhook.MaxBodyBytes < transfer.KiB {
		bad("webhook.max_body_bytes", "%s: want at least 1KiB", c.Webhook.MaxBodyBytes)
	}
	if c.Webhook.Tolerance < time.Second {
		bad("webhook.tolerance", "%s: want at least 1s", c.Webhook.Tolerance)
	}
	w := c.Workers
	if w.Concurrency == nil || *w.Concurrency < 0 {
		bad("workers.concurrency", "want 0 (no workers in this process) or more")
	}
	validParts(w.PartSize, w.PartsInFlight, "workers", bad)
	if w.MultipartThreshold < 1 {
		bad("workers.multipart_threshold", "%s: want at least 1 byte", w.MultipartThreshold)
	}
	if w.GiantThreshold < w.MultipartThreshold {
		bad("workers.giant_threshold", "%s is below multipart_threshold (%s)", w.GiantThreshold, w.MultipartThreshold)
	}
	if w.MemoryBudget < w.PartSize {
		bad("workers.memory_budget", "%s is smaller than one part (%s)", w.MemoryBudget, w.PartSize)
	}
	if len(c.Tasks) == 0 {
		bad("tasks", "at least one task is required")
	}
	names := map[string]int{}
	for i := range c.Tasks {
		validateTask(&c.Tasks[i], fmt.Sprintf("tasks[%d]", i), names, i, bad)
	}
	queues := map[string]bool{}
	for i, q := range c.SQS {
		qp := fmt.Sprintf("sqs[%d]", i)
		if !taskName.MatchString(q.Name) || queues[q.Name] {
			bad(qp+".name", "%q: want a unique name of letters, digits, '-' or '_'", q.Name)
		}
		queues[q.Name] = true
		validURL(q.QueueURL, qp+".queue_url", true, bad)
		validURL(q.Endpoint, qp+".endpoint", false, bad)
		if q.Region == "" {
			bad(qp+".region", "required (e.g. us-west-2)")
		}
		if _, ok := names[q.Task]; q.Task != "" && !ok {
			bad(qp+".task", "%q is not the name of a task", q.Task)
		}
		if q.WaitSeconds < 0 || q.WaitSeconds > 20 {
			bad(qp+".wait_seconds", "%d: want 1 to 20", q.WaitSeconds)
		}
		if q.Pollers < 0 || q.Pollers > 64 {
			bad(qp+".pollers", "%d: want 1 to 64", q.Pollers)
		}
		if (q.AccessKeyID == "") != (q.SecretAccessKey == "") {
			bad(qp, "give both access_key_id and secret_access_key, or neither")
		}
	}
	return p
}

func validParts(size transfer.ByteSize, inFlight int, path string, bad func(string, string, ...any)) {
	if size != 0 && (size < transfer.MinPartSize || size > transfer.MaxPartSize) {
		bad(path+".part_size", "%s: S3 parts are 5MiB to 5GiB", size)
	}
	if inFlight < 0 || inFlight > 64 {
		bad(path+".parts_in_flight", "%d: want 1 to 64", inFlight)
	}
}

func validateTask(t *transfer.Task, path string, names map[string]int, i int, bad func(string, string, ...any)) {
	if !taskName.MatchString(t.Name) {
		bad(path+".name", "%q: want 1 to 64 letters, digits, '-' or '_'", t.Name)
	} else if j, dup := names[t.Name]; dup {
		bad(path+".name", "%q is also the name of tasks[%d]", t.Name, j)
	} else {
		names[t.Name] = i
	}
	s := t.Source
	sp := path + ".source"
	validURL(s.Endpoint, sp+".endpoint", true, bad)
	if !bucketName.MatchString(s.Bucket) {
		bad(sp+".bucket", "%q is not an OSS bucket name (3-63 lower-case letters, digits, '-')", s.Bucket)
	}
	if s.AccessKeyID == "" || s.AccessKeySecret == "" {
		bad(sp, "access_key_id and access_key_secret are required")
	}
	switch strings.ToLower(s.SignatureVersion) {
	case "", "v1":
	case "v4":
		if s.Region == "" {
			bad(sp+".region", "required with signature_version v4 (the SDK would sign for an empty region)")
		}
	default:
		bad(sp+".signature_version", "%q: want v1 or v4", s.SignatureVersion)
	}
	for j, pr := range s.Prefixes {
		if pr == "" {
			bad(fmt.Sprintf("%s.prefixes[%d]", sp, j), "is empty; leave prefixes out to copy the whole bucket")
		}
	}
	for j, sf := range s.Suffixes {
		if sf == "" {
			bad(fmt.Sprintf("%s.suffixes[%d]", sp, j), "is empty; leave suffixes out to take every key")
		}
	}
	rc, rp := t.Reconcile, path+".reconcile"
	if rc.Schedule != "" {
		if _, err := reconcile.ParseSchedule(rc.Schedule); err != nil {
			bad(rp+".schedule", "%q: %v (want a cron expression like \"0 3 * * *\" or \"@every 6h\")", rc.Schedule, err)
		}
	}
	if !reconcile.ValidMode(rc.Mode) {
		bad(rp+".mode", "%q: want report, copy, sync or copy_all", rc.Mode)
	}
	if !reconcile.ValidVerify(rc.Verify) {
		bad(rp+".verify", "%q: want size, etag or content", rc.Verify)
	}
	if rc.MaxDeletes < 0 {
		bad(rp+".max_deletes", "%d: want 0 (the default, 1000) or more", rc.MaxDeletes)
	}
	d := t.Destination
	dp := path + ".destination"
	if d.Region == "" {
		bad(dp+".region", "required (e.g. us-west-2)")
	}
	if len(d.Bucket) < 3 || len(d.Bucket) > 63 || !bucketName.MatchString(d.Bucket) {
		bad(dp+".bucket", "%q is not an S3 bucket name", d.Bucket)
	}
	if len(d.Prefix) > 512 {
		bad(dp+".prefix", "is %d bytes; keep it under 512", len(d.Prefix))
	}
	validURL(d.Endpoint, dp+".endpoint", false, bad)
	if d.CAFile != "" {
		if _, err := os.Stat(d.CAFile); err != nil {
			bad(dp+".ca_file", "%v", err)
		}
	}
	if (d.AccessKeyID == "") != (d.SecretAccessKey == "") {
		bad(dp, "give both access_key_id and secret_access_key, or neither (to use the AWS default credential chain)")
	}
	if d.StorageClass != "" && !s3Classes[d.StorageClass] {
		bad(dp+".storage_class", "%q is not an S3 storage class", d.StorageClass)
	}
	if d.ACL != "" && !s3ACLs[d.ACL] {
		bad(dp+".acl", "%q is not an S3 canned ACL", d.ACL)
	}
	switch d.SSE {
	case "", "AES256":
		if d.SSEKMSKeyID != "" {
			bad(dp+".sse_kms_key_id", "only with sse: aws:kms")
		}
	case "aws:kms":
	default:
		bad(dp+".sse", "%q: want AES256 or aws:kms", d.SSE)
	}
	if c := strings.ToUpper(d.Checksum); c != "" && c != "CRC32C" && c != "CRC64NVME" && c != "NONE" {
		bad(dp+".checksum", "%q: want CRC32C, CRC64NVME or none", d.Checksum)
	}
	for from, to := range d.StorageClassMap {
		if !ossClasses[from] {
			bad(dp+".storage_class_map", "%q is not an OSS storage class (Standard, IA, Archive, ColdArchive, DeepColdArchive)", from)
		}
		if !s3Classes[to] {
			bad(dp+".storage_class_map."+from, "%q is not an S3 storage class", to)
		}
	}
	o := t.Options
	op := path + ".options"
	validParts(o.PartSize, o.PartsInFlight, op, bad)
	if o.Timeout < 0 || o.RestorePoll < 0 {
		bad(op, "timeout and restore_poll must not be negative")
	}
	oneOf := func(field, v string, allowed ...string) {
		if v != "" && !slices.Contains(allowed, v) {
			bad(op+"."+field, "%q: want %s", v, strings.Join(allowed, " or "))
		}
	}
	oneOf("deletes", o.Deletes, transfer.DeletesIgnore, transfer.DeletesPropagate)
	oneOf("symlinks", o.Symlinks, transfer.SymlinksFollow, transfer.SymlinksSkip)
	oneOf("archive", o.Archive, transfer.ArchiveSkip, transfer.ArchiveRestore)
	if o.DeleteForeign && o.Deletes != transfer.DeletesPropagate {
		bad(op+".delete_foreign", "only with deletes: propagate")
	}
}

func validURL(s, path string, required bool, bad func(string, string, ...any)) {
	if s == "" {
		if required {
			bad(path, "required (e.g. https://oss-cn-hangzhou.aliyuncs.com)")
		}
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad(path, "%q: want an http(s):// URL", s)
		return
	}
	if port := u.Port(); port != "" {
		if _, err := strconv.Atoi(port); err != nil {
			bad(path, "%q: bad port", s)
		}
	}
}
