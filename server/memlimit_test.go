package main

import (
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

// TestMemoryLimit: a process that copies gets memory_budget + headroom as
// its soft memory limit (what holds its peak RSS); a gateway-only process
// (workers.concurrency 0) gets none, since nothing in it is bounded by the
// budget and a limit below its live heap (the embedded JetStream's
// duplicate window) would only keep the collector running; GOMEMLIMIT,
// when set, wins either way.
func TestMemoryLimit(t *testing.T) {
	noEnv := env(nil)
	withEnv := env(map[string]string{"GOMEMLIMIT": "1GiB"})
	workers := func(concurrency int, budget transfer.ByteSize) *Config {
		cfg := defaultConfig()
		cfg.Workers.Concurrency = &concurrency
		cfg.Workers.MemoryBudget = budget
		return &cfg
	}
	for _, c := range []struct {
		name   string
		cfg    *Config
		getenv func(string) string
		limit  int64
		set    bool
	}{
		{"copying, default budget", workers(16, transfer.DefaultMemoryBudget), noEnv, int64(transfer.DefaultMemoryBudget) + memoryHeadroom, true},
		{"copying, one worker, 512 MiB", workers(1, 512*transfer.MiB), noEnv, 512<<20 + memoryHeadroom, true},
		{"gateway only", workers(0, transfer.DefaultMemoryBudget), noEnv, 0, false},
		{"gateway only, large budget", workers(0, 512*transfer.MiB), noEnv, 0, false},
		{"copying, GOMEMLIMIT set", workers(16, transfer.DefaultMemoryBudget), withEnv, 0, false},
		{"gateway only, GOMEMLIMIT set", workers(0, transfer.DefaultMemoryBudget), withEnv, 0, false},
	} {
		limit, set := memoryLimit(c.cfg, c.getenv)
		if limit != c.limit || set != c.set {
			t.Errorf("%s: memoryLimit = %d, %v; want %d, %v", c.name, limit, set, c.limit, c.set)
		}
	}
	// The default configuration copies, so it is limited.
	def := defaultConfig()
	if _, set := memoryLimit(&def, noEnv); !set {
		t.Error("the default configuration (workers.concurrency 16) got no memory limit")
	}
}
