package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSecretsInFindsTheValuesGivenToSecretNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"AYAMLKey", `access_key_secret: "sk-printed-1"`, []string{"sk-printed-1"}},
		{"AFlowList", `secrets: ["a-printed-1", 'a-printed-2']  # two`, []string{"a-printed-1", "a-printed-2"}},
		{"ABlockList", "admin:\n  tokens:\n    - \"tok-printed-1\"\n    - tok-printed-2\n  other: x\n", []string{"tok-printed-1", "tok-printed-2"}},
		{"AListAtTheKeysDepth", "tokens:\n- tok-printed-3\nlisten: x\n", []string{"tok-printed-3"}},
		{"NestedPasswords", "basic_users:\n  eventbridge: [\"pw-printed-1\"]\n", []string{"pw-printed-1"}},
		{"NestedBlockPasswords", "basic_users:\n  eventbridge:\n    - pw-printed-3\nlisten: x\n", []string{"pw-printed-3"}},
		{"AFlowMapOfPasswordsButNotItsUserNames", `basic_users: {eventbridge: ["pw-printed-2"]}`, []string{"pw-printed-2"}},
		{"TheDefaultOfASecretVariable", `secrets: ["${OSS2S3_FC_SECRET:-def-printed-1}"]`, []string{"def-printed-1"}},
		{"ADefaultInAComment", `# e.g. {eventbridge: ["${OSS2S3_EVENTBRIDGE_PASSWORD:-def-printed-2}"]}`, []string{"def-printed-2"}},
		{"AServerlessDevsDefault", `X: ${env('OSS2S3_WEBHOOK_SECRET', 'def-printed-3')}`, []string{"def-printed-3"}},
		{"AKubernetesSecretKey", `  webhook-secret: "k8s-printed-1"`, []string{"k8s-printed-1"}},
		{"AKeyInAFlowMap", `stringData: {admin-token: k8s-printed-2, other: x}`, []string{"k8s-printed-2"}},
		{"ACommentedOutEntry", "# sqs:\n#   - name: dth\n#     secret_access_key: sqs-printed-1\n", []string{"sqs-printed-1"}},
		{"ShellAssignments", `export OSS2S3_GATEWAY_URL=https://x OSS2S3_WEBHOOK_SECRET=sh-printed-1 OSS2S3_ADMIN_TOKEN=sh-printed-2`, []string{"sh-printed-1", "sh-printed-2"}},
		{"AFlagWithASpace", `oss2s3 reconcile --task photos --token flag-printed-1`, []string{"flag-printed-1"}},
		{"AKubectlLiteral", `--from-literal=admin-token=lit-printed-1`, []string{"lit-printed-1"}},
		{"ReferencesAndPlaceholdersAreNoValues", strings.Join([]string{
			`secrets: ["${OSS2S3_WEBHOOK_SECRET}", "${OLD:-}"]`,
			`OSS2S3_WEBHOOK_SECRET=$(openssl rand -hex 32) OSS_ACCESS_KEY_SECRET=...`,
			`--token $TOKEN`, `secret_access_key: "<your key>"`, `basic_users: {}`,
			`OSS2S3_WEBHOOK_SECRET: ${OSS2S3_WEBHOOK_SECRET:?set it}`,
			`OSS2S3_SQS_SECRET_ACCESS_KEY=AKIA...`,
		}, "\n"), nil},
		{"NamesOfSecretsAndProseAreNoValues", strings.Join([]string{
			`api_key_header: x-api-key`, `secretKeyRef: {name: oss2s3, key: webhook-secret}`,
			`creds_file: /etc/nats.creds`, `- name: OSS2S3_WEBHOOK_SECRET`, `the secret is the only credential.`,
			`# of your choice, and/or basic auth. Several keys or passwords: rotation.`,
			`  - webhook.secrets: at least one secret is required: /v1/events/oss accepts only signed requests`,
		}, "\n"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := secretsIn(tc.text); !slices.Equal(got, tc.want) {
				t.Errorf("secretsIn(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

func TestPrintedSecretsHoldTheEmbeddedFilesValues(t *testing.T) {
	t.Parallel()
	printed := PrintedSecrets()
	if got := printed["replace-with-openssl-rand-hex-32"]; got != "deploy/k8s/secret.example.yaml" {
		t.Errorf("the Secret example's webhook secret: printed in %q, want deploy/k8s/secret.example.yaml", got)
	}
	if got := printed["0123456789abcdef-example"]; got == "" {
		t.Error("the value earlier versions of config.example.yaml printed is missing")
	}
}

// TestDocsPrintNoUnlistedSecret scans every doc the repository ships that
// shows configuration: a secret-like value printed there must be one
// PrintedSecrets returns, or oss2s3 serve would accept a secret anyone can
// read.
func TestDocsPrintNoUnlistedSecret(t *testing.T) {
	t.Parallel()
	printed := PrintedSecrets()
	docs := docFiles(t)
	for _, want := range []string{"README.md", "bench/README.md", "deploy/config.example.yaml", "deploy/k8s/secret.example.yaml", "aliyun-fc/s.yaml"} {
		if !slices.Contains(docs, want) {
			t.Fatalf("the scan misses %s (scanned %v)", want, docs)
		}
	}
	for _, doc := range docs {
		b, err := os.ReadFile(filepath.Join("..", doc))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if strings.HasSuffix(doc, ".md") {
			text = markdownCode(text)
		}
		for _, v := range secretsIn(text) {
			if _, ok := printed[v]; !ok {
				t.Errorf("%s prints the secret-like value %q, which PrintedSecrets lacks: oss2s3 serve would accept it. "+
					"Print a reference or a placeholder instead (${NAME}, $(openssl rand -hex 32), ...), or add it to printedOutside in deploy/secrets.go", doc, v)
			}
		}
	}
}

// docFiles lists, relative to the repository root, the files the
// repository ships that may show configuration: Markdown, YAML, NATS
// configuration, Dockerfiles and shell scripts, outside .git and
// testdata.
func docFiles(t *testing.T) []string {
	t.Helper()
	var docs []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || name == "testdata" || name == "oss2s3-data" {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		ext := filepath.Ext(name)
		if slices.Contains([]string{".md", ".yaml", ".yml", ".conf", ".sh"}, ext) || strings.HasPrefix(name, "Dockerfile") {
			rel, err := filepath.Rel("..", path)
			if err != nil {
				return err
			}
			docs = append(docs, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// markdownCode returns the code of a Markdown text, its fenced blocks and
// inline code spans, one span a line: what a reader copies. Prose such as
// "a continuation token: split" is not configuration.
func markdownCode(text string) string {
	var code []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			code = append(code, line)
			continue
		}
		spans := strings.Split(line, "`")
		for i := 1; i < len(spans); i += 2 {
			code = append(code, spans[i])
		}
	}
	return strings.Join(code, "\n")
}
