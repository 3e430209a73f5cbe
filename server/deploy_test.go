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
		port = checkComposeReplica(t, compose, docker, name, configPath, natsNodes, compose.Services[replicas[0]].Image)
	}
	prometheusScrapesEveryReplica(t, port, replicas)
}

// checkComposeReplica checks oss2s3 replica name of compose: its
// configuration loads with the environment compose gives it, its ports are
// the gateway's, it connects to compose's NATS nodes, and it runs the
// image built from the Dockerfile (image: the first replica's). It returns
// the gateway's port.
func checkComposeReplica(t *testing.T, compose composeFile, docker dockerfile, name, configPath string, natsNodes []string, image string) string {
	t.Helper()
	s := compose.Services[name]
	hostPath, _ := s.mount(configPath)
	cfg, err := loadConfig(filepath.Join(deployDir, hostPath), composeGetenv(s.Environment))
	if err != nil {
		t.Fatalf("%s: %s does not load with the environment compose gives it: %v", name, hostPath, err)
	}
	port := listenPort(t, cfg)
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
	if s.Build == nil && s.Image != image {
		t.Errorf("%s runs image %q, not the one built from the Dockerfile", name, s.Image)
	}
	return port
}

// prometheusScrapesEveryReplica: Prometheus scrapes every replica on the
// gateway port and path.
func prometheusScrapesEveryReplica(t *testing.T, port string, replicas []string) {
	t.Helper()
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
