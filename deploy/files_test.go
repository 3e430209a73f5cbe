// The deploy files themselves: each parses, each alert is explained in
// the README, compose wires Prometheus and Grafana.

package deploy_test

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestEveryAlertIsExplainedInTheREADME(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range alertRules(t) {
		if r.Alert != "" && !strings.Contains(string(b), r.Alert) {
			t.Errorf("README.md does not say what alert %s means and what to do", r.Alert)
		}
	}
}

// TestEveryFileParses reads every YAML and JSON file under deploy/.
func TestEveryFileParses(t *testing.T) {
	t.Parallel()
	n := 0
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var v any
		switch filepath.Ext(path) {
		case ".yml", ".yaml":
			dec := yaml.NewDecoder(strings.NewReader(string(b)))
			for {
				if err := dec.Decode(&v); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Errorf("%s: %v", path, err)
					break
				}
			}
		case ".json":
			if err := json.Unmarshal(b, &v); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		default:
			return nil
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no YAML or JSON files found")
	}
}

type composeFile struct {
	Services map[string]struct {
		Command     []string          `yaml:"command"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
	} `yaml:"services"`
}

// mounted returns the compose service and container path that bind-mount
// the host path (relative to deploy/), or ok false.
func (c composeFile) mounted(host string) (service, target string, ok bool) {
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && filepath.Clean(parts[0]) == filepath.Clean(host) {
				return name, parts[1], true
			}
		}
	}
	return "", "", false
}

// TestComposeWiresPrometheusAndGrafana checks that compose mounts the
// Prometheus configuration and rules and the Grafana provisioning where
// they name each other.
func TestComposeWiresPrometheusAndGrafana(t *testing.T) {
	t.Parallel()
	var compose composeFile
	readYAML(t, "docker-compose.yml", &compose)
	_, prom := scrapeJobs(t)

	promSvc, promCfg, ok := compose.mounted("./prometheus/prometheus.yml")
	if !ok {
		t.Fatal("compose does not mount prometheus/prometheus.yml")
	}
	if !slices.Contains(compose.Services[promSvc].Command, "--config.file="+promCfg) {
		t.Errorf("prometheus reads %v, the configuration is mounted at %s", compose.Services[promSvc].Command, promCfg)
	}
	_, rulesDir, ok := compose.mounted("./prometheus/rules")
	if !ok {
		t.Fatal("compose does not mount prometheus/rules")
	}
	for _, f := range glob(t, "prometheus/rules/*.yml") {
		inContainer := filepath.Join(rulesDir, filepath.Base(f))
		matched := false
		for _, pattern := range prom.RuleFiles {
			if ok, _ := filepath.Match(pattern, inContainer); ok {
				matched = true
			}
		}
		if !matched {
			t.Errorf("%s is mounted at %s, which prometheus.yml's rule_files %v do not load", f, inContainer, prom.RuleFiles)
		}
	}

	var providers struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/oss2s3.yml", &providers)
	grafanaSvc, dashDir, ok := compose.mounted("./grafana/dashboards")
	if !ok {
		t.Fatal("compose does not mount grafana/dashboards")
	}
	if len(providers.Providers) != 1 || providers.Providers[0].Type != "file" || providers.Providers[0].Options.Path != dashDir {
		t.Errorf("the dashboard provider %+v does not read %s, where compose mounts the dashboards", providers.Providers, dashDir)
	}
	if _, prov, ok := compose.mounted("./grafana/provisioning"); !ok || prov != "/etc/grafana/provisioning" {
		t.Errorf("compose mounts the provisioning at %q, Grafana reads /etc/grafana/provisioning", prov)
	}
	if home := compose.Services[grafanaSvc].Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		if _, err := os.Stat(filepath.Join("grafana/dashboards", strings.TrimPrefix(home, dashDir+"/"))); err != nil || !strings.HasPrefix(home, dashDir+"/") {
			t.Errorf("Grafana's home dashboard %s is not one of grafana/dashboards", home)
		}
	}

	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("want one prometheus datasource, got %+v", ds.Datasources)
	}
	u := ds.Datasources[0].URL
	want := "http://" + promSvc + ":"
	port := strings.TrimPrefix(u, want)
	if !strings.HasPrefix(u, want) || !slices.ContainsFunc(compose.Services[promSvc].Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
		t.Errorf("the datasource %s is not the compose service %s on a port it listens on %v", u, promSvc, compose.Services[promSvc].Ports)
	}
}
