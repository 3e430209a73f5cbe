package main

import (
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/transfer"
)

// NATSConfig says where JetStream is.
type NATSConfig struct {
	URL            string `yaml:"url"`             // empty: embedded server with a file store under data_dir
	CredsFile      string `yaml:"creds_file"`      // credentials for url
	Replicas       int    `yaml:"replicas"`        // stream replicas; 3 on a 3-node cluster
	EmbeddedListen string `yaml:"embedded_listen"` // optional client port of the embedded server
}

func (n NATSConfig) validate(bad complain) {
	if n.URL != "" {
		for _, u := range strings.Split(n.URL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || pu.Host == "" || !set("nats", "tls", "ws", "wss")[pu.Scheme] {
				bad("nats.url", "%q is not a nats://host:port URL (or a comma-separated list of them)", u)
			}
		}
	}
	if n.EmbeddedListen != "" {
		if _, _, err := net.SplitHostPort(n.EmbeddedListen); err != nil {
			bad("nats.embedded_listen", "%q is not host:port", n.EmbeddedListen)
		}
	}
	if n.Replicas < 1 || n.Replicas > 5 {
		bad("nats.replicas", "%d: want 1 to 5", n.Replicas)
	}
}

// QueueConfig shapes the job and dead-letter streams.
type QueueConfig struct {
	// MaxAttempts is how many attempts that fail a job gets before it is
	// dead-lettered; waiting, hand-backs and crashes do not count.
	MaxAttempts int `yaml:"max_attempts"`
	// MaxDeliver is the name max_attempts had before attempts were
	// counted by oss2s3 rather than by JetStream's deliveries; still read.
	MaxDeliver      int               `yaml:"max_deliver"`
	AckWait         time.Duration     `yaml:"ack_wait"`
	DuplicateWindow time.Duration     `yaml:"duplicate_window"`
	MaxJobs         int64             `yaml:"max_jobs"`
	MaxBytes        transfer.ByteSize `yaml:"max_bytes"`
	DeadLetterAge   time.Duration     `yaml:"dead_letter_max_age"`
	RetryBase       time.Duration     `yaml:"retry_base"`
	RetryMax        time.Duration     `yaml:"retry_max"`
}

// takeOldNames reads max_deliver into max_attempts, and returns a problem
// ("" if none) when the file gives both, differently.
func (q *QueueConfig) takeOldNames() string {
	if q.MaxDeliver == 0 {
		return ""
	}
	problem := ""
	if q.MaxAttempts != transfer.DefaultMaxAttempts && q.MaxAttempts != q.MaxDeliver {
		problem = "queue.max_deliver: the old name of queue.max_attempts; give one of them"
	}
	q.MaxAttempts = q.MaxDeliver
	return problem
}

func (q QueueConfig) validate(bad complain) {
	if q.MaxAttempts < 1 {
		bad("queue.max_attempts", "%d: want at least 1", q.MaxAttempts)
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
}

// WorkersConfig shapes this process's copy workers.
type WorkersConfig struct {
	Concurrency *int `yaml:"concurrency"` // 0: gateway only, no workers in this process
	// LargeConcurrency: the large lane's workers (objects of
	// multipart_threshold or more, the parts of giant ones), beside the
	// concurrency of the small lane's.
	LargeConcurrency   int               `yaml:"large_concurrency"`
	PartSize           transfer.ByteSize `yaml:"part_size"`
	MultipartThreshold transfer.ByteSize `yaml:"multipart_threshold"`
	PartsInFlight      int               `yaml:"parts_in_flight"`
	GiantThreshold     transfer.ByteSize `yaml:"giant_threshold"`
	MemoryBudget       transfer.ByteSize `yaml:"memory_budget"`
	JobTimeout         time.Duration     `yaml:"job_timeout"`
	ShutdownGrace      time.Duration     `yaml:"shutdown_grace"`
	// Lease: a multipart copy whose worker has not renewed its lease
	// this long is resumed by another worker.
	Lease time.Duration `yaml:"lease"`
	// OrphanUploadAge: an upload oss2s3 started that no live copy owns is
	// aborted once this old; the destinations are looked at every
	// OrphanSweepInterval.
	OrphanUploadAge     time.Duration `yaml:"orphan_upload_age"`
	OrphanSweepInterval time.Duration `yaml:"orphan_sweep_interval"`
}

func (w WorkersConfig) validate(bad complain) {
	if w.Concurrency == nil || *w.Concurrency < 0 {
		bad("workers.concurrency", "want 0 (no workers in this process) or more")
	}
	if w.LargeConcurrency < 1 || w.LargeConcurrency > 256 {
		bad("workers.large_concurrency", "%d: want 1 to 256", w.LargeConcurrency)
	}
	validParts(w.PartSize, w.PartsInFlight, "workers", bad)
	if w.MultipartThreshold < 1 {
		bad("workers.multipart_threshold", "%s: want at least 1 byte", w.MultipartThreshold)
	}
	if w.GiantThreshold < w.MultipartThreshold {
		bad("workers.giant_threshold", "%s is below multipart_threshold (%s)", w.GiantThreshold, w.MultipartThreshold)
	}
	if w.Lease < time.Second || w.Lease > 10*time.Minute {
		bad("workers.lease", "%s: want 1s to 10m", w.Lease)
	}
	if w.OrphanUploadAge < w.Lease {
		bad("workers.orphan_upload_age", "%s: want at least workers.lease (%s)", w.OrphanUploadAge, w.Lease)
	}
	if w.OrphanSweepInterval < time.Second {
		bad("workers.orphan_sweep_interval", "%s: want at least 1s", w.OrphanSweepInterval)
	}
	if w.MemoryBudget < w.PartSize {
		bad("workers.memory_budget", "%s is smaller than one part (%s)", w.MemoryBudget, w.PartSize)
	}
}

// validParts checks a part size and parts in flight, the workers' or a
// task's (where 0 is the workers' value).
func validParts(size transfer.ByteSize, inFlight int, path string, bad complain) {
	if size != 0 && (size < transfer.MinPartSize || size > transfer.MaxPartSize) {
		bad(path+".part_size", "%s: S3 parts are 5MiB to 5GiB", size)
	}
	if inFlight < 0 || inFlight > 64 {
		bad(path+".parts_in_flight", "%d: want 1 to 64", inFlight)
	}
}
