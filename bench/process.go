package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is a child process whose output goes to a log file.
type process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited and err is set
	err     error
}

// startProcess starts bin with args and env, its stdout and stderr appended
// to logPath. The child is killed if the benchmark dies (see procAttr).
func startProcess(bin string, args, env []string, logPath string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to end (SIGTERM) and kills it after grace. It
// returns the exit error unless the process was killed by stop itself.
func (p *process) stop(grace time.Duration) error {
	if p == nil || p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		var exitErr *exec.ExitError
		if errors.As(p.err, &exitErr) && !exitErr.Exited() {
			return nil // ended by the signal: that is how we stop it
		}
		return p.err
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", filepath.Base(p.cmd.Path), grace)
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *process) kill() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// tail returns the last lines of the process's log.
func (p *process) tail() string { return tailFile(p.logPath, 40) }

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = append([]string{fmt.Sprintf("[... %d lines before; full log %s]", len(all)-lines, path)}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}

// logDir names the log files of the child processes.
type logDir struct{ dir string }

func (l *logDir) path(name string) string { return filepath.Join(l.dir, name) }

// waitReady polls oss2s3's /readyz on addr until it answers 200, the
// process exits, ctx ends or 30 s pass; on failure the process is stopped.
func waitReady(ctx context.Context, p *process, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		switch {
		case p.exited():
			return fmt.Errorf("oss2s3 exited before it was ready: %v; log:\n%s", p.err, p.tail())
		case ctx.Err() != nil:
			_ = p.stop(5 * time.Second) // best effort: the cancellation is the error
			return ctx.Err()
		case time.Now().After(deadline):
			_ = p.stop(5 * time.Second) // best effort: not being ready is the error
			return fmt.Errorf("oss2s3 not ready in 30s; log:\n%s", p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// makeWorkDir makes the run's directory (under dir, else tmp) with its logs
// folder; what must write to a real disk names who needs that, for the
// error when the directory is on tmpfs.
func makeWorkDir(dir, tmp, prefix, what string) (string, *logDir, error) {
	if dir == "" {
		dir = tmp
	}
	d, err := os.MkdirTemp(dir, prefix)
	if err != nil {
		return "", nil, err
	}
	fail := func(err error) (string, *logDir, error) {
		_ = os.RemoveAll(d)
		return "", nil, err
	}
	if mem, err := memoryFS(d); err != nil {
		return fail(err)
	} else if mem {
		return fail(fmt.Errorf("%s is on tmpfs/ramfs: %s must write to a real disk (use -dir or TMPDIR)", d, what))
	}
	logs := &logDir{dir: filepath.Join(d, "logs")}
	if err := os.MkdirAll(logs.dir, 0o755); err != nil {
		return fail(err)
	}
	return d, logs, nil
}

// removeWorkDir removes the run's directory unless asked to keep it.
func removeWorkDir(dir string, keep bool, logf func(string, ...any)) error {
	if keep {
		logf("kept %s", dir)
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
