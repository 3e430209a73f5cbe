package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest"
	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
	"github.com/oss2s3/oss2s3/transfer/ingest/sqsingest"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// Config is the one configuration file (deploy/config.example.yaml documents
// every field). Each section checks its own fields (its validate method,
// beside it); validate below says in which order the report lists them.
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

	// TrustedProxies are the addresses (CIDR ranges or single addresses)
	// of the load balancers in front of the gateway: their
	// X-Forwarded-For names the client in the logs. Empty: the peer's
	// address is logged and no header is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// defaultConfig is what a file that sets nothing gets. The settings of the
// queue, the gateway and the workers take the defaults of the packages
// that own them; the limits of the job stream are the server's own (the
// queue itself defaults to none).
func defaultConfig() Config {
	concurrency := transfer.DefaultConcurrency
	return Config{
		Listen:  ":8080",
		DataDir: "oss2s3-data",
		Log:     LogConfig{Level: "info", Format: "json"},
		NATS:    NATSConfig{Replicas: transfer.DefaultReplicas},
		Queue: QueueConfig{
			MaxAttempts: transfer.DefaultMaxAttempts, AckWait: transfer.DefaultAckWait,
			DuplicateWindow: transfer.DefaultDuplicateWindow,
			MaxJobs:         10_000_000, MaxBytes: 8 * transfer.GiB, DeadLetterAge: transfer.DefaultDeadLetterAge,
			RetryBase: transfer.DefaultRetryBase, RetryMax: transfer.DefaultRetryMax,
		},
		// The gateway's body size and signature tolerance are written
		// again in handlers.Config's defaults, which has no names for them
		// yet.
		Webhook: WebhookConfig{MaxBodyBytes: handlers.DefaultMaxBodyBytes, MaxRecords: ingest.DefaultMaxRecords,
			Tolerance: signature.DefaultTolerance},
		Workers: WorkersConfig{
			Concurrency: &concurrency, LargeConcurrency: transfer.DefaultLargeConcurrency, PartSize: transfer.DefaultPartSize,
			MultipartThreshold: transfer.DefaultMultipartThreshold, PartsInFlight: transfer.DefaultPartsInFlight,
			GiantThreshold: transfer.DefaultGiantThreshold, MemoryBudget: transfer.DefaultMemoryBudget,
			JobTimeout: transfer.DefaultJobTimeout, ShutdownGrace: transfer.DefaultShutdownGrace,
			Lease: transfer.DefaultLease, OrphanUploadAge: transfer.DefaultOrphanAge,
			OrphanSweepInterval: transfer.DefaultOrphanEvery,
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

// parseConfig reads the file in two stages: what stops it from being read
// (bad YAML, unset variables, unknown fields, wrong types, prefix files,
// old names given twice), then, only if it was read, its values.
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
		if err := loadPrefixSources(&cfg.Tasks[i].Source, filepath.Dir(name)); err != nil {
			cerr.Problems = append(cerr.Problems, fmt.Sprintf("tasks[%d].source.prefix_file: %v", i, err))
		}
	}
	if err := cfg.Queue.takeOldNames(); err != "" {
		cerr.Problems = append(cerr.Problems, err)
	}
	cfg.dropUnusedSlots()
	if len(cerr.Problems) == 0 {
		cerr.Problems = cfg.validate()
	}
	if len(cerr.Problems) > 0 {
		return nil, cerr
	}
	return &cfg, nil
}

// dropUnusedSlots removes empty secrets and tokens: an empty one is a
// rotation slot left unused (${OLD:-}).
func (c *Config) dropUnusedSlots() {
	empty := func(s string) bool { return s == "" }
	c.Webhook.Secrets = slices.DeleteFunc(c.Webhook.Secrets, empty)
	c.Admin.Tokens = slices.DeleteFunc(c.Admin.Tokens, empty)
	c.EventBridge.APIKeys = slices.DeleteFunc(c.EventBridge.APIKeys, empty)
	c.MNS.PathTokens = slices.DeleteFunc(c.MNS.PathTokens, empty)
	for i := range c.Webhook.Sources {
		c.Webhook.Sources[i].Secrets = slices.DeleteFunc(c.Webhook.Sources[i].Secrets, empty)
	}
}

// loadPrefixSources adds the prefixes listed in src.PrefixFile (one a line;
// see reconcile.ReadPrefixes) to src.Prefixes, and makes a relative
// src.PrefixList a path too: both are relative to the configuration file.
// A prefix_file is configuration (read once, it routes events too); a
// prefix_list is data, read at the start of each run.
func loadPrefixSources(src *transfer.SourceConfig, dir string) error {
	if kind, _, _, err := reconcile.ParsePrefixList(src.PrefixList); err == nil && kind == reconcile.ListFile && !filepath.IsAbs(src.PrefixList) {
		src.PrefixList = filepath.Join(dir, src.PrefixList)
	}
	if src.PrefixFile == "" {
		return nil
	}
	path := src.PrefixFile
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n := 0
	if err := reconcile.ReadPrefixes(f, func(p string) { src.Prefixes = append(src.Prefixes, p); n++ }); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if n == 0 {
		return fmt.Errorf("%s lists no prefixes", path)
	}
	return nil
}

// complain records one problem of a configuration: the path of the field
// in the file, and what is wrong with it.
type complain func(path, format string, args ...any)

// validate returns every problem, each with its path in the file. The
// order is the report's: the process, JetStream, the log, the queue, who
// may call the gateway and how much one call may carry, the workers, the
// tasks, the SQS queues.
func (c *Config) validate() []string {
	var p []string
	bad := func(path, format string, args ...any) { p = append(p, path+": "+fmt.Sprintf(format, args...)) }
	c.validateProcess(bad)
	c.NATS.validate(bad)
	c.Log.validate(bad)
	c.Queue.validate(bad)
	c.validateCallers(bad)
	c.Webhook.validateLimits(bad)
	c.Workers.validate(bad)
	names := validateTasks(c.Tasks, bad)
	validateSQS(c.SQS, names, bad)
	return p
}

// validateProcess checks the top-level fields: where the gateway listens,
// its certificate, whom it believes, how it stops and where it keeps its
// files.
func (c *Config) validateProcess(bad complain) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port (e.g. :8080)", c.Listen)
	}
	c.TLS.validate(bad)
	if _, err := c.trustedProxies(); err != nil {
		bad("trusted_proxies", "%v", err)
	}
	if c.DrainDelay < 0 || c.DrainDelay > 5*time.Minute {
		bad("drain_delay", "%s: want 0 to 5m", c.DrainDelay)
	}
	if c.NATS.URL == "" && c.DataDir == "" {
		bad("data_dir", "required when nats.url is empty (the embedded JetStream keeps its files there)")
	}
}

// trustedProxies parses TrustedProxies: CIDR ranges, or single addresses
// (a /32 or /128).
func (c *Config) trustedProxies() ([]*net.IPNet, error) {
	var out []*net.IPNet
	for i, p := range c.TrustedProxies {
		if !strings.Contains(p, "/") {
			ip := net.ParseIP(p)
			if ip == nil {
				return nil, fmt.Errorf("[%d] %q is not an address or a CIDR range (e.g. 10.0.0.0/8)", i, p)
			}
			bits := 8 * len(ip.To16())
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fmt.Errorf("[%d] %q is not an address or a CIDR range (e.g. 10.0.0.0/8)", i, p)
		}
		out = append(out, n)
	}
	return out, nil
}

// LogConfig sets the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json (default when serving) or text
}

func (l LogConfig) validate(bad complain) {
	if !set("debug", "info", "warn", "error")[l.Level] {
		bad("log.level", "%q: want debug, info, warn or error", l.Level)
	}
	if !set("json", "text")[l.Format] {
		bad("log.format", "%q: want json or text", l.Format)
	}
}

func set(vals ...string) map[string]bool {
	m := map[string]bool{}
	for _, v := range vals {
		m[v] = true
	}
	return m
}
