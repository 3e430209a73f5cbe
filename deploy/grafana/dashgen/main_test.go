package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDashboardsAreGenerated fails when a committed dashboard was edited
// without its Go definition, or the other way round.
func TestDashboardsAreGenerated(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := run([]string{"-check", "-dir", filepath.Join("..", "dashboards")}, &out, io.Discard); err != nil {
		t.Fatalf("%v\nregenerate them: go run ./deploy/grafana/dashgen", err)
	}
}

func TestDashgenCheckFindsStaleFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string)
		want   string
	}{
		{"EditedFile", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "oss2s3-task.json")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			edited := strings.Replace(string(b), `"Jobs queued"`, `"Jobs waiting"`, 1)
			if edited == string(b) {
				t.Fatal("the task dashboard has no panel titled Jobs queued to edit")
			}
			if err := os.WriteFile(p, []byte(edited), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "oss2s3-task.json"},
		{"MissingFile", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "oss2s3-reconcile.json")); err != nil {
				t.Fatal(err)
			}
		}, "oss2s3-reconcile.json"},
		{"HandWrittenFile", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "extra.json"), []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "extra.json (not generated)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := run([]string{"-dir", dir}, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			if err := run([]string{"-check", "-dir", dir}, io.Discard, io.Discard); err != nil {
				t.Fatalf("fresh output is stale: %v", err)
			}
			tc.change(t, dir)
			err := run([]string{"-check", "-dir", dir}, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
