package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oss2s3/oss2s3/internal/smemu"
)

// TestConfigSecretMissingFailsAtStart: a task whose secret does not exist
// stops the start, and the message names the field and the secret.
func TestConfigSecretMissingFailsAtStart(t *testing.T) {
	t.Parallel()
	sm := smemu.New(smemu.Options{Credentials: map[string]string{"AKSM": "sm-secret"}})
	endpoint, err := sm.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sm.Close() })
	sm.Rotate("dth-oss-credentials", `{"access_key_id":"a","secret_access_key":"b"}`)
	yaml := `
webhook:
  secrets: ["0123456789abcdef0123"]
tasks:
  - name: photos
    source:
      endpoint: https://oss-cn-hangzhou.aliyuncs.com
      bucket: abc
      credentials:
        secrets_manager: {name: dth-oss-credential, region: us-west-2, endpoint: "${SM}", access_key_id: AKSM, secret_access_key: sm-secret}
    destination: {region: us-west-2, bucket: abc, access_key_id: a, secret_access_key: b}
`
	cfg, err := parseConfig("test.yaml", []byte(yaml), env(map[string]string{"SM": endpoint}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("started with a secret that does not exist")
	}
	want := `task photos: source.credentials.secrets_manager.name: secret "dth-oss-credential": Secrets Manager has no such secret`
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("got %q, want it to say %q", err, want)
	}

	t.Run("TheRightNameStarts", func(t *testing.T) {
		cfg, err := parseConfig("test.yaml", []byte(strings.Replace(yaml, "dth-oss-credential,", "dth-oss-credentials,", 1)),
			env(map[string]string{"SM": endpoint}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCheckCredentials: `oss2s3 check` passes the example with its keys
// read from a secret (contacting no Secrets Manager: the endpoint named
// does not answer) or a destination role, and fails, naming the field, a
// secret without a name or a malformed role ARN.
func TestCheckCredentials(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile("../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vars := env(map[string]string{
		"OSS2S3_WEBHOOK_SECRET": randomHex(32), "OSS2S3_FC_HANGZHOU_SECRET": randomHex(32),
		"OSS_ACCESS_KEY_ID": "ak", "OSS_ACCESS_KEY_SECRET": "sk",
	})
	const keys = "      access_key_id: \"${OSS_ACCESS_KEY_ID}\"\n      access_key_secret: \"${OSS_ACCESS_KEY_SECRET}\"\n"
	if !strings.Contains(string(example), keys) || !strings.Contains(string(example), `role_arn: ""`) {
		t.Fatal("the example has no source keys or role_arn line to change")
	}
	check := func(t *testing.T, yaml string) error {
		t.Helper()
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		return run(context.Background(), []string{"oss2s3", "check", "--config", path}, vars, nil, &out, &out)
	}
	cases := []struct {
		name, from, to, want string
	}{
		{"ASecretIsValidWithoutReadingIt", keys,
			"      credentials: {secrets_manager: {name: dth-oss-credentials, region: us-west-2, endpoint: \"http://127.0.0.1:1\"}}\n", ""},
		{"ARoleIsValidWithoutAssumingIt", `role_arn: ""`, `role_arn: "arn:aws:iam::123456789012:role/oss2s3-writer"`, ""},
		{"ASecretWithoutANameFails", keys, "      credentials: {secrets_manager: {region: us-west-2}}\n", "tasks[0].source.credentials.secrets_manager.name: required"},
		{"AMalformedRoleARNFails", `role_arn: ""`, `role_arn: "arn:aws:iam::oss2s3-writer"`, "tasks[0].destination.role_arn: \"arn:aws:iam::oss2s3-writer\" is not an IAM role ARN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := check(t, strings.Replace(string(example), tc.from, tc.to, 1))
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestConfigRefusesPrintedSecretsInCredentialSources: the keys that read a
// secret or assume a RAM role are credentials like the others: a value the
// docs print is refused, naming the field.
func TestConfigRefusesPrintedSecretsInCredentialSources(t *testing.T) {
	t.Parallel()
	const yaml = `
webhook:
  secrets: ["0123456789abcdef0123"]
tasks:
  - name: from-secret
    source:
      endpoint: https://oss-cn-hangzhou.aliyuncs.com
      bucket: abc
      credentials:
        secrets_manager: {name: dth-oss-credentials, region: us-west-2, access_key_id: AKIA1, secret_access_key: "${SM_SK}"}
    destination: {region: us-west-2, bucket: abc}
  - name: from-role
    source:
      endpoint: https://oss-cn-hangzhou.aliyuncs.com
      bucket: abc
      credentials:
        aliyun: {type: ram_role_arn, access_key_id: LTAI1, access_key_secret: "${RAM_SK}", role_arn: "acs:ram::1234567890123456:role/r"}
    destination: {region: us-west-2, bucket: abc}
`
	fresh := map[string]string{"SM_SK": randomHex(20), "RAM_SK": randomHex(20)}
	if _, err := parseConfig("c.yaml", []byte(yaml), env(fresh)); err != nil {
		t.Fatal(err)
	}
	for variable, want := range map[string]string{
		"SM_SK":  "tasks[0].source.credentials.secrets_manager.secret_access_key: is the example value printed in deploy/k8s/secret.example.yaml",
		"RAM_SK": "tasks[1].source.credentials.aliyun.access_key_secret: is the example value printed in deploy/k8s/secret.example.yaml",
	} {
		vars := map[string]string{"SM_SK": fresh["SM_SK"], "RAM_SK": fresh["RAM_SK"], variable: "replace-me"}
		_, err := parseConfig("c.yaml", []byte(yaml), env(vars))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s printed in the docs: %v, want %q", variable, err, want)
		}
	}
}
