package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/metrics"
)

// The tests below read the deployment files in deploy/ (compose, NATS,
// Kubernetes, the Dockerfile) and check that they agree with each other and
// with the code: the configurations load through loadConfig, and every
// port, path and environment variable one file names is what another
// provides.

const deployDir = "../deploy"

func readDeployYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Environment map[string]string `yaml:"environment"`
	Build       *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
}

// mount returns the host path bound at target, relative to deploy/.
func (s composeService) mount(target string) (string, bool) {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			return parts[0], true
		}
	}
	return "", false
}

// containerPorts are the container sides of the published ports.
func (s composeService) containerPorts() []string {
	var out []string
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		out = append(out, parts[len(parts)-1])
	}
	return out
}

// composeGetenv is the environment a compose service gives its process;
// values the compose file takes from the operator's shell (${VAR:?...})
// stand in as a secret-sized placeholder.
func composeGetenv(env map[string]string) func(string) string {
	return func(k string) string {
		v := env[k]
		if strings.HasPrefix(v, "${") {
			if strings.Contains(v, ":-") {
				return strings.TrimSuffix(strings.SplitN(v, ":-", 2)[1], "}")
			}
			return "placeholder-0123456789abcdef"
		}
		return v
	}
}

// dockerfile is what the tests read from deploy/Dockerfile.
type dockerfile struct {
	stages     []string // FROM images
	user       string
	expose     []string
	entrypoint []string
	cmd        []string
	text       string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{text: string(b)}
	for _, line := range strings.Split(d.text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		rest := strings.TrimSpace(strings.TrimPrefix(line, f[0]))
		switch strings.ToUpper(f[0]) {
		case "FROM":
			d.stages = append(d.stages, f[1])
		case "USER":
			d.user = f[1]
		case "EXPOSE":
			d.expose = append(d.expose, f[1:]...)
		case "ENTRYPOINT":
			d.entrypoint = jsonArray(t, rest)
		case "CMD":
			d.cmd = jsonArray(t, rest)
		}
	}
	return d
}

func jsonArray(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	if err := yaml.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("Dockerfile: %q is not an exec-form array: %v", s, err)
	}
	return out
}

// configFlag returns the value of --config in args.
func configFlag(args []string) string {
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
	}
	return ""
}

func listenPort(t *testing.T, cfg *Config) string {
	t.Helper()
	_, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatalf("listen %q: %v", cfg.Listen, err)
	}
	return port
}

// gatewayRoutes are the routes handlers.New registers (handlers/routes.go).
func gatewayRoutes(t *testing.T) []*echo.Route {
	t.Helper()
	reg := metrics.NewRegistry()
	h := handlers.New(slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(reg, nil), reg, nil, nil, nil, handlers.Config{})
	e, ok := h.(*echo.Echo)
	if !ok {
		t.Fatalf("handlers.New returned a %T, not the echo router the route list is read from", h)
	}
	return e.Routes()
}

// routeFor returns the route that answers method and path, or nil.
func routeFor(routes []*echo.Route, method, path string) *echo.Route {
	want := strings.Split(strings.Trim(path, "/"), "/")
	for _, r := range routes {
		if r.Method != method {
			continue
		}
		got := strings.Split(strings.Trim(r.Path, "/"), "/")
		if len(got) != len(want) {
			continue
		}
		match := true
		for i := range got {
			if got[i] != want[i] && !(strings.HasPrefix(got[i], ":") && want[i] != "") {
				match = false
			}
		}
		if match {
			return r
		}
	}
	return nil
}

func TestComposeDeployment(t *testing.T) {
	t.Parallel()
	var compose composeFile
	readDeployYAML(t, "docker-compose.yml", &compose)
	docker := readDockerfile(t)
	configPath := configFlag(docker.cmd)
	if configPath == "" {
		t.Fatalf("Dockerfile CMD %v passes no --config", docker.cmd)
	}

	// The oss2s3 replicas: services that mount a configuration where the
	// image reads it.
	var replicas []string
	for name, s := range compose.Services {
		if _, ok := s.mount(configPath); ok {
			replicas = append(replicas, name)
		}
	}
	slices.Sort(replicas)
	if len(replicas) < 2 {
		t.Fatalf("compose runs %d oss2s3 replicas (services mounting %s), want at least 2", len(replicas), configPath)
	}
	var natsNodes []string
	for name, s := range compose.Services {
		if _, ok := s.mount("/etc/nats/nats.conf"); ok {
			natsNodes = append(natsNodes, name)
		}
	}
	slices.Sort(natsNodes)

	var port string
	for _, name := range replicas {
		s := compose.Services[name]
		hostPath, _ := s.mount(configPath)
		cfg, err := loadConfig(filepath.Join(deployDir, hostPath), composeGetenv(s.Environment))
		if err != nil {
			t.Fatalf("%s: %s does not load with the environment compose gives it: %v", name, hostPath, err)
		}
		port = listenPort(t, cfg)
		if !slices.Contains(s.containerPorts(), port) {
			t.Errorf("%s publishes container ports %v, but the gateway listens on %s", name, s.containerPorts(), port)
		}
		if !slices.Contains(docker.expose, port) {
			t.Errorf("Dockerfile EXPOSEs %v, but the gateway listens on %s", docker.expose, port)
		}
		if cfg.NATS.URL == "" {
			t.Fatalf("%s: no nats.url: replicas of an embedded server share nothing", name)
		}
		if cfg.NATS.Replicas != len(natsNodes) {
			t.Errorf("%s: nats.replicas is %d, compose runs %d NATS nodes %v", name, cfg.NATS.Replicas, len(natsNodes), natsNodes)
		}
		for _, u := range strings.Split(cfg.NATS.URL, ",") {
			pu, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(natsNodes, pu.Hostname()) {
				t.Errorf("%s: nats.url names %s, not a NATS node of compose %v", name, pu.Hostname(), natsNodes)
				continue
			}
			checkNATSNode(t, compose, pu.Hostname(), pu.Port(), natsNodes)
		}
		if s.Build == nil && s.Image != compose.Services[replicas[0]].Image {
			t.Errorf("%s runs image %q, not the one built from the Dockerfile", name, s.Image)
		}
	}

	// Prometheus scrapes every replica on the gateway port and path.
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readDeployYAML(t, "prometheus/prometheus.yml", &prom)
	routes := gatewayRoutes(t)
	var scraped []string
	for _, sc := range prom.ScrapeConfigs {
		path := cmpOr(sc.MetricsPath, "/metrics")
		if routeFor(routes, "GET", path) == nil {
			t.Errorf("prometheus job %s scrapes %s, which the gateway does not serve", sc.JobName, path)
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, p, err := net.SplitHostPort(target)
				if err != nil {
					t.Fatal(err)
				}
				if p != port {
					t.Errorf("prometheus scrapes %s, but the gateway listens on %s", target, port)
				}
				scraped = append(scraped, host)
			}
		}
	}
	slices.Sort(scraped)
	if !slices.Equal(scraped, replicas) {
		t.Errorf("prometheus scrapes %v, compose runs replicas %v", scraped, replicas)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkNATSNode loads the NATS configuration of compose service node with
// nats-server's own parser and checks it is a JetStream cluster member
// listening on clientPort whose routes name every node.
func checkNATSNode(t *testing.T, compose composeFile, node, clientPort string, nodes []string) {
	t.Helper()
	hostPath, _ := compose.Services[node].mount("/etc/nats/nats.conf")
	opts, err := natsserver.ProcessConfigFile(filepath.Join(deployDir, hostPath))
	if err != nil {
		t.Fatalf("%s: %v", hostPath, err)
	}
	if strconv.Itoa(opts.Port) != clientPort {
		t.Errorf("%s: client port %d, oss2s3 connects to %s", hostPath, opts.Port, clientPort)
	}
	if !opts.JetStream || opts.ServerName != node || opts.Cluster.Name == "" {
		t.Errorf("%s: jetstream=%v server_name=%q cluster=%q; want JetStream on, named after its service %q, in a cluster",
			hostPath, opts.JetStream, opts.ServerName, opts.Cluster.Name, node)
	}
	var routed []string
	for _, r := range opts.Routes {
		if r.Port() != strconv.Itoa(opts.Cluster.Port) {
			t.Errorf("%s: route %s is not on the cluster port %d", hostPath, r, opts.Cluster.Port)
		}
		routed = append(routed, r.Hostname())
	}
	slices.Sort(routed)
	if !slices.Equal(routed, nodes) {
		t.Errorf("%s: routes to %v, compose runs NATS nodes %v", hostPath, routed, nodes)
	}
}

// k8sObject is the part of a Kubernetes manifest the tests read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas     int              `yaml:"replicas"`
		MinAvailable int              `yaml:"minAvailable"`
		Selector     k8sSelector      `yaml:"selector"` // Deployment, PodDisruptionBudget
		Ports        []k8sServicePort `yaml:"ports"`    // Service
		Template     podTemplate      `yaml:"template"` // Deployment
		JobTemplate  struct {
			Spec struct{ Template podTemplate }
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

type k8sSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// UnmarshalYAML takes a Service's selector (a plain map) as well as a
// Deployment's (matchLabels).
func (s *k8sSelector) UnmarshalYAML(n *yaml.Node) error {
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return err
	}
	if _, ok := m["matchLabels"]; ok {
		type plain k8sSelector
		return n.Decode((*plain)(s))
	}
	return n.Decode(&s.MatchLabels)
}

type k8sServicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"`
}

type podTemplate struct {
	Metadata struct {
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
		Containers                    []container
		Volumes                       []struct {
			Name      string `yaml:"name"`
			ConfigMap struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
		} `yaml:"volumes"`
	} `yaml:"spec"`
}

type container struct {
	Name    string   `yaml:"name"`
	Args    []string `yaml:"args"`
	Command []string `yaml:"command"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// port resolves a port given by name or number to the container's number.
func (c container) port(p string) (int, bool) {
	for _, cp := range c.Ports {
		if cp.Name == p || strconv.Itoa(cp.ContainerPort) == p {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// k8sObjects reads every manifest kustomization.yaml lists, by kind.
func k8sObjects(t *testing.T) map[string][]k8sObject {
	t.Helper()
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	readDeployYAML(t, "k8s/kustomization.yaml", &kust)
	listed := map[string]bool{}
	out := map[string][]k8sObject{}
	for _, r := range kust.Resources {
		listed[r] = true
		var o k8sObject
		readDeployYAML(t, filepath.Join("k8s", r), &o)
		out[o.Kind] = append(out[o.Kind], o)
	}
	files, _ := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
	for _, f := range files {
		base := filepath.Base(f)
		if !listed[base] && base != "kustomization.yaml" && !strings.Contains(base, ".example.") {
			t.Errorf("k8s/%s is not in kustomization.yaml's resources", base)
		}
	}
	return out
}

func one(t *testing.T, objs map[string][]k8sObject, kind string) k8sObject {
	t.Helper()
	if len(objs[kind]) != 1 {
		t.Fatalf("want one %s in deploy/k8s, found %d", kind, len(objs[kind]))
	}
	return objs[kind][0]
}

func TestKubernetesDeployment(t *testing.T) {
	t.Parallel()
	objs := k8sObjects(t)
	dep, svc, pdb, cm := one(t, objs, "Deployment"), one(t, objs, "Service"), one(t, objs, "PodDisruptionBudget"), one(t, objs, "ConfigMap")
	cron := one(t, objs, "CronJob")
	var secret k8sObject
	readDeployYAML(t, "k8s/secret.example.yaml", &secret)
	routes := gatewayRoutes(t)
	docker := readDockerfile(t)

	pod := dep.Spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("the pod has %d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]

	// The configuration: where the container reads it, and that it loads
	// with the environment the pod gives it.
	configPath := cmpOr(configFlag(c.Args), configFlag(docker.cmd))
	var cfgText string
	for _, vm := range c.VolumeMounts {
		key, ok := strings.CutPrefix(configPath, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap.Name == cm.Metadata.Name {
				cfgText = cm.Data[key]
			}
		}
	}
	if cfgText == "" {
		t.Fatalf("the container reads %s, which no mounted key of ConfigMap %s provides", configPath, cm.Metadata.Name)
	}
	secretKeys := map[string]bool{}
	for k := range secret.StringData {
		secretKeys[k] = true
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != secret.Metadata.Name || !secretKeys[ref.Key] {
				t.Errorf("env %s reads key %q of Secret %q, which secret.example.yaml (Secret %q) does not have", e.Name, ref.Key, ref.Name, secret.Metadata.Name)
			}
			env[e.Name] = "placeholder-0123456789abcdef"
		default:
			env[e.Name] = e.Value
		}
	}
	f := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(f, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(f, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("ConfigMap %s does not load with the pod's environment: %v", cm.Metadata.Name, err)
	}
	if cfg.NATS.URL == "" || cfg.NATS.Replicas < 3 {
		t.Errorf("nats.url %q, replicas %d: replicas need an external cluster and R3 streams", cfg.NATS.URL, cfg.NATS.Replicas)
	}
	for _, u := range referencedEnv(cfgText) {
		if _, ok := env[u]; !ok && !strings.Contains(cfgText, "${"+u+":-") {
			t.Errorf("the configuration needs ${%s}, which the pod does not set", u)
		}
	}

	// Ports: listen == containerPort == probes == Service target == the
	// scrape annotation == EXPOSE.
	port, _ := strconv.Atoi(listenPort(t, cfg))
	if _, ok := c.port(strconv.Itoa(port)); !ok {
		t.Errorf("the container declares ports %+v, the gateway listens on %d", c.Ports, port)
	}
	if !slices.Contains(docker.expose, strconv.Itoa(port)) {
		t.Errorf("Dockerfile EXPOSEs %v, the gateway listens on %d", docker.expose, port)
	}
	for name, p := range map[string]*probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("the container has no HTTP %s", name)
			continue
		}
		if n, ok := c.port(p.HTTPGet.Port); !ok || n != port {
			t.Errorf("%s on port %q, the gateway listens on %d", name, p.HTTPGet.Port, port)
		}
		if routeFor(routes, "GET", p.HTTPGet.Path) == nil {
			t.Errorf("%s GETs %s, which the gateway does not serve", name, p.HTTPGet.Path)
		}
	}
	if c.LivenessProbe != nil && c.ReadinessProbe != nil && c.LivenessProbe.HTTPGet.Path == c.ReadinessProbe.HTTPGet.Path {
		t.Errorf("liveness and readiness probe the same path: a NATS outage would restart every replica")
	}
	svcPort := 0
	for _, sp := range svc.Spec.Ports {
		if n, ok := c.port(sp.TargetPort); !ok || n != port {
			t.Errorf("Service port %s targets %q, the gateway listens on %d", sp.Name, sp.TargetPort, port)
		}
		svcPort = sp.Port
	}
	ann := pod.Metadata.Annotations
	if ann["prometheus.io/port"] != strconv.Itoa(port) || routeFor(routes, "GET", ann["prometheus.io/path"]) == nil {
		t.Errorf("scrape annotations port %q path %q; the gateway serves metrics on %d", ann["prometheus.io/port"], ann["prometheus.io/path"], port)
	}

	// Selectors, replicas and the disruption budget.
	for what, sel := range map[string]map[string]string{"Deployment": dep.Spec.Selector.MatchLabels, "Service": svc.Spec.Selector.MatchLabels, "PodDisruptionBudget": pdb.Spec.Selector.MatchLabels} {
		if len(sel) == 0 {
			t.Errorf("%s has no selector", what)
		}
		for k, v := range sel {
			if pod.Metadata.Labels[k] != v {
				t.Errorf("%s selects %s=%s, the pods are labelled %v", what, k, v, pod.Metadata.Labels)
			}
		}
	}
	if dep.Spec.Replicas < 2 || pdb.Spec.MinAvailable < 1 || pdb.Spec.MinAvailable >= dep.Spec.Replicas {
		t.Errorf("replicas %d, PodDisruptionBudget minAvailable %d: want at least 2 replicas and 1 <= minAvailable < replicas", dep.Spec.Replicas, pdb.Spec.MinAvailable)
	}
	if grace := pod.Spec.TerminationGracePeriodSeconds; float64(grace) <= cfg.Workers.ShutdownGrace.Seconds() {
		t.Errorf("terminationGracePeriodSeconds %d is not above workers.shutdown_grace %s: copies would be killed mid-part", grace, cfg.Workers.ShutdownGrace)
	}
	if need := int64(cfg.Workers.MemoryBudget) + memoryHeadroom; memBytes(t, c.Resources.Limits["memory"]) < need {
		t.Errorf("memory limit %s is below workers.memory_budget + headroom (%d bytes)", c.Resources.Limits["memory"], need)
	}

	// The reconcile CronJob calls the admin API through the Service.
	if len(cron.Spec.JobTemplate.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("the reconcile CronJob needs one container")
	}
	trigger := cron.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	script := strings.Join(append(trigger.Command, trigger.Args...), " ")
	m := regexp.MustCompile(`http://[^\s'")]+`).FindString(script)
	u, err := url.Parse(m)
	if m == "" || err != nil {
		t.Fatalf("the reconcile CronJob calls no http:// URL: %s", script)
	}
	if u.Hostname() != svc.Metadata.Name || u.Port() != strconv.Itoa(svcPort) {
		t.Errorf("the CronJob calls %s, the Service is %s:%d", u.Host, svc.Metadata.Name, svcPort)
	}
	tokenFromSecret := false
	for _, e := range trigger.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && secretKeys[e.ValueFrom.SecretKeyRef.Key] &&
			strings.Contains(script, "Bearer $"+e.Name) && slices.Contains(cfgTokenRefs(cfgText), envFromSecretKey(c, e.ValueFrom.SecretKeyRef.Key)) {
			tokenFromSecret = true
		}
	}
	if !tokenFromSecret || !strings.Contains(script, "-X POST") {
		t.Errorf("the CronJob must POST with a bearer token read from the Secret key the gateway's admin.tokens come from: %s", script)
	}
	t.Run("ReconcileRouteExists", func(t *testing.T) {
		if routeFor(routes, "POST", u.Path) == nil {
			t.Fatalf("the CronJob POSTs %s, and the gateway has no POST route that matches it", u.Path)
		}
	})
}

// referencedEnv lists the ${VAR} names a configuration text uses.
func referencedEnv(text string) []string {
	var out []string
	for _, m := range envRef.FindAllStringSubmatch(text, -1) {
		if m[1] != "" && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// cfgTokenRefs lists the environment variables admin.tokens is built from.
func cfgTokenRefs(text string) []string {
	var doc struct {
		Admin struct {
			Tokens []string `yaml:"tokens"`
		} `yaml:"admin"`
	}
	_ = yaml.Unmarshal([]byte(text), &doc)
	var out []string
	for _, tok := range doc.Admin.Tokens {
		out = append(out, referencedEnv(tok)...)
	}
	return out
}

// envFromSecretKey names the gateway container's variable read from key.
func envFromSecretKey(c container, key string) string {
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Key == key {
			return e.Name
		}
	}
	return ""
}

func memBytes(t *testing.T, q string) int64 {
	t.Helper()
	units := map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
	for suffix, mult := range units {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("memory quantity %q: %v", q, err)
			}
			return v * mult
		}
	}
	v, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		t.Fatalf("memory quantity %q: want a number with Ki, Mi or Gi", q)
	}
	return v
}

func TestDockerfileBuildsAStaticNonRootImage(t *testing.T) {
	t.Parallel()
	d := readDockerfile(t)
	if len(d.stages) < 2 {
		t.Fatalf("want a multi-stage build, found stages %v", d.stages)
	}
	final := d.stages[len(d.stages)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage %s: want distroless static or scratch", final)
	}
	if d.user == "" || d.user == "root" || strings.HasPrefix(d.user, "0") {
		t.Errorf("USER %q: want a non-root user", d.user)
	}
	if !strings.Contains(d.text, "CGO_ENABLED=0") || !regexp.MustCompile(`go build .*\./server\b`).MatchString(d.text) {
		t.Error("the binary must be built from ./server with CGO_ENABLED=0 (static, for distroless/scratch)")
	}
	if len(d.entrypoint) == 0 || !strings.Contains(d.text, "COPY --from=build /out/oss2s3 "+d.entrypoint[0]) {
		t.Errorf("ENTRYPOINT %v is not the binary the build stage produced", d.entrypoint)
	}
	if len(d.cmd) == 0 || d.cmd[0] != "serve" {
		t.Errorf("CMD %v: want the serve subcommand", d.cmd)
	}
	if _, err := fmt.Sscan(strings.Join(d.expose, " "), new(int)); err != nil {
		t.Errorf("EXPOSE %v: want the gateway port", d.expose)
	}
}
