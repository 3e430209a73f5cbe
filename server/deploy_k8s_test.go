package main

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"
)

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
		if strings.HasPrefix(r, "../") {
			continue // another kustomization (deploy/alertmanager), checked by its own test
		}
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
	k := readK8s(t)
	k.configLoads(t)
	svcPort := k.portsAgree(t)
	k.selectorsAndReplicas(t)
	k.cronJobCallsTheService(t, svcPort)
}

// k8sDeployment is deploy/k8s as the checks below read it: the objects,
// the gateway's pod and container, and its configuration loaded with the
// environment the pod gives it.
type k8sDeployment struct {
	dep, svc, pdb, cm, cron, secret k8sObject
	routes                          []*echo.Route
	docker                          dockerfile
	pod                             podTemplate
	c                               container
	cfgText                         string
	cfgFile                         string
	cfg                             *Config
	secretKeys                      map[string]bool
	env                             map[string]string
	asPrinted                       map[string]string // the pod's environment with secret.example.yaml applied as is
}

func readK8s(t *testing.T) *k8sDeployment {
	t.Helper()
	objs := k8sObjects(t)
	k := &k8sDeployment{
		dep: one(t, objs, "Deployment"), svc: one(t, objs, "Service"), pdb: one(t, objs, "PodDisruptionBudget"),
		cm: one(t, objs, "ConfigMap"), cron: one(t, objs, "CronJob"),
	}
	readDeployYAML(t, "k8s/secret.example.yaml", &k.secret)
	k.routes = gatewayRoutes(t)
	k.docker = readDockerfile(t)

	k.pod = k.dep.Spec.Template
	if len(k.pod.Spec.Containers) != 1 {
		t.Fatalf("the pod has %d containers, want 1", len(k.pod.Spec.Containers))
	}
	k.c = k.pod.Spec.Containers[0]
	k.cfgText = k.mountedConfig(t)
	k.podEnv(t)
	k.cfgFile = filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(k.cfgFile, []byte(k.cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// mountedConfig returns the configuration where the container reads it.
func (k *k8sDeployment) mountedConfig(t *testing.T) string {
	t.Helper()
	configPath := cmpOr(configFlag(k.c.Args), configFlag(k.docker.cmd))
	var cfgText string
	for _, vm := range k.c.VolumeMounts {
		key, ok := strings.CutPrefix(configPath, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range k.pod.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap.Name == k.cm.Metadata.Name {
				cfgText = k.cm.Data[key]
			}
		}
	}
	if cfgText == "" {
		t.Fatalf("the container reads %s, which no mounted key of ConfigMap %s provides", configPath, k.cm.Metadata.Name)
	}
	return cfgText
}

// podEnv sets env, the container's environment (a placeholder for each
// Secret key), and asPrinted, the same with secret.example.yaml's values;
// every Secret key the container reads must be in the example.
func (k *k8sDeployment) podEnv(t *testing.T) {
	t.Helper()
	k.secretKeys = map[string]bool{}
	for key := range k.secret.StringData {
		k.secretKeys[key] = true
	}
	k.env, k.asPrinted = map[string]string{}, map[string]string{}
	for _, e := range k.c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != k.secret.Metadata.Name || !k.secretKeys[ref.Key] {
				t.Errorf("env %s reads key %q of Secret %q, which secret.example.yaml (Secret %q) does not have", e.Name, ref.Key, ref.Name, k.secret.Metadata.Name)
			}
			k.env[e.Name] = "placeholder-0123456789abcdef"
			k.asPrinted[e.Name] = k.secret.StringData[ref.Key]
		default:
			k.env[e.Name] = e.Value
			k.asPrinted[e.Name] = e.Value
		}
	}
}

// configLoads: the configuration loads with the environment the pod gives
// it, and not with the Secret example's values.
func (k *k8sDeployment) configLoads(t *testing.T) {
	t.Helper()
	var err error
	k.cfg, err = loadConfig(k.cfgFile, func(v string) string { return k.env[v] })
	if err != nil {
		t.Fatalf("ConfigMap %s does not load with the pod's environment: %v", k.cm.Metadata.Name, err)
	}
	// The Secret example applied as is must not make a working deployment:
	// anyone can read its values.
	_, err = loadConfig(k.cfgFile, func(v string) string { return k.asPrinted[v] })
	for _, want := range []string{"webhook.secrets[0]: is the example value", "admin.tokens[0]: is the example value", "tasks[0].source.access_key_secret: is the example value"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("with secret.example.yaml's values the configuration loads, or not for this reason: want %q in %v", want, err)
		}
	}
	if k.cfg.NATS.URL == "" || k.cfg.NATS.Replicas < 3 {
		t.Errorf("nats.url %q, replicas %d: replicas need an external cluster and R3 streams", k.cfg.NATS.URL, k.cfg.NATS.Replicas)
	}
	for _, u := range referencedEnv(k.cfgText) {
		if _, ok := k.env[u]; !ok && !strings.Contains(k.cfgText, "${"+u+":-") {
			t.Errorf("the configuration needs ${%s}, which the pod does not set", u)
		}
	}
}

// portsAgree: listen == containerPort == probes == Service target == the
// scrape annotation == EXPOSE. It returns the Service's port.
func (k *k8sDeployment) portsAgree(t *testing.T) (svcPort int) {
	t.Helper()
	c := k.c
	port, _ := strconv.Atoi(listenPort(t, k.cfg))
	if _, ok := c.port(strconv.Itoa(port)); !ok {
		t.Errorf("the container declares ports %+v, the gateway listens on %d", c.Ports, port)
	}
	if !slices.Contains(k.docker.expose, strconv.Itoa(port)) {
		t.Errorf("Dockerfile EXPOSEs %v, the gateway listens on %d", k.docker.expose, port)
	}
	k.probesAgree(t, port)
	for _, sp := range k.svc.Spec.Ports {
		if n, ok := c.port(sp.TargetPort); !ok || n != port {
			t.Errorf("Service port %s targets %q, the gateway listens on %d", sp.Name, sp.TargetPort, port)
		}
		svcPort = sp.Port
	}
	ann := k.pod.Metadata.Annotations
	if ann["prometheus.io/port"] != strconv.Itoa(port) || routeFor(k.routes, "GET", ann["prometheus.io/path"]) == nil {
		t.Errorf("scrape annotations port %q path %q; the gateway serves metrics on %d", ann["prometheus.io/port"], ann["prometheus.io/path"], port)
	}
	return svcPort
}

// probesAgree: both probes GET a path the gateway serves on its port, not
// the same one.
func (k *k8sDeployment) probesAgree(t *testing.T, port int) {
	t.Helper()
	c := k.c
	for name, p := range map[string]*probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("the container has no HTTP %s", name)
			continue
		}
		if n, ok := c.port(p.HTTPGet.Port); !ok || n != port {
			t.Errorf("%s on port %q, the gateway listens on %d", name, p.HTTPGet.Port, port)
		}
		if routeFor(k.routes, "GET", p.HTTPGet.Path) == nil {
			t.Errorf("%s GETs %s, which the gateway does not serve", name, p.HTTPGet.Path)
		}
	}
	if c.LivenessProbe != nil && c.ReadinessProbe != nil && c.LivenessProbe.HTTPGet.Path == c.ReadinessProbe.HTTPGet.Path {
		t.Errorf("liveness and readiness probe the same path: a NATS outage would restart every replica")
	}
}

// selectorsAndReplicas: the selectors match the pods; replicas, the
// disruption budget, the grace period and the memory limit fit the
// configuration.
func (k *k8sDeployment) selectorsAndReplicas(t *testing.T) {
	t.Helper()
	dep, pdb, pod := k.dep, k.pdb, k.pod
	for what, sel := range map[string]map[string]string{"Deployment": dep.Spec.Selector.MatchLabels, "Service": k.svc.Spec.Selector.MatchLabels, "PodDisruptionBudget": pdb.Spec.Selector.MatchLabels} {
		if len(sel) == 0 {
			t.Errorf("%s has no selector", what)
		}
		for key, v := range sel {
			if pod.Metadata.Labels[key] != v {
				t.Errorf("%s selects %s=%s, the pods are labelled %v", what, key, v, pod.Metadata.Labels)
			}
		}
	}
	if dep.Spec.Replicas < 2 || pdb.Spec.MinAvailable < 1 || pdb.Spec.MinAvailable >= dep.Spec.Replicas {
		t.Errorf("replicas %d, PodDisruptionBudget minAvailable %d: want at least 2 replicas and 1 <= minAvailable < replicas", dep.Spec.Replicas, pdb.Spec.MinAvailable)
	}
	if grace := pod.Spec.TerminationGracePeriodSeconds; float64(grace) <= k.cfg.Workers.ShutdownGrace.Seconds() {
		t.Errorf("terminationGracePeriodSeconds %d is not above workers.shutdown_grace %s: copies would be killed mid-part", grace, k.cfg.Workers.ShutdownGrace)
	}
	if need := int64(k.cfg.Workers.MemoryBudget) + memoryHeadroom; memBytes(t, k.c.Resources.Limits["memory"]) < need {
		t.Errorf("memory limit %s is below workers.memory_budget + headroom (%d bytes)", k.c.Resources.Limits["memory"], need)
	}
}

// cronJobCallsTheService: the reconcile CronJob POSTs to the admin API
// through the Service, with the token the gateway's admin.tokens come from.
func (k *k8sDeployment) cronJobCallsTheService(t *testing.T, svcPort int) {
	t.Helper()
	if len(k.cron.Spec.JobTemplate.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("the reconcile CronJob needs one container")
	}
	trigger := k.cron.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	script := strings.Join(append(trigger.Command, trigger.Args...), " ")
	m := regexp.MustCompile(`http://[^\s'")]+`).FindString(script)
	u, err := url.Parse(m)
	if m == "" || err != nil {
		t.Fatalf("the reconcile CronJob calls no http:// URL: %s", script)
	}
	if u.Hostname() != k.svc.Metadata.Name || u.Port() != strconv.Itoa(svcPort) {
		t.Errorf("the CronJob calls %s, the Service is %s:%d", u.Host, k.svc.Metadata.Name, svcPort)
	}
	tokenFromSecret := false
	for _, e := range trigger.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && k.secretKeys[e.ValueFrom.SecretKeyRef.Key] &&
			strings.Contains(script, "Bearer $"+e.Name) && slices.Contains(cfgTokenRefs(k.cfgText), envFromSecretKey(k.c, e.ValueFrom.SecretKeyRef.Key)) {
			tokenFromSecret = true
		}
	}
	if !tokenFromSecret || !strings.Contains(script, "-X POST") {
		t.Errorf("the CronJob must POST with a bearer token read from the Secret key the gateway's admin.tokens come from: %s", script)
	}
	t.Run("ReconcileRouteExists", func(t *testing.T) {
		if routeFor(k.routes, "POST", u.Path) == nil {
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
