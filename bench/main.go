// Command bench measures oss2s3 against its peer, rclone, on the same
// loopback endpoints: the OSS emulator (internal/ossemu) as the source and
// versitygw over TLS as the destination. `go run ./bench copy` prints the
// figures of each case and, as its last line, the ratios BENCHMARKS.md
// records.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(1)
	}
}

const usage = `bench measures oss2s3 against rclone on loopback endpoints.

Usage:
  go run ./bench copy [flags]   large objects, small objects and peak RSS (go run ./bench copy -h)
  go run ./bench ingest [flags] signed webhook events into JetStream vs a bare publish loop (go run ./bench ingest -h)
  go run ./bench fc [flags]     the Function Compute function: binary size and cold start (go run ./bench fc -h)
  go run ./bench reconcile [flags] full diffs of generated 100k/1M/10M listings vs rclone check (go run ./bench reconcile -h)
  go run ./bench mutate [flags] mutation testing of the core decisions with gremlins (go run ./bench mutate -h)
  go run ./bench lag [flags]    event-to-object lag at a steady event rate, small and mixed with multipart (go run ./bench lag -h)
  go run ./bench scale [flags]  one reconcile run sharded over 1, 2, 4, 8 replicas, listing pages at 100 ms (go run ./bench scale -h)
  go run ./bench chaos [flags]  a soak: 3 NATS nodes, 3 replicas, load and faults, then a check of every object (go run ./bench chaos -h)
`

// run is the whole program; main only gives it the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errors.New("no benchmark named")
	}
	switch cmd, rest := args[1], args[2:]; cmd {
	case "copy":
		return runCopy(ctx, rest, getenv, stdout, stderr)
	case "ingest":
		return runIngest(ctx, rest, getenv, stdout, stderr)
	case "fc":
		return runFC(ctx, rest, getenv, stdout, stderr)
	case "reconcile":
		return runReconcileBench(ctx, rest, getenv, stdout, stderr)
	case "mutate":
		return runMutate(ctx, rest, getenv, stdout, stderr)
	case "lag":
		return runLag(ctx, rest, getenv, stdout, stderr)
	case "chaos":
		return runChaos(ctx, rest, getenv, stdout, stderr)
	case "scale":
		return runScale(ctx, rest, getenv, stdout, stderr)
	case "nats-node":
		return runNATSNode(ctx, rest, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown benchmark %q", cmd)
	}
}
