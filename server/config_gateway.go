package main

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/oss2s3/oss2s3/deploy"
	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest/cloudevents"
	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
)

// WebhookConfig authenticates /v1/events/oss.
type WebhookConfig struct {
	Secrets      []string          `yaml:"secrets"`
	Sources      []WebhookSource   `yaml:"sources"`
	MaxBodyBytes transfer.ByteSize `yaml:"max_body_bytes"`
	// MaxRecords bounds the records (EventBridge events) of one request,
	// on every event endpoint; a request with more gets 413 before any is
	// decoded. OSS sends one record per event.
	MaxRecords int           `yaml:"max_records"`
	Tolerance  time.Duration `yaml:"tolerance"`
}

// validateSecrets: /v1/events/oss accepts only signed requests.
func (w WebhookConfig) validateSecrets(bad complain) {
	if len(w.Secrets) == 0 && len(w.Sources) == 0 {
		bad("webhook.secrets", "at least one secret (or webhook.sources) is required: /v1/events/oss accepts only signed requests")
	}
	checkSecrets("webhook.secrets", w.Secrets, bad)
}

func (w WebhookConfig) validateSources(bad complain) {
	names := map[string]bool{}
	for i, src := range w.Sources {
		src.validate(fmt.Sprintf("webhook.sources[%d]", i), names, bad)
	}
}

// validateLimits checks how much one request to any event endpoint may
// carry, and how old its signature may be.
func (w WebhookConfig) validateLimits(bad complain) {
	if w.MaxBodyBytes < transfer.KiB {
		bad("webhook.max_body_bytes", "%s: want at least 1KiB", w.MaxBodyBytes)
	}
	if w.MaxRecords < 1 || w.MaxRecords > 10_000 {
		bad("webhook.max_records", "%d: want 1 to 10000", w.MaxRecords)
	}
	if w.Tolerance < time.Second {
		bad("webhook.tolerance", "%s: want at least 1s", w.Tolerance)
	}
}

// WebhookSource is one sender with secrets of its own, allowed to report
// events of some buckets only.
type WebhookSource struct {
	Name    string   `yaml:"name"`
	Secrets []string `yaml:"secrets"`
	Buckets []string `yaml:"buckets"` // empty: any bucket
}

// validate checks the source at path; names holds the names of the
// sources before it.
func (s WebhookSource) validate(path string, names map[string]bool, bad complain) {
	if !taskName.MatchString(s.Name) || names[s.Name] {
		bad(path+".name", "%q: want a unique name of letters, digits, '-' or '_'", s.Name)
	}
	names[s.Name] = true
	if len(s.Secrets) == 0 {
		bad(path+".secrets", "at least one secret is required")
	}
	checkSecrets(path+".secrets", s.Secrets, bad)
}

// EventBridgeConfig authenticates POST /v1/events/eventbridge as the
// EventBridge connection is set up: an API key in a header, or basic auth.
type EventBridgeConfig struct {
	APIKeyHeader string              `yaml:"api_key_header"`
	APIKeys      []string            `yaml:"api_keys"`
	BasicUsers   map[string][]string `yaml:"basic_users"`
}

func (e EventBridgeConfig) auth() cloudevents.Auth {
	return cloudevents.Auth{Header: e.APIKeyHeader, APIKeys: e.APIKeys, BasicUsers: e.BasicUsers}
}

// validate checks the endpoint's credentials, if it has any: without, the
// endpoint is off.
func (e EventBridgeConfig) validate(bad complain) {
	if len(e.APIKeys) == 0 && len(e.BasicUsers) == 0 {
		return
	}
	if err := e.auth().Validate(); err != nil {
		bad("eventbridge", "%v", err)
	}
	checkSecrets("eventbridge.api_keys", e.APIKeys, bad)
	for user, pws := range e.BasicUsers {
		checkSecrets("eventbridge.basic_users."+user, pws, bad)
	}
}

// MNSConfig turns on POST /v1/events/mns (an MNS HTTP push subscription).
type MNSConfig struct {
	Enabled         bool     `yaml:"enabled"`
	CertHostPattern string   `yaml:"cert_host_pattern"` // regexp for the signing certificate's host; "": Aliyun's MNS hosts
	PathTokens      []string `yaml:"path_tokens"`       // require /v1/events/mns/<token>
	// AllowWithoutPathToken lets mns.enabled go without path_tokens. MNS
	// signs with 512-bit RSA keys, which can be factored; without a token
	// the signature is all that keeps forged pushes out, and every
	// request can make the gateway download a certificate.
	AllowWithoutPathToken bool `yaml:"allow_without_path_token"`
}

func (m MNSConfig) validate(bad complain) {
	checkSecrets("mns.path_tokens", m.PathTokens, bad)
	if _, err := mns.HostPattern(m.CertHostPattern); err != nil {
		bad("mns.cert_host_pattern", "%v", err)
	}
	if m.Enabled && len(m.PathTokens) == 0 && !m.AllowWithoutPathToken {
		bad("mns.path_tokens", "required with mns.enabled: MNS signs with 512-bit RSA keys, which can be factored, so an unguessable token "+
			"(openssl rand -hex 32) must keep forged pushes out; subscribe https://<gateway>/v1/events/mns/<token>, "+
			"or set mns.allow_without_path_token: true")
	}
}

// AdminConfig authenticates the admin API (/v1/dlq, ...).
type AdminConfig struct {
	Tokens []string `yaml:"tokens"` // bearer tokens (and the status page's sign-in); none: the admin API answers 403
	// GrafanaURL, if set, is the Grafana the status page links the
	// dashboards of deploy/grafana on (e.g. https://grafana.example.com).
	GrafanaURL string `yaml:"grafana_url"`
}

func (a AdminConfig) validate(bad complain) {
	for i, s := range a.Tokens {
		if len(s) < 16 {
			bad(fmt.Sprintf("admin.tokens[%d]", i), "is %d characters; use at least 16", len(s))
		}
	}
	if a.GrafanaURL != "" {
		if u, err := url.Parse(a.GrafanaURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("admin.grafana_url", "%q is not an http(s) URL", a.GrafanaURL)
		}
	}
}

// validateCallers checks every secret, token and password that lets a
// caller in, each section by its own rules; then every value of the file,
// credentials of the tasks and queues included, that the docs print.
func (c *Config) validateCallers(bad complain) {
	c.Webhook.validateSecrets(bad)
	c.MNS.validate(bad)
	c.EventBridge.validate(bad)
	c.Webhook.validateSources(bad)
	c.Admin.validate(bad)
	c.checkPrintedSecrets(deploy.PrintedSecrets(), bad)
}

// checkSecrets wants every secret at path long enough not to be guessed.
func checkSecrets(path string, secrets []string, bad complain) {
	for i, s := range secrets {
		if len(s) < 16 {
			bad(fmt.Sprintf("%s[%d]", path, i), "is %d characters; use at least 16 (e.g. openssl rand -hex 32)", len(s))
		}
	}
}

// checkPrintedSecrets reports every secret, token and credential whose value
// the repository's docs print (printed: value -> file): anyone who read the
// docs could use it, e.g. sign webhooks for the configured buckets. It is
// part of validate, so the local commands (reconcile --local, sync --local)
// refuse what serve refuses: they read the same file. The demo's secrets
// are generated, so it passes.
func (c *Config) checkPrintedSecrets(printed map[string]string, bad complain) {
	secrets := func(path, anyoneCan string, vals []string) {
		for i, v := range vals {
			if file, ok := printed[v]; ok {
				bad(fmt.Sprintf("%s[%d]", path, i), "is the example value printed in %s: anyone who read it can %s; generate one with openssl rand -hex 32", file, anyoneCan)
			}
		}
	}
	credential := func(path, v string) {
		if file, ok := printed[v]; ok {
			bad(path, "is the example value printed in %s, not a credential: give the keys of your own account", file)
		}
	}
	secrets("webhook.secrets", "sign requests", c.Webhook.Secrets)
	for i, src := range c.Webhook.Sources {
		secrets(fmt.Sprintf("webhook.sources[%d].secrets", i), "sign requests", src.Secrets)
	}
	secrets("admin.tokens", "call the admin API", c.Admin.Tokens)
	secrets("eventbridge.api_keys", "send events", c.EventBridge.APIKeys)
	for _, user := range slices.Sorted(maps.Keys(c.EventBridge.BasicUsers)) {
		secrets("eventbridge.basic_users."+user, "send events", c.EventBridge.BasicUsers[user])
	}
	secrets("mns.path_tokens", "post to the MNS endpoint", c.MNS.PathTokens)
	for i, t := range c.Tasks {
		tp := fmt.Sprintf("tasks[%d]", i)
		credential(tp+".source.access_key_secret", t.Source.AccessKeySecret)
		credential(tp+".source.security_token", t.Source.SecurityToken)
		credential(tp+".destination.secret_access_key", t.Destination.SecretAccessKey)
		credential(tp+".destination.session_token", t.Destination.SessionToken)
		if sm := t.Source.Credentials.SecretsManager; sm != nil {
			credential(tp+".source.credentials.secrets_manager.secret_access_key", sm.SecretAccessKey)
		}
		if a := t.Source.Credentials.Aliyun; a != nil {
			credential(tp+".source.credentials.aliyun.access_key_secret", a.AccessKeySecret)
		}
	}
	for i, q := range c.SQS {
		credential(fmt.Sprintf("sqs[%d].secret_access_key", i), q.SecretAccessKey)
		credential(fmt.Sprintf("sqs[%d].session_token", i), q.SessionToken)
	}
}
