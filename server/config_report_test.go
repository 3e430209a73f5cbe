package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden configuration reports in testdata/config")

// TestConfigReportsStayWordForWord pins the whole startup report of each
// file in testdata/config: every problem, its path, its words and their
// order. An operator reads this report when the process refuses to start;
// moving the checks around must not change it.
func TestConfigReportsStayWordForWord(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/config/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configurations in testdata/config: %v", err)
	}
	getenv := env(map[string]string{"WEBHOOK_SECRET": "0123456789abcdef0123"})
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = parseConfig(file, data, getenv)
			if err == nil {
				t.Fatal("accepted")
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if got := err.Error() + "\n"; got != string(want) {
				t.Errorf("the report changed.\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
