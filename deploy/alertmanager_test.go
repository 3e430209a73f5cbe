package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// amConfig is the part of alertmanager.yml the checks read.
type amConfig struct {
	Global struct {
		PasswordFile string `yaml:"smtp_auth_password_file"`
	} `yaml:"global"`
	Templates []string `yaml:"templates"`
	Route     struct {
		Receiver string   `yaml:"receiver"`
		GroupBy  []string `yaml:"group_by"`
	} `yaml:"route"`
	Inhibit []struct {
		Source []string `yaml:"source_matchers"`
		Target []string `yaml:"target_matchers"`
	} `yaml:"inhibit_rules"`
	Receivers []struct {
		Name   string `yaml:"name"`
		Email  []any  `yaml:"email_configs"`
		Hooks  []any  `yaml:"webhook_configs"`
		Slacks []any  `yaml:"slack_configs"`
	} `yaml:"receivers"`
}

// TestAlertmanagerConfiguration: amtool (Debian's prometheus-alertmanager,
// installed by .ci/run) accepts the configuration and its template; every
// alert goes to e-mail and to a webhook, grouped by task; every alert name
// the inhibitions use is one of the rules'.
func TestAlertmanagerConfiguration(t *testing.T) {
	t.Parallel()
	var cfg amConfig
	readYAML(t, "alertmanager/alertmanager.yml", &cfg)
	for _, pattern := range cfg.Templates {
		glob(t, filepath.Join("alertmanager", pattern))
	}
	var root *struct {
		Name   string `yaml:"name"`
		Email  []any  `yaml:"email_configs"`
		Hooks  []any  `yaml:"webhook_configs"`
		Slacks []any  `yaml:"slack_configs"`
	}
	for i := range cfg.Receivers {
		if cfg.Receivers[i].Name == cfg.Route.Receiver {
			root = &cfg.Receivers[i]
		}
	}
	if root == nil || len(root.Email) == 0 || len(root.Hooks)+len(root.Slacks) == 0 {
		t.Errorf("the route's receiver %q must send e-mail and to a webhook: %+v", cfg.Route.Receiver, root)
	}
	if !slices.Contains(cfg.Route.GroupBy, "task") {
		t.Errorf("group_by %v: a task's alerts should be one notification", cfg.Route.GroupBy)
	}
	alerts := map[string]bool{}
	for _, r := range alertRules(t) {
		alerts[r.Alert] = true
	}
	for _, in := range cfg.Inhibit {
		for _, m := range append(slices.Clone(in.Source), in.Target...) {
			name, ok := strings.CutPrefix(m, "alertname=~")
			if !ok {
				name, ok = strings.CutPrefix(m, "alertname=")
			}
			if !ok {
				continue
			}
			for _, n := range strings.Split(strings.Trim(name, `"`), "|") {
				if !alerts[n] {
					t.Errorf("inhibit rule names %q, which no alert rule is", n)
				}
			}
		}
	}

	amtool, err := exec.LookPath("amtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("amtool is not installed (apt-get install prometheus-alertmanager); CI must check the configuration")
		}
		t.Skip("amtool not installed (apt-get install prometheus-alertmanager)")
	}
	if out, err := exec.Command(amtool, "check-config", "alertmanager/alertmanager.yml").CombinedOutput(); err != nil {
		t.Errorf("amtool check-config: %v\n%s", err, out)
	}
}

// TestAlertmanagerOnKubernetes: the ConfigMap kustomize generates holds the
// configuration and the template where the configuration looks for them,
// the Secret is mounted where the SMTP password is read, and deploy/k8s
// includes it all.
func TestAlertmanagerOnKubernetes(t *testing.T) {
	t.Parallel()
	var cfg amConfig
	readYAML(t, "alertmanager/alertmanager.yml", &cfg)
	var kust struct {
		Resources  []string `yaml:"resources"`
		Generators []struct {
			Name  string   `yaml:"name"`
			Files []string `yaml:"files"`
		} `yaml:"configMapGenerator"`
	}
	readYAML(t, "alertmanager/kustomization.yaml", &kust)
	var k8s struct {
		Resources []string `yaml:"resources"`
	}
	readYAML(t, "k8s/kustomization.yaml", &k8s)
	if !slices.Contains(k8s.Resources, "../alertmanager") {
		t.Errorf("deploy/k8s does not include ../alertmanager: %v", k8s.Resources)
	}
	if len(kust.Generators) != 1 {
		t.Fatalf("want one configMapGenerator, got %+v", kust.Generators)
	}
	keys := map[string]string{} // ConfigMap key -> file in deploy/alertmanager
	for _, f := range kust.Generators[0].Files {
		key, file, ok := strings.Cut(f, "=")
		if !ok {
			key, file = filepath.Base(f), f
		}
		if _, err := os.Stat(filepath.Join("alertmanager", file)); err != nil {
			t.Errorf("configMapGenerator file %s: %v", file, err)
		}
		keys[key] = file
	}

	var dep struct {
		Kind string
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args         []string
						VolumeMounts []struct {
							Name      string
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					}
					Volumes []struct {
						Name      string
						ConfigMap *struct {
							Name  string
							Items []struct{ Key, Path string }
						} `yaml:"configMap"`
						Secret *struct {
							SecretName string `yaml:"secretName"`
						}
					}
				}
			}
		}
	}
	found := false
	for _, doc := range yamlDocs(t, "alertmanager/k8s.yaml") {
		if err := doc.Decode(&dep); err != nil {
			t.Fatal(err)
		}
		if dep.Kind == "Deployment" {
			found = true
			break
		}
	}
	if !found || len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("alertmanager/k8s.yaml has no Deployment with one container")
	}
	c := dep.Spec.Template.Spec.Containers[0]
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	// Where each file is inside the container.
	files := map[string]string{} // file in deploy/alertmanager -> path in the container
	secretDir := ""
	for _, v := range dep.Spec.Template.Spec.Volumes {
		switch {
		case v.ConfigMap != nil && v.ConfigMap.Name == kust.Generators[0].Name:
			for _, it := range v.ConfigMap.Items {
				files[keys[it.Key]] = path.Join(mounts[v.Name], it.Path)
			}
		case v.Secret != nil:
			secretDir = mounts[v.Name]
		}
	}
	var cfgPath string
	for _, a := range c.Args {
		if p, ok := strings.CutPrefix(a, "--config.file="); ok {
			cfgPath = p
		}
	}
	if cfgPath == "" || files["alertmanager.yml"] != cfgPath {
		t.Fatalf("--config.file=%s, the ConfigMap puts alertmanager.yml at %s", cfgPath, files["alertmanager.yml"])
	}
	for _, pattern := range cfg.Templates {
		abs := path.Join(path.Dir(cfgPath), pattern)
		matched := false
		for _, inContainer := range files {
			if ok, _ := path.Match(abs, inContainer); ok {
				matched = true
			}
		}
		if !matched {
			t.Errorf("templates %s (%s in the container) match no file of the ConfigMap %v", pattern, abs, files)
		}
	}
	if secretDir == "" || path.Dir(cfg.Global.PasswordFile) != secretDir {
		t.Errorf("the SMTP password is read from %s, the Secret is mounted at %q", cfg.Global.PasswordFile, secretDir)
	}
}

// TestComposeWiresAlertmanager: compose mounts deploy/alertmanager where
// Alertmanager reads it, gives it the SMTP password where the
// configuration reads it, and Prometheus sends alerts to it.
func TestComposeWiresAlertmanager(t *testing.T) {
	t.Parallel()
	var cfg amConfig
	readYAML(t, "alertmanager/alertmanager.yml", &cfg)
	var compose struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
			Ports   []string `yaml:"ports"`
			Secrets []struct {
				Source string `yaml:"source"`
				Target string `yaml:"target"`
			} `yaml:"secrets"`
		} `yaml:"services"`
		Secrets map[string]map[string]string `yaml:"secrets"`
	}
	readYAML(t, "docker-compose.yml", &compose)
	var plain composeFile
	readYAML(t, "docker-compose.yml", &plain)
	svc, dir, ok := plain.mounted("./alertmanager")
	if !ok {
		t.Fatal("compose does not mount ./alertmanager")
	}
	s := compose.Services[svc]
	if !slices.Contains(s.Command, "--config.file="+path.Join(dir, "alertmanager.yml")) {
		t.Errorf("alertmanager's command %v does not read %s/alertmanager.yml", s.Command, dir)
	}
	passwordGiven := false
	for _, sec := range s.Secrets {
		if sec.Target == cfg.Global.PasswordFile && compose.Secrets[sec.Source]["environment"] != "" {
			passwordGiven = true
		}
	}
	if !passwordGiven {
		t.Errorf("no compose secret is mounted at %s, where the SMTP password is read", cfg.Global.PasswordFile)
	}
	var prom struct {
		Alerting struct {
			Alertmanagers []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
	}
	readYAML(t, "prometheus/prometheus.yml", &prom)
	sent := false
	for _, am := range prom.Alerting.Alertmanagers {
		for _, sc := range am.StaticConfigs {
			for _, target := range sc.Targets {
				host, port, _ := strings.Cut(target, ":")
				if host == svc && slices.ContainsFunc(s.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
					sent = true
				}
			}
		}
	}
	if !sent {
		t.Errorf("prometheus.yml does not send alerts to the compose service %s on a port it listens on %v", svc, s.Ports)
	}
}

// yamlDocs splits a multi-document YAML file.
func yamlDocs(t *testing.T, name string) []*yaml.Node {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			return docs
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs = append(docs, &n)
	}
}
