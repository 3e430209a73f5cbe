package main

// Reloading the configuration: on SIGHUP serve reads its file again and,
// if the file is valid and changes only what a running process can
// change, serves it from then on.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oss2s3/oss2s3/handlers"
)

// reloadSignalKey is the context key of the channel whose signals ask
// serve to read its configuration again (main: SIGHUP).
type reloadSignalKey struct{}

// withReloadSignals returns ctx carrying ch: each value received on it
// reloads the configuration of the serve that runs under ctx. main passes
// SIGHUP's channel; tests pass their own.
func withReloadSignals(ctx context.Context, ch <-chan os.Signal) context.Context {
	return context.WithValue(ctx, reloadSignalKey{}, ch)
}

// reloadSignals returns the channel withReloadSignals put in ctx; nil
// (never ready) if none.
func reloadSignals(ctx context.Context) <-chan os.Signal {
	ch, _ := ctx.Value(reloadSignalKey{}).(<-chan os.Signal)
	return ch
}

// runReload sends SIGHUP to the oss2s3 serve whose process id --pid
// names: it reads its configuration again. In a container serve is process
// 1, and the image has no shell nor kill, so
// `kubectl exec POD -- /oss2s3 reload --pid 1` is how one pod is told. The
// outcome is the process's: its log, oss2s3_config_reloads_total, GET
// /v1/tasks.
func runReload(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pid := fs.Int("pid", 0, "process id of the oss2s3 serve to reload (1 in its container)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pid <= 0 {
		return errors.New("reload: give --pid, the process id of the oss2s3 serve (1 in its container)")
	}
	p, err := os.FindProcess(*pid)
	if err == nil {
		err = p.Signal(syscall.SIGHUP)
	}
	if err != nil {
		return fmt.Errorf("reload: SIGHUP to process %d: %w", *pid, err)
	}
	fmt.Fprintf(stdout, "SIGHUP sent to process %d: it reads its configuration again; its log, oss2s3_config_reloads_total "+
		"and GET /v1/tasks (\"config\") say whether the file was taken\n", *pid)
	return nil
}

// source is where a reload reads the configuration: the file serve was
// started with, expanded with the same environment.
type source struct {
	path   string
	getenv func(string) string
}

// watchReloads reloads the configuration at each signal on sig until ctx
// is done. Reloads are made one at a time; signals that arrive during one
// are folded into the next (signal.Notify's channel holds one).
func (a *app) watchReloads(ctx context.Context, sig <-chan os.Signal) {
	if sig == nil || a.src.path == "" {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			a.reload(ctx)
		}
	}
}

// reload reads the configuration file again and, if it is valid and the
// settings that need a restart are unchanged, makes it the configuration
// in use; if not, the configuration in use stays, whole. Either way the
// outcome is logged, counted (oss2s3_config_reloads_total) and kept for
// GET /v1/tasks.
func (a *app) reload(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at := time.Now()
	g, err := a.reloaded(ctx)
	if err != nil {
		a.refused.Store(&handlers.ReloadStatus{At: at, Error: err.Error()})
		a.m.ConfigLoaded(true, false, at)
		a.log.Error("configuration reload refused: the configuration in use is unchanged", "config", a.src.path, "err", err)
		return
	}
	g.reload = &handlers.ReloadStatus{At: at, OK: true}
	prev := a.live.load()
	a.install(g)
	a.m.ConfigLoaded(true, true, g.loadedAt)
	added, removed, changed := taskChanges(prev, g)
	a.log.Info("configuration reloaded", "config", a.src.path, "tasks", len(g.order),
		"added", added, "removed", removed, "changed", changed)
}

// reloaded reads and checks the file as serve does at start (loadConfig:
// the same report of every problem), refuses a change of what needs a
// restart, and builds the new generation: its tasks, and what uses
// JetStream if it is ready. a.mu is held.
func (a *app) reloaded(ctx context.Context) (*generation, error) {
	cfg, err := loadConfig(a.src.path, a.src.getenv)
	if err != nil {
		return nil, err
	}
	prev := a.live.load()
	if fields := restartOnlyChanges(prev.cfg, cfg); len(fields) > 0 {
		return nil, fmt.Errorf("configuration %s changes settings that take effect only at a restart: %s "+
			"(restart oss2s3 to apply the file, or put them back as they were and reload again)", a.src.path, strings.Join(fields, ", "))
	}
	g, err := a.newGeneration(ctx, cfg, prev)
	if err != nil {
		return nil, err
	}
	if a.queue != nil {
		if err := a.withJetStream(ctx, g, prev); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// taskChanges names the tasks next adds, removes and changes from prev.
func taskChanges(prev, next *generation) (added, removed, changed []string) {
	for _, t := range next.order {
		switch rt := prev.tasks[t.Name]; {
		case rt == nil:
			added = append(added, t.Name)
		case rt != next.tasks[t.Name]:
			changed = append(changed, t.Name)
		}
	}
	for _, t := range prev.order {
		if next.tasks[t.Name] == nil {
			removed = append(removed, t.Name)
		}
	}
	return added, removed, changed
}

// restartOnlyChanges names the settings that differ between old and new
// and that a running process cannot take from a reload: where it listens
// and its certificate's files, where JetStream is and the shape of its
// streams and consumer (queue), the workers (their number, the memory
// budget the process's memory limit is set from, the copy defaults baked
// into them), where the data lives and the log. Everything else reloads:
// the tasks (and so the routes and the schedules), the secrets and tokens
// of every endpoint and their limits, the SQS queues, trusted_proxies and
// drain_delay.
//
// A file that changes one of them is refused whole, rather than applied
// but for them: the process then always runs one version of the file, the
// one it reports as loaded, and a restart later brings no surprise from
// a change made long before; the refusal names the settings, so the fix
// (a restart, or putting them back) is plain.
func restartOnlyChanges(old, new *Config) []string {
	var changed []string
	if old.Listen != new.Listen {
		changed = append(changed, "listen")
	}
	if old.DataDir != new.DataDir {
		changed = append(changed, "data_dir")
	}
	changed = append(changed, fieldChanges("tls", old.TLS, new.TLS)...)
	changed = append(changed, fieldChanges("log", old.Log, new.Log)...)
	changed = append(changed, fieldChanges("nats", old.NATS, new.NATS)...)
	changed = append(changed, fieldChanges("queue", old.Queue, new.Queue)...)
	changed = append(changed, fieldChanges("workers", old.Workers, new.Workers)...)
	return changed
}

// fieldChanges names, as section.field (the YAML names), the fields of the
// structs a and b (of one type) whose values differ. queue.max_deliver is
// left out: its value is compared as queue.max_attempts, the name it is
// read into.
func fieldChanges(section string, a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		name, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("yaml"), ",")
		if section == "queue" && name == "max_deliver" {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, section+"."+name)
		}
	}
	return out
}

// configStatus is GET /v1/tasks' "config" as the gateway of the
// generation g tells it (and a status page): when g was loaded, and the
// last reload, which is the one that installed g unless a reload refused
// since is newer. It is read through the request's own generation, so an
// answer never pairs one configuration's tasks with another's load time.
type configStatus struct {
	g       *generation
	refused *atomic.Pointer[handlers.ReloadStatus] // the last refused reload
}

var _ handlers.ConfigStatuser = configStatus{}

// ConfigStatus returns the status now (a copy).
func (s configStatus) ConfigStatus() handlers.ConfigStatus {
	st := handlers.ConfigStatus{LoadedAt: s.g.loadedAt}
	last := s.g.reload
	if r := s.refused.Load(); r != nil && (last == nil || r.At.After(last.At)) {
		last = r
	}
	if last != nil {
		r := *last
		st.LastReload = &r
	}
	return st
}
