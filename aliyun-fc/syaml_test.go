package main

import (
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// sYAML is the part of s.yaml the checks read.
type sYAML struct {
	Edition   string `yaml:"edition"`
	Resources map[string]struct {
		Component string `yaml:"component"`
		Props     struct {
			Runtime             string `yaml:"runtime"`
			Code                string `yaml:"code"`
			Timeout             int    `yaml:"timeout"`
			CustomRuntimeConfig struct {
				Command []string `yaml:"command"`
				Port    int      `yaml:"port"`
			} `yaml:"customRuntimeConfig"`
			EnvironmentVariables map[string]string `yaml:"environmentVariables"`
			AsyncInvokeConfig    struct {
				DestinationConfig struct {
					OnFailure struct {
						Destination string `yaml:"destination"`
					} `yaml:"onFailure"`
				} `yaml:"destinationConfig"`
			} `yaml:"asyncInvokeConfig"`
			Triggers []struct {
				TriggerType    string `yaml:"triggerType"`
				InvocationRole string `yaml:"invocationRole"`
				SourceArn      string `yaml:"sourceArn"`
				TriggerConfig  struct {
					Events []string `yaml:"events"`
					Filter struct {
						Key map[string]string `yaml:"key"`
					} `yaml:"filter"`
				} `yaml:"triggerConfig"`
			} `yaml:"triggers"`
		} `yaml:"props"`
	} `yaml:"resources"`
}

// TestServerlessDevsDeployment checks s.yaml against the function: the
// runtime FC must start it with, environment variables it reads, and
// trigger events the gateway acts on.
func TestServerlessDevsDeployment(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var s sYAML
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("s.yaml: %v", err)
	}
	if s.Edition != "3.0.0" || len(s.Resources) != 1 {
		t.Fatalf("s.yaml: edition %q with %d resources, want 3.0.0 with one function", s.Edition, len(s.Resources))
	}
	for name, r := range s.Resources {
		p := r.Props
		if r.Component != "fc3" || p.Runtime != "custom.debian10" || p.Code != "./code.zip" {
			t.Errorf("%s: component %q runtime %q code %q, want fc3, custom.debian10, ./code.zip (what build.sh writes)", name, r.Component, p.Runtime, p.Code)
		}
		if !slices.Equal(p.CustomRuntimeConfig.Command, []string{"/code/bootstrap"}) || p.CustomRuntimeConfig.Port != 9000 {
			t.Errorf("%s: customRuntimeConfig %+v, want command [/code/bootstrap] on port 9000", name, p.CustomRuntimeConfig)
		}

		// Every variable set is one the function reads, and each mode's
		// own variables are there.
		for k := range p.EnvironmentVariables {
			if _, ok := envVars[k]; !ok {
				t.Errorf("%s: sets %s, which the function does not read", name, k)
			}
		}
		for _, k := range []string{"OSS2S3_MODE", "OSS2S3_TIMEOUT", "OSS2S3_GATEWAY_URL", "OSS2S3_WEBHOOK_SECRET",
			"OSS2S3_SQS_QUEUE_URL", "OSS2S3_SQS_FORMAT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			if _, ok := p.EnvironmentVariables[k]; !ok {
				t.Errorf("%s: does not set %s", name, k)
			}
		}
		// The budget's default fits the function's timeout.
		def := regexp.MustCompile(`'([^']*)'\)\}$`).FindStringSubmatch(p.EnvironmentVariables["OSS2S3_TIMEOUT"])
		if def == nil {
			t.Errorf("%s: OSS2S3_TIMEOUT = %q, want ${env('OSS2S3_TIMEOUT', '<default>')}", name, p.EnvironmentVariables["OSS2S3_TIMEOUT"])
		} else if d, err := time.ParseDuration(def[1]); err != nil || d >= time.Duration(p.Timeout)*time.Second {
			t.Errorf("%s: OSS2S3_TIMEOUT default %q does not fit the function's %ds timeout", name, def[1], p.Timeout)
		}

		// An event FC gave up on goes to an MNS topic, whose push the
		// gateway reads (mns: FC destination records).
		if d := p.AsyncInvokeConfig.DestinationConfig.OnFailure.Destination; !regexp.MustCompile(`^\$\{env\('OSS2S3_FC_FAILURE_TOPIC', 'acs:mns:[^']*:/topics/[^/']+/messages'\)\}$`).MatchString(d) {
			t.Errorf("%s: failure destination %q, want an MNS topic from OSS2S3_FC_FAILURE_TOPIC", name, d)
		}

		if len(p.Triggers) != 1 || p.Triggers[0].TriggerType != "oss" {
			t.Fatalf("%s: want one OSS trigger, got %+v", name, p.Triggers)
		}
		tr := p.Triggers[0]
		if !strings.HasSuffix(tr.InvocationRole, ":role/aliyunosseventnotificationrole") || !strings.HasPrefix(tr.SourceArn, "acs:oss:") {
			t.Errorf("%s: invocationRole %q sourceArn %q", name, tr.InvocationRole, tr.SourceArn)
		}
		if _, ok := tr.TriggerConfig.Filter.Key["prefix"]; !ok {
			t.Errorf("%s: the trigger has no prefix filter", name)
		}
		if _, ok := tr.TriggerConfig.Filter.Key["suffix"]; !ok {
			t.Errorf("%s: the trigger has no suffix filter", name)
		}
		// The seed's five, and deletes; each one the gateway acts on.
		want := []string{"oss:ObjectCreated:PutObject", "oss:ObjectCreated:PostObject", "oss:ObjectCreated:CopyObject",
			"oss:ObjectCreated:CompleteMultipartUpload", "oss:ObjectCreated:AppendObject",
			"oss:ObjectRemoved:DeleteObject", "oss:ObjectRemoved:DeleteObjects",
			"oss:ObjectCreated:PutSymlink", "oss:ObjectModified:UpdateObjectMeta"}
		for _, e := range want {
			if !slices.Contains(tr.TriggerConfig.Events, e) {
				t.Errorf("%s: the trigger lacks %s", name, e)
			}
		}
		for _, e := range tr.TriggerConfig.Events {
			if !strings.HasPrefix(e, "oss:") || ossevent.KindOf(e) == ossevent.KindIgnore {
				t.Errorf("%s: trigger event %q is not one the gateway acts on", name, e)
			}
		}
	}
}

// TestREADMEDocumentsEveryVariable keeps the deployment guide and the
// function in step.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "## Deploying the Function Compute function")
	if !ok {
		t.Fatal(`README.md has no "## Deploying the Function Compute function" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	for k := range envVars {
		if !strings.Contains(section, "`"+k+"`") {
			t.Errorf("README's deployment section does not document `%s`", k)
		}
	}
	for _, w := range []string{"code.zip", "s deploy", "AliyunOSSEventNotificationRole", "fc:InvokeFunction", "sqs:SendMessage"} {
		if !strings.Contains(section, w) {
			t.Errorf("README's deployment section does not mention %s", w)
		}
	}
}

// TestEnvVarsIsWhatTheFunctionReads keeps envVars (which s.yaml and the
// README are checked against) equal to the variables loadConfig asks for.
func TestEnvVarsIsWhatTheFunctionReads(t *testing.T) {
	t.Parallel()
	asked := map[string]bool{}
	for _, mode := range []string{"webhook", "sqs"} {
		_, _ = loadConfig([]string{"aliyun-fc"}, func(k string) string {
			asked[k] = true
			if k == "OSS2S3_MODE" {
				return mode
			}
			return ""
		}, io.Discard)
	}
	for k := range asked {
		if _, ok := envVars[k]; !ok {
			t.Errorf("the function reads %s, which envVars does not list", k)
		}
	}
	for k := range envVars {
		if !asked[k] {
			t.Errorf("envVars lists %s, which the function never reads", k)
		}
	}
}
