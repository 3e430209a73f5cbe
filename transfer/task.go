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
}

// SourceConfig is where a task reads from.
type SourceConfig struct {
	Endpoint         string   `yaml:"endpoint"`
	Region           string   `yaml:"region"`
	Bucket           string   `yaml:"bucket"`
	Prefixes         []string `yaml:"prefixes"`
	AccessKeyID      string   `yaml:"access_key_id"`
	AccessKeySecret  string   `yaml:"access_key_secret"`
	SecurityToken    string   `yaml:"security_token"`
	SignatureVersion string   `yaml:"signature_version"` // "v1" (default) or "v4"
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
	StorageClass    string `yaml:"storage_class"`
	ACL             string `yaml:"acl"`
	SSE             string `yaml:"sse"` // "", "AES256" or "aws:kms"
	SSEKMSKeyID     string `yaml:"sse_kms_key_id"`
	Checksum        string `yaml:"checksum"` // per-part checksum S3 verifies: CRC32C (default), CRC64NVME or none
	// StorageClassMap maps OSS storage classes (Standard, IA, Archive,
	// ColdArchive, DeepColdArchive) to S3 ones; unmapped classes get
	// StorageClass.
	StorageClassMap map[string]string `yaml:"storage_class_map"`
}

// TaskOptions tune one task; zero values take the workers' defaults.
type TaskOptions struct {
	PartSize           ByteSize      `yaml:"part_size"`
	MultipartThreshold ByteSize      `yaml:"multipart_threshold"`
	PartsInFlight      int           `yaml:"parts_in_flight"`
	GiantThreshold     ByteSize      `yaml:"giant_threshold"`
	Timeout            time.Duration `yaml:"timeout"` // for one copy attempt

	Deletes       string        `yaml:"deletes"`        // "ignore" (default) or "propagate"
	DeleteForeign bool          `yaml:"delete_foreign"` // with propagate: also delete objects oss2s3 did not write
	Symlinks      string        `yaml:"symlinks"`       // "follow" (default: copy the target's bytes) or "skip"
	Archive       string        `yaml:"archive"`        // "skip" (default) or "restore"
	RestorePoll   time.Duration `yaml:"restore_poll"`   // how often to look at a restore in progress
	CopyTags      bool          `yaml:"copy_tags"`      // copy OSS object tags to S3 object tags
}

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

// Wants reports whether key (in the task's source bucket) belongs to the task.
func (t *Task) Wants(bucket, key string) bool {
	if bucket != t.Source.Bucket {
		return false
	}
	if len(t.Source.Prefixes) == 0 {
		return true
	}
	for _, p := range t.Source.Prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// Router sends an event to the tasks that want its key.
type Router struct {
	tasks []*Task
}

// NewRouter builds a router over tasks.
func NewRouter(tasks []*Task) *Router {
	return &Router{tasks: tasks}
}

// Route returns the names of every task that wants bucket/key; an object can
// belong to several tasks (one bucket copied to two destinations).
func (r *Router) Route(bucket, key string) []string {
	var names []string
	for _, t := range r.tasks {
		if t.Wants(bucket, key) {
			names = append(names, t.Name)
		}
	}
	return names
}
