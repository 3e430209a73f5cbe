package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// rcloneInstall is the command that installs the peer the benchmark runs.
const rcloneInstall = "go install github.com/rclone/rclone@v1.76.0"

// rclone runs `rclone copy` between the emulator (read through its S3 API,
// as rclone reads real OSS) and versitygw, configured only by environment
// variables and an empty config file of its own, so a developer's
// ~/.config/rclone cannot change what it does.
type rclone struct {
	bin     string
	version string
	config  string // empty file
	caFile  string
	env     []string
}

func newRclone(bin, dir, ossURL, s3URL, caFile string) (*rclone, error) {
	r := &rclone{bin: bin, config: filepath.Join(dir, "rclone.conf"), caFile: caFile}
	if err := os.WriteFile(r.config, nil, 0o600); err != nil {
		return nil, err
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "RCLONE_") || strings.HasPrefix(k, "AWS_") {
			continue
		}
		r.env = append(r.env, kv)
	}
	remote := func(name, endpoint, region, ak, sk string) {
		p := "RCLONE_CONFIG_" + name + "_"
		r.env = append(r.env, p+"TYPE=s3", p+"PROVIDER=Other", p+"ENDPOINT="+endpoint, p+"REGION="+region,
			p+"ACCESS_KEY_ID="+ak, p+"SECRET_ACCESS_KEY="+sk, p+"FORCE_PATH_STYLE=true")
	}
	remote("SRC", ossURL, ossRegion, ossAccessKey, ossSecretKey)
	remote("DST", s3URL, s3Region, s3AccessKey, s3SecretKey)
	out, err := exec.Command(bin, "version", "--config", r.config).Output()
	if err != nil {
		return nil, fmt.Errorf("%s version: %w", bin, err)
	}
	r.version, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	return r, nil
}

// copy runs `rclone copy src:srcBucket dst:dstBucket flags...`, timed by
// w from its start to its exit, with the CPU of its whole life (listing
// included, as its time is), and returns its peak RSS.
func (r *rclone) copy(ctx context.Context, srcBucket, dstBucket string, flags []string, logPath string, w *window) (int64, error) {
	args := append([]string{"copy", "src:" + srcBucket, "dst:" + dstBucket,
		"--config", r.config, "--ca-cert", r.caFile}, flags...)
	f, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	w.begin()
	err = cmd.Run()
	w.finish()
	if err != nil {
		return 0, fmt.Errorf("rclone: %w; log:\n%s", err, tailFile(logPath, 40))
	}
	w.tool = exitCPU(cmd.ProcessState)
	return maxRSSOf(cmd.ProcessState), nil
}

// findTool looks for a `go install`ed binary on PATH, then in GOBIN and
// GOPATH/bin.
func findTool(name string, goenv map[string]string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if goenv["GOBIN"] != "" {
		dirs = append(dirs, goenv["GOBIN"])
	}
	for _, d := range filepath.SplitList(goenv["GOPATH"]) {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not on PATH nor in %s", name, strings.Join(dirs, ", "))
}

// moduleEnv returns `go env` GOMOD, GOBIN and GOPATH, and fails unless the
// benchmark runs inside the oss2s3 module (it builds oss2s3 from there);
// name is the benchmark's, for the message.
func moduleEnv(ctx context.Context, name string) (map[string]string, error) {
	goenv, err := goEnv(ctx, "GOMOD", "GOBIN", "GOPATH")
	if err != nil {
		return nil, err
	}
	if goenv["GOMOD"] == "" || goenv["GOMOD"] == os.DevNull {
		return nil, fmt.Errorf("run from inside the oss2s3 module (go run ./bench %s)", name)
	}
	return goenv, nil
}

// goEnv returns `go env` values by name.
func goEnv(ctx context.Context, names ...string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "go", append([]string{"env"}, names...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(names) {
		return nil, fmt.Errorf("go env %s: got %d lines", strings.Join(names, " "), len(lines))
	}
	m := make(map[string]string, len(names))
	for i, n := range names {
		m[n] = strings.TrimSpace(lines[i])
	}
	return m, nil
}
