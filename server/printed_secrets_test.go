package main

import (
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// everySecretConfig gives every field that holds a secret, token or
// credential its own variable, so one case can set one of them.
const everySecretConfig = `
listen: 127.0.0.1:8080
webhook:
  secrets: ["${WEBHOOK_SECRET}"]
  sources:
    - name: fc
      secrets: ["${SOURCE_SECRET}"]
      buckets: [my-photos]
admin:
  tokens: ["${ADMIN_TOKEN}"]
eventbridge:
  api_key_header: x-api-key
  api_keys: ["${EB_KEY}"]
  basic_users: {eventbridge: ["${EB_PASSWORD}"]}
mns:
  enabled: true
  path_tokens: ["${MNS_TOKEN}"]
sqs:
  - name: q
    queue_url: https://sqs.us-west-2.amazonaws.com/123456789012/q
    region: us-west-2
    access_key_id: AKIDEXAMPLE
    secret_access_key: "${SQS_SK}"
    session_token: "${SQS_TOKEN}"
tasks:
  - name: photos
    source:
      endpoint: https://oss-cn-hangzhou.aliyuncs.com
      bucket: my-photos
      access_key_id: ak
      access_key_secret: "${OSS_SK}"
      security_token: "${OSS_TOKEN}"
    destination:
      region: us-west-2
      bucket: my-photos-copy
      access_key_id: AKIDEXAMPLE
      secret_access_key: "${S3_SK}"
      session_token: "${S3_TOKEN}"
`

// freshSecrets gives every variable of everySecretConfig a new random value.
func freshSecrets() map[string]string {
	vars := map[string]string{}
	for _, v := range []string{"WEBHOOK_SECRET", "SOURCE_SECRET", "ADMIN_TOKEN", "EB_KEY", "EB_PASSWORD", "MNS_TOKEN",
		"SQS_SK", "SQS_TOKEN", "OSS_SK", "OSS_TOKEN", "S3_SK", "S3_TOKEN"} {
		vars[v] = randomHex(32)
	}
	return vars
}

func TestConfigAcceptsFreshSecrets(t *testing.T) {
	t.Parallel()
	if _, err := parseConfig("c.yaml", []byte(everySecretConfig), env(freshSecrets())); err != nil {
		t.Fatal(err)
	}
}

// The values below are printed in the repository's docs: the Kubernetes
// Secret example's placeholders, and the webhook source secret earlier
// versions of config.example.yaml gave as a default.
func TestConfigRefusesEverySecretTheDocsPrint(t *testing.T) {
	t.Parallel()
	const (
		k8sPlaceholder = "replace-with-openssl-rand-hex-32"
		k8sFile        = "deploy/k8s/secret.example.yaml"
		oldDefault     = "0123456789abcdef-example"
		exampleFile    = "deploy/config.example.yaml"
		keyPlaceholder = "replace-me"
	)
	for _, tc := range []struct {
		name, variable, value, want string
	}{
		{"AWebhookSecret", "WEBHOOK_SECRET", k8sPlaceholder,
			"webhook.secrets[0]: is the example value printed in " + k8sFile + ": anyone who read it can sign requests; generate one with openssl rand -hex 32"},
		{"AWebhookSourceSecret", "SOURCE_SECRET", oldDefault,
			"webhook.sources[0].secrets[0]: is the example value printed in " + exampleFile + ": anyone who read it can sign requests"},
		{"AnAdminToken", "ADMIN_TOKEN", k8sPlaceholder, "admin.tokens[0]: is the example value printed in " + k8sFile},
		{"AnEventBridgeAPIKey", "EB_KEY", oldDefault, "eventbridge.api_keys[0]: is the example value printed in " + exampleFile},
		{"AnEventBridgePassword", "EB_PASSWORD", k8sPlaceholder, "eventbridge.basic_users.eventbridge[0]: is the example value printed in " + k8sFile},
		{"AnMNSPathToken", "MNS_TOKEN", oldDefault, "mns.path_tokens[0]: is the example value printed in " + exampleFile},
		{"AnOSSAccessKeySecret", "OSS_SK", keyPlaceholder, "tasks[0].source.access_key_secret: is the example value printed in " + k8sFile + ", not a credential"},
		{"AnOSSSecurityToken", "OSS_TOKEN", keyPlaceholder, "tasks[0].source.security_token: is the example value printed in " + k8sFile},
		{"AnS3SecretAccessKey", "S3_SK", keyPlaceholder, "tasks[0].destination.secret_access_key: is the example value printed in " + k8sFile},
		{"AnS3SessionToken", "S3_TOKEN", keyPlaceholder, "tasks[0].destination.session_token: is the example value printed in " + k8sFile},
		{"AnSQSSecretAccessKey", "SQS_SK", keyPlaceholder, "sqs[0].secret_access_key: is the example value printed in " + k8sFile},
		{"AnSQSSessionToken", "SQS_TOKEN", keyPlaceholder, "sqs[0].session_token: is the example value printed in " + k8sFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vars := freshSecrets()
			vars[tc.variable] = tc.value
			_, err := parseConfig("c.yaml", []byte(everySecretConfig), env(vars))
			if err == nil {
				t.Fatalf("%s = %q accepted", tc.variable, tc.value)
			}
			if !strings.Contains(err.Error(), "has 1 problem(s):\n  - "+tc.want) {
				t.Fatalf("want the one problem %q, got:\n%v", tc.want, err)
			}
		})
	}
}

// The commands that read a configuration file refuse one whose secrets are
// printed in the docs, as main runs them: the example configuration copied,
// with the Kubernetes Secret example's webhook secret, and the webhook
// source secret the example once gave as a default.
func TestCommandsRefuseAConfigurationWithPrintedSecrets(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile("../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Where the example keeps its state is no matter here, but a command
	// that wrongly started must not write into the source tree.
	dir := t.TempDir()
	const dataDir = "\ndata_dir: ./oss2s3-data\n"
	if !strings.Contains(string(example), dataDir) {
		t.Fatal("the example's data_dir is no longer ./oss2s3-data: update this test")
	}
	text := strings.Replace(string(example), dataDir, "\ndata_dir: "+filepath.Join(dir, "data")+"\n", 1)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"OSS2S3_WEBHOOK_SECRET": "replace-with-openssl-rand-hex-32", "OSS2S3_FC_HANGZHOU_SECRET": "0123456789abcdef-example",
		"OSS_ACCESS_KEY_ID": "ak", "OSS_ACCESS_KEY_SECRET": "sk",
	}
	for name, args := range map[string][]string{
		"Serve":          {"oss2s3", "serve", "--config", path},
		"TheDefault":     {"oss2s3", "--config", path},
		"ReconcileLocal": {"oss2s3", "reconcile", "--local", "--task", "photos", "--config", path},
		"SyncLocal":      {"oss2s3", "sync", "--local", "--task", "photos", "--config", path},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// A command that wrongly started runs until this ends.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := run(ctx, args, env(vars), nil, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range []string{
				"webhook.secrets[0]: is the example value printed in deploy/k8s/secret.example.yaml",
				"webhook.sources[0].secrets[0]: is the example value printed in deploy/config.example.yaml",
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
	// The same file with secrets of the operator's own loads.
	mine := maps.Clone(vars)
	mine["OSS2S3_WEBHOOK_SECRET"], mine["OSS2S3_FC_HANGZHOU_SECRET"] = randomHex(32), randomHex(32)
	if _, err := loadConfig(path, env(mine)); err != nil {
		t.Fatal(err)
	}
}
