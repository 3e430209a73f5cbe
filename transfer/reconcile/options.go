package reconcile

// Options: the modes and verify settings of a run, and their defaults.

import (
	"errors"

	"github.com/oss2s3/oss2s3/transfer"
)

// Modes of a run.
const (
	ModeReport  = "report"   // a dry run: what differs, nothing queued or deleted
	ModeCopy    = "copy"     // queue copies of what is missing or different (the default)
	ModeSync    = "sync"     // copy, and delete destination-only objects (capped)
	ModeCopyAll = "copy_all" // queue every source object, compared or not
)

// ValidMode reports whether m names a mode ("" is the default, copy).
func ValidMode(m string) bool {
	switch m {
	case "", ModeReport, ModeCopy, ModeSync, ModeCopyAll:
		return true
	}
	return false
}

// ValidVerify reports whether v names a verify setting ("" is etag).
func ValidVerify(v string) bool {
	switch v {
	case "", VerifySize, VerifyETag, VerifyContent:
		return true
	}
	return false
}

// DefaultMaxDeletes caps the deletes of one sync run when the task sets no cap.
const DefaultMaxDeletes = 1000

// ErrDeleteCap means a sync run found more destination-only objects than its
// cap allows: it deletes none of them (a diff that wants to delete that much
// more likely lists the wrong prefix, or an empty source, than it is right).
var ErrDeleteCap = errors.New("delete cap hit: nothing deleted")

// Options shape one run.
type Options struct {
	Mode       string   `json:"mode,omitempty"`
	Verify     string   `json:"verify,omitempty"`
	MaxDeletes int      `json:"max_deletes,omitempty"`
	Prefixes   []string `json:"prefixes,omitempty"` // instead of the task's
	// Checkers is how many HEADs (or content reads) run at once for the
	// objects the listing cannot decide (default 16).
	Checkers int `json:"-"`
	// Parallel is how many ranges Run lists at once (default 4); a run of
	// fewer ranges splits them first.
	Parallel int `json:"-"`
	// Shards is about how many key-range shards a service run over fewer
	// prefixes is cut into (0: ServiceConfig.Shards).
	Shards int `json:"-"`
}

// forTask fills in what o leaves to task's reconcile settings, then the
// defaults.
func (o Options) forTask(task *transfer.Task) Options {
	if o.Mode == "" {
		o.Mode = task.Reconcile.Mode
	}
	if o.Verify == "" {
		o.Verify = task.Reconcile.Verify
	}
	if o.MaxDeletes <= 0 {
		o.MaxDeletes = task.Reconcile.MaxDeletes
	}
	if o.Shards <= 0 {
		o.Shards = task.Reconcile.Shards
	}
	return o.withDefaults()
}

func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = ModeCopy
	}
	if o.Verify == "" {
		o.Verify = VerifyETag
	}
	if o.MaxDeletes <= 0 {
		o.MaxDeletes = DefaultMaxDeletes
	}
	if o.Checkers <= 0 {
		o.Checkers = 16
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	return o
}
