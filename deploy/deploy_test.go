package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/oss2s3/oss2s3/metrics"
)

// series is what the service exports, as Prometheus stores it.
type series struct {
	names  map[string]bool                       // series names, with a histogram's _bucket, _sum and _count
	labels map[string]map[string]map[string]bool // series name -> label -> values created at zero (nil: any value)
}

type noQueue struct{}

func (noQueue) QueueStats(context.Context) (metrics.QueueStats, error) {
	return metrics.QueueStats{}, nil
}

// exported gathers every series a fresh metrics.New exports, on the
// registry the gateway serves. Every labelled family gets one child, so
// that families without series created at zero are listed too.
func exported(t *testing.T) series {
	t.Helper()
	reg := metrics.NewRegistry()
	m := metrics.New(reg, []string{"t"})
	m.WatchQueue(noQueue{})
	atZero := gather(t, reg)
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		get := v.Field(i).MethodByName("GetMetricWithLabelValues")
		if !get.IsValid() {
			continue
		}
		var made bool
		for n := 0; n < 8 && !made; n++ {
			args := make([]reflect.Value, n)
			for j := range args {
				args[j] = reflect.ValueOf("x")
			}
			made = get.Call(args)[1].IsNil()
		}
		if !made {
			t.Fatalf("could not make a child of metrics.Metrics.%s", v.Type().Field(i).Name)
		}
	}
	s := series{names: map[string]bool{"up": true}, labels: map[string]map[string]map[string]bool{}}
	for _, mf := range gather(t, reg) {
		name := mf.GetName()
		var names []string
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			names = []string{name + "_bucket", name + "_sum", name + "_count"}
		case dto.MetricType_SUMMARY:
			names = []string{name, name + "_sum", name + "_count"}
		default:
			names = []string{name}
		}
		for _, n := range names {
			s.names[n] = true
			s.labels[n] = map[string]map[string]bool{}
			for _, l := range mf.GetMetric()[0].GetLabel() {
				s.labels[n][l.GetName()] = nil
			}
		}
		for _, sm := range atZero[name].GetMetric() {
			for _, l := range sm.GetLabel() {
				if s.labels[name][l.GetName()] == nil {
					s.labels[name][l.GetName()] = map[string]bool{}
				}
				s.labels[name][l.GetName()][l.GetValue()] = true
			}
		}
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			le := map[string]bool{"+Inf": true}
			for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
				f := strconv.FormatFloat(b.GetUpperBound(), 'f', -1, 64)
				le[f] = true
				if !strings.Contains(f, ".") {
					le[f+".0"] = true // Prometheus 3 normalises bounds to floats
				}
			}
			s.labels[name+"_bucket"]["le"] = le
		}
	}
	return s
}

func gather(t *testing.T, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// expr is one PromQL expression found in a deployment file.
type expr struct {
	where  string
	promQL string
}

var promQL = parser.NewParser(parser.Options{})

// check parses e and checks every series it selects is exported, with
// labels the series has and fixed-set values it takes, and that every job
// it names is a scrape job of prometheus.yml.
func (s series) check(e expr, jobs []string) error {
	ast, err := promQL.ParseExpr(e.promQL)
	if err != nil {
		return fmt.Errorf("%s: %w", e.where, err)
	}
	var errs []error
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if !s.names[name] {
			errs = append(errs, fmt.Errorf("%s: %q is not a series oss2s3 exports", e.where, name))
			return nil
		}
		for _, m := range vs.LabelMatchers {
			switch m.Name {
			case model.MetricNameLabel, "instance":
				continue
			case "job":
				if !slices.Contains(jobs, m.Value) {
					errs = append(errs, fmt.Errorf("%s: job %q is not a scrape job of prometheus.yml %v", e.where, m.Value, jobs))
				}
				continue
			}
			values, ok := s.labels[name][m.Name]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %s has no label %q", e.where, name, m.Name))
				continue
			}
			if values == nil || m.Name == "task" {
				continue // not a fixed set; task names come from the configuration
			}
			alts := []string{m.Value}
			if m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp {
				alts = strings.Split(m.Value, "|")
			}
			known := 0
			for _, a := range alts {
				if values[a] {
					known++
				}
			}
			// Every alternative must be a value, except for le, where
			// spellings of one bound are alternatives.
			if known == 0 || (m.Name != "le" && known < len(alts)) {
				errs = append(errs, fmt.Errorf("%s: %s{%s} matches values %s never takes (it takes %v)", e.where, name, m, m.Name, keys(values)))
			}
		}
		return nil
	})
	return errors.Join(errs...)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// scrapeJobs reads prometheus.yml's job names.
func scrapeJobs(t *testing.T) (jobs []string, cfg promConfig) {
	t.Helper()
	readYAML(t, "prometheus/prometheus.yml", &cfg)
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
	}
	if len(jobs) == 0 {
		t.Fatal("prometheus.yml scrapes nothing")
	}
	return jobs, cfg
}

type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	return files
}

// alertRules parses every rule file with Prometheus' own rule parser.
func alertRules(t *testing.T) []rulefmt.Rule {
	t.Helper()
	var rules []rulefmt.Rule
	for _, f := range glob(t, "prometheus/rules/*.yml") {
		groups, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, promQL, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if len(errs) > 0 {
			t.Fatalf("%s: %v", f, errors.Join(errs...))
		}
		for _, g := range groups.Groups {
			rules = append(rules, g.Rules...)
		}
	}
	return rules
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func dashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	out := map[string]dashboard{}
	for _, f := range glob(t, "grafana/dashboards/*.json") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

// grafanaVar finds $name, ${name} and ${name:format} in an expression.
var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// grafanaBuiltins are Grafana's interval variables, given a value that
// parses where they stand (a range).
var grafanaBuiltins = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}

var labelValues = regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`)

// dashboardExprs returns every query of d (panels and variables), with
// Grafana's variables replaced; a variable the dashboard does not define
// is an error.
func dashboardExprs(t *testing.T, file string, d dashboard) []expr {
	t.Helper()
	defined := map[string]bool{}
	var out []expr
	for _, v := range d.Templating.List {
		defined[v.Name] = true
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(series, label)", file, v.Name, v.Definition)
			continue
		}
		out = append(out, expr{fmt.Sprintf("%s: variable %s", file, v.Name), fmt.Sprintf(`count by (%s) (%s)`, m[2], m[1])})
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if len(p.Targets) > 0 && !strings.Contains(string(p.Datasource), "${datasource}") {
				t.Errorf("%s: panel %q does not use the dashboard's datasource variable", file, p.Title)
			}
			for i, tg := range p.Targets {
				where := fmt.Sprintf("%s: panel %q query %d", file, p.Title, i)
				q := grafanaVar.ReplaceAllStringFunc(tg.Expr, func(s string) string {
					m := grafanaVar.FindStringSubmatch(s)
					name := m[1] + m[2]
					if v, ok := grafanaBuiltins[name]; ok {
						return v
					}
					if !defined[name] {
						t.Errorf("%s: variable $%s is not defined by the dashboard", where, name)
					}
					return "x" // the dashboard's own variables stand in label values
				})
				out = append(out, expr{where, q})
			}
		}
	}
	walk(d.Panels)
	return out
}

func TestDashboardsQueryExportedSeries(t *testing.T) {
	t.Parallel()
	s := exported(t)
	jobs, _ := scrapeJobs(t)
	uids := map[string]string{}
	for file, d := range dashboards(t) {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: a provisioned dashboard needs a uid and a title", file)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share the uid %q", file, other, d.UID)
		}
		uids[d.UID] = file
		exprs := dashboardExprs(t, file, d)
		if len(exprs) == 0 {
			t.Errorf("%s: no queries", file)
		}
		for _, e := range exprs {
			if err := s.check(e, jobs); err != nil {
				t.Error(err)
			}
		}
	}
}

func TestAlertRulesQueryExportedSeries(t *testing.T) {
	t.Parallel()
	s := exported(t)
	jobs, _ := scrapeJobs(t)
	rules := alertRules(t)
	if len(rules) == 0 {
		t.Fatal("no alert rules")
	}
	for _, r := range rules {
		name := r.Alert + r.Record
		if err := s.check(expr{"rule " + name, r.Expr}, jobs); err != nil {
			t.Error(err)
		}
		if r.Alert != "" && (r.Annotations["summary"] == "" || r.Annotations["runbook"] == "" || r.Labels["severity"] == "") {
			t.Errorf("alert %s needs summary and runbook annotations (the notifications show both) and a severity label", name)
		}
	}
}

// TestTheCheckerCatchesMistakes makes sure the checks above can fail.
func TestTheCheckerCatchesMistakes(t *testing.T) {
	t.Parallel()
	s := exported(t)
	jobs := []string{"oss2s3"}
	for _, bad := range []string{
		`rate(oss2s3_objects_copied_total[5m])`,        // no such series
		`oss2s3_objects_total{result="faild"}`,         // no such value
		`oss2s3_objects_total{reason="x"}`,             // no such label
		`oss2s3_copy_duration_seconds_bucket{le="61"}`, // no such bound
		`up{job="oss"}`,                                 // no such scrape job
		`sum(rate(oss2s3_objects_total[5m])`,            // does not parse
		`oss2s3_objects_total{result=~"copied|copyed"}`, // one alternative wrong
	} {
		if err := s.check(expr{"test", bad}, jobs); err == nil {
			t.Errorf("%s passed the check", bad)
		}
	}
	for _, good := range []string{
		`sum by (le) (rate(oss2s3_end_to_end_lag_seconds_bucket{le=~"60|60.0"}[1h]))`,
		`go_goroutines{job="oss2s3"} + process_resident_memory_bytes`,
		`max(oss2s3_queue_jobs{task="x"})`,
	} {
		if err := s.check(expr{"test", good}, jobs); err != nil {
			t.Errorf("%s failed the check: %v", good, err)
		}
	}
}

// promtool is Prometheus' own checker (Debian's prometheus package, which
// .ci/run installs). Without it the test skips, except under CI.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (apt-get install prometheus); CI must run the alert unit tests")
		}
		t.Skip("promtool not installed (apt-get install prometheus): alert unit tests not run")
	}
	return p
}

func TestAlertRulesPassTheirUnitTests(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	tests := glob(t, "prometheus/tests/*.yml")
	run("check", "config", "prometheus.yml")
	run(append([]string{"check", "rules"}, rel(t, glob(t, "prometheus/rules/*.yml"))...)...)
	run(append([]string{"test", "rules"}, rel(t, tests)...)...)

	// Every alert has a unit test.
	tested := map[string]bool{}
	for _, f := range tests {
		var doc struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		readYAML(t, f, &doc)
		for _, tc := range doc.Tests {
			for _, a := range tc.AlertRuleTest {
				tested[a.Alertname] = true
			}
		}
	}
	for _, r := range alertRules(t) {
		if r.Alert != "" && !tested[r.Alert] {
			t.Errorf("alert %s has no unit test in prometheus/tests/", r.Alert)
		}
	}
}

func rel(t *testing.T, files []string) []string {
	t.Helper()
	out := make([]string, len(files))
	for i, f := range files {
		r, err := filepath.Rel("prometheus", f)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = r
	}
	return out
}
