package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestBandwidthCapIsWiredAndShown: a task's options.bandwidth reaches its
// source (the cap paces reads: transfer's TestBandwidthPacesReads) and is
// shown as oss2s3_source_bandwidth_limit_bytes_per_second; a task without
// one shows 0.
func TestBandwidthCapIsWiredAndShown(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig("config.example.yaml", data, env(map[string]string{
		"OSS2S3_WEBHOOK_SECRET": randomHex(32), "OSS2S3_FC_HANGZHOU_SECRET": randomHex(32),
		"OSS_ACCESS_KEY_ID": "ak", "OSS_ACCESS_KEY_SECRET": "sk",
	}))
	if err != nil {
		t.Fatal(err)
	}
	second := cfg.Tasks[0]
	second.Name = "uncapped"
	cfg.Tasks = append(cfg.Tasks[:1], second)
	cfg.Tasks[0].Options.Bandwidth = 3 << 20
	cfg.Tasks[1].Options.Bandwidth = 0
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{3 << 20, 0} {
		src, ok := a.live.Tasks()[cfg.Tasks[i].Name].Source.(*transfer.OSSSource)
		if !ok || src.Bandwidth() != want {
			t.Errorf("task %d: source %T with a cap of %v, want %d", i, a.live.Tasks()[cfg.Tasks[i].Name].Source, src, want)
		}
	}
	if got := testutil.ToFloat64(a.m.SourceBandwidth.WithLabelValues(cfg.Tasks[0].Name)); got != 3<<20 {
		t.Errorf("capped task shows %v bytes/s, want %d", got, 3<<20)
	}
	if got := testutil.ToFloat64(a.m.SourceBandwidth.WithLabelValues(cfg.Tasks[1].Name)); got != 0 {
		t.Errorf("uncapped task shows %v bytes/s, want 0", got)
	}
}
