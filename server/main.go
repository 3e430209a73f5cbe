// Command oss2s3 keeps S3 buckets a verified copy of Aliyun OSS buckets: a
// gateway that turns OSS events into JetStream jobs, and the copy workers
// that carry them out. Package main is the composition root: it reads the
// configuration and wires the packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "oss2s3:", err)
		}
		os.Exit(1)
	}
}

const usage = `oss2s3 keeps S3 buckets a verified copy of Aliyun OSS buckets.

Usage:
  oss2s3 [serve] --config FILE   run the gateway and copy workers (default)
  oss2s3 check --config FILE     validate a configuration as serve would, contacting nothing
  oss2s3 demo [--keep]           run the whole pipeline locally on emulators and check the result
  oss2s3 reconcile --task T [--mode report|copy|sync|copy_all] [--gateway URL --token T | --local --config FILE]
                                 diff a task's source and destination, with a progress bar and a summary
  oss2s3 sync --task T [--gateway URL --token T | --local --config FILE]
                                 one-time transfer: queue what differs, copy it (on the gateway, or here)
                                 and wait for every copy; exits non-zero if one failed for good
  oss2s3 reload --pid PID        make a running serve read its configuration again (sends it SIGHUP)
  oss2s3 version                 print the version

The configuration file may also be named by OSS2S3_CONFIG.
`

// run is the whole program; main only gives it the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, rest := "serve", args[1:]
	if len(rest) > 0 && len(rest[0]) > 0 && rest[0][0] != '-' {
		cmd, rest = rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "check":
		return runCheck(rest, getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, getenv, stdout, stderr)
	case "reconcile":
		return runReconcile(ctx, rest, getenv, stdout, stderr)
	case "sync":
		return runSync(ctx, rest, getenv, stdout, stderr)
	case "reload":
		return runReload(rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func versionString() string {
	v, rev := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " " + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("oss2s3 %s%s %s %s/%s", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
