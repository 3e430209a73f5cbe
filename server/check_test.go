package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckCommand: `oss2s3 check` passes the example configuration with
// its variables set (contacting nothing: the NATS URL it names does not
// answer), and fails, naming the field, a bad schedule or an unset
// secret, with serve's own report.
func TestCheckCommand(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile("../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"OSS2S3_WEBHOOK_SECRET": randomHex(32), "OSS2S3_FC_HANGZHOU_SECRET": randomHex(32),
		"OSS_ACCESS_KEY_ID": "ak", "OSS_ACCESS_KEY_SECRET": "sk",
		"NATS_URL": "nats://127.0.0.1:1", // nothing listens there
	}
	check := func(t *testing.T, yaml string, vars map[string]string) (string, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"oss2s3", "check", "--config", path}, env(vars), nil, &out, &errOut)
		return out.String() + errOut.String(), err
	}

	out, err := check(t, string(example), vars)
	if err != nil || !strings.Contains(out, "valid:") || !strings.Contains(out, "an external NATS") {
		t.Fatalf("the example with its variables set: %v\n%s", err, out)
	}
	if strings.Contains(out, "127.0.0.1:1") {
		t.Errorf("check printed the NATS URL (it may hold a password): %s", out)
	}

	badSchedule := strings.Replace(string(example), `schedule: ""`, `schedule: "0 10 ? * 9 *"`, 1)
	if badSchedule == string(example) {
		t.Fatal("the example has no schedule line to change")
	}
	_, err = check(t, badSchedule, vars)
	if err == nil || !strings.Contains(err.Error(), ".reconcile.schedule") || !strings.Contains(err.Error(), "1 (SUN) to 7 (SAT)") {
		t.Errorf("a bad schedule: %v", err)
	}

	unset := map[string]string{}
	for k, v := range vars {
		if k != "OSS_ACCESS_KEY_SECRET" {
			unset[k] = v
		}
	}
	_, err = check(t, string(example), unset)
	if err == nil || !strings.Contains(err.Error(), "OSS_ACCESS_KEY_SECRET is not set") {
		t.Errorf("an unset secret: %v", err)
	}
}
