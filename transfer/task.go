package transfer

import (
	"strings"
	"time"
)

// Task says what to copy where: one OSS bucket (optionally some prefixes of
// it) into one S3 bucket (optionally under a key prefix).
type Task struct {
	Name        string            `yaml:"name"`
	Source      SourceConfig      `yaml:"source"`
	Destination DestinationConfig `yaml:"destination"`
	Options     TaskOptions       `yaml:"options"`
	Reconcile   ReconcileConfig   `yaml:"reconcile"`
}

// ReconcileConfig says when and how full diffs of the task run.
type ReconcileConfig struct {
	Schedule   string `yaml:"schedule"`    // cron expression or "@every 1h"; empty: no schedule
	OnStart    bool   `yaml:"on_start"`    // run once when the process starts
	Mode       string `yaml:"mode"`        // report, copy (default), sync or copy_all
	Verify     string `yaml:"verify"`      // size, etag (default) or content
	MaxDeletes int    `yaml:"max_deletes"` // sync: delete nothing if more destination-only objects (default 1000)
	// Shards is about how many key-range shards a run over fewer prefixes
	// is cut into, for the replicas to list at once (0: the reconciler's
	// default, 32).
	Shards int `yaml:"shards"`
}

// SourceConfig is where a task reads from.
type SourceConfig struct {
	Endpoint   string   `yaml:"endpoint"`
	Region     string   `yaml:"region"`
	Bucket     string   `yaml:"bucket"`
	Prefixes   []string `yaml:"prefixes"`
	PrefixFile string   `yaml:"prefix_file"` // a file with one prefix a line, added to Prefixes
	// PrefixList is a list of prefixes kept as data (DTH's
	// srcPrefixsListFile): oss://bucket/key, s3://bucket/key or a file,
	// read at the start of each reconcile run instead of Prefixes. Events
	// are not filtered by it.
	PrefixList      string   `yaml:"prefix_list"`
	Suffixes        []string `yaml:"suffixes"` // e.g. [".jpg", ".png"]; empty: every key
	AccessKeyID     string   `yaml:"access_key_id"`
	AccessKeySecret string   `yaml:"access_key_secret"`
	SecurityToken   string   `yaml:"security_token"`
	// Credentials, instead of the three keys above: where to read them.
	Credentials      SourceCredentials `yaml:"credentials"`
	SignatureVersion string            `yaml:"signature_version"` // "v1" (default) or "v4"
	// RequesterPays sends x-oss-request-payer: requester with every
	// request, as a requester-pays bucket of another account needs (DTH's
	// isPayerRequest): the reads and listings are billed to these
	// credentials' account.
	RequesterPays bool `yaml:"requester_pays"`
}

// DestinationConfig is where a task writes to.
type DestinationConfig struct {
	Region          string `yaml:"region"`
	Bucket          string `yaml:"bucket"`
	Prefix          string `yaml:"prefix"`
	Endpoint        string `yaml:"endpoint"`   // for S3-compatible servers; empty means AWS
	PathStyle       *bool  `yaml:"path_style"` // default: true when Endpoint is set
	CAFile          string `yaml:"ca_file"`    // PEM bundle to trust for Endpoint's TLS
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	SessionToken    string `yaml:"session_token"`
	// RoleARN, if set, is assumed (STS AssumeRole) with the keys above or
	// the AWS default chain, e.g. a role of the destination's account; its
	// credentials are renewed before they expire.
	RoleARN         string `yaml:"role_arn"`
	ExternalID      string `yaml:"external_id"`       // with role_arn, if the role's trust policy asks for one
	RoleSessionName string `yaml:"role_session_name"` // default "oss2s3"
	STSEndpoint     string `yaml:"sts_endpoint"`      // a VPC endpoint or a test bed; empty: AWS's
	StorageClass    string `yaml:"storage_class"`
	ACL             string `yaml:"acl"`
	SSE             string `yaml:"sse"` // "", "AES256" or "aws:kms"
	SSEKMSKeyID     string `yaml:"sse_kms_key_id"`
	Checksum        string `yaml:"checksum"` // per-part checksum S3 verifies: CRC32C (default), CRC64NVME or none
	// ReadTimeout ends a request whose connection delivers nothing for
	// this long (default 90s); the job is tried again.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// StorageClassMap maps OSS storage classes (Standard, IA, Archive,
	// ColdArchive, DeepColdArchive) to S3 ones; unmapped classes get
	// StorageClass.
	StorageClassMap map[string]string `yaml:"storage_class_map"`
	// IncludeMetadata copies the source's HTTP headers (Content-Type,
	// Content-Encoding, Cache-Control, ...) and user metadata (DTH's
	// includeMetadata); default true. oss2s3's own source identity
	// (x-amz-meta-oss2s3-*) is written either way: the copy decision
	// reads it.
	IncludeMetadata *bool `yaml:"include_metadata"`
}

// CopiesMetadata reports whether the source's headers and user metadata
// are copied (IncludeMetadata, default true).
func (c DestinationConfig) CopiesMetadata() bool {
	return c.IncludeMetadata == nil || *c.IncludeMetadata
}

// TaskOptions tune one task; zero values take the workers' defaults.
type TaskOptions struct {
	PartSize           ByteSize      `yaml:"part_size"`
	MultipartThreshold ByteSize      `yaml:"multipart_threshold"`
	PartsInFlight      int           `yaml:"parts_in_flight"`
	GiantThreshold     ByteSize      `yaml:"giant_threshold"`
	Timeout            time.Duration `yaml:"timeout"` // for one copy attempt
	// Bandwidth caps the bytes a second each replica reads from the
	// source for this task (rclone's --bwlimit); 0: no cap.
	Bandwidth ByteSize `yaml:"bandwidth"`

	Deletes       string        `yaml:"deletes"`        // "ignore" (default) or "propagate"
	DeleteForeign bool          `yaml:"delete_foreign"` // with propagate: also delete objects oss2s3 did not write
	Symlinks      string        `yaml:"symlinks"`       // "follow" (default: copy the target's bytes) or "skip"
	Archive       string        `yaml:"archive"`        // "skip" (default) or "restore"
	RestorePoll   time.Duration `yaml:"restore_poll"`   // how often to look at a restore in progress
	CopyTags      bool          `yaml:"copy_tags"`      // copy OSS object tags to S3 object tags
	// Compare: skip an object the destination already holds (the default);
	// false copies every time, as DTH's "compare data: no" does.
	Compare *bool `yaml:"compare"`
}

// Compares reports whether the task skips objects the destination holds.
func (o TaskOptions) Compares() bool { return o.Compare == nil || *o.Compare }

// Option values.
const (
	DeletesIgnore    = "ignore"
	DeletesPropagate = "propagate"
	SymlinksFollow   = "follow"
	SymlinksSkip     = "skip"
	ArchiveSkip      = "skip"
	ArchiveRestore   = "restore"
)

// DestinationKey maps a source key to its destination key.
func (t *Task) DestinationKey(key string) string {
	return t.Destination.Prefix + key
}

func matchAny(key string, patterns []string, match func(string, string) bool) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if match(key, p) {
			return true
		}
	}
	return false
}

// Router sends an event to the tasks that want its key. A task may have
// thousands of prefixes, so each task's prefixes are kept in sets by length:
// a key is looked up once per distinct prefix length, not once per prefix.
type Router struct {
	routes []route
}

type route struct {
	task     *Task
	prefixes prefixSet
	// only is []string{task.Name}: Route's answer when this task is
	// the only one that wants the object, the usual case, shared.
	only []string
}

type prefixSet struct {
	lens  []int
	byLen map[int]map[string]struct{}
}

func newPrefixSet(prefixes []string) prefixSet {
	ps := prefixSet{byLen: map[int]map[string]struct{}{}}
	for _, p := range prefixes {
		if ps.byLen[len(p)] == nil {
			ps.byLen[len(p)] = map[string]struct{}{}
			ps.lens = append(ps.lens, len(p))
		}
		ps.byLen[len(p)][p] = struct{}{}
	}
	return ps
}

func (ps prefixSet) match(key string) bool {
	if len(ps.lens) == 0 {
		return true
	}
	for _, n := range ps.lens {
		if n <= len(key) {
			if _, ok := ps.byLen[n][key[:n]]; ok {
				return true
			}
		}
	}
	return false
}

// NewRouter builds a router over tasks.
func NewRouter(tasks []*Task) *Router {
	r := &Router{}
	for _, t := range tasks {
		r.routes = append(r.routes, route{task: t, prefixes: newPrefixSet(t.Source.Prefixes), only: []string{t.Name}})
	}
	return r
}

// Route returns the names of every task that wants bucket/key; an object can
// belong to several tasks (one bucket copied to two destinations). The
// slice is the caller's to read, not to change: when one task wants the
// object it is shared by every call (no allocation per event).
func (r *Router) Route(bucket, key string) []string {
	var names []string
	for i := range r.routes {
		rt := &r.routes[i]
		t := rt.task
		if bucket == t.Source.Bucket && rt.prefixes.match(key) && matchAny(key, t.Source.Suffixes, strings.HasSuffix) {
			if names == nil {
				names = rt.only
			} else {
				// only's capacity is 1: append copies, the shared one stays.
				names = append(names, t.Name)
			}
		}
	}
	return names
}
