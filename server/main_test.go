package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/oss2s3/oss2s3/internal/jstest"
)

// childEnv makes the test binary run oss2s3 itself instead of the tests, so
// a test can start the real program as a separate process and kill it with
// SIGKILL (a cancelled context is not a crash).
const childEnv = "OSS2S3_TEST_CHILD"

// natsNodeEnv makes the test binary run one node of a JetStream cluster
// (its jstest.Node as JSON), so a test can SIGKILL one node alone.
const natsNodeEnv = "OSS2S3_TEST_NATS_NODE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(natsNodeEnv); spec != "" {
		os.Exit(runNATSNode(spec))
	}
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, append([]string{"oss2s3"}, os.Args[1:]...), os.Getenv, os.Stdin, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "oss2s3:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runNATSNode(spec string) int {
	var n jstest.Node
	if err := json.Unmarshal([]byte(spec), &n); err != nil {
		fmt.Fprintln(os.Stderr, "nats node:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ns, err := jstest.StartNode(n)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "nats node", n.Name, "ready at", ns.ClientURL())
	<-ctx.Done()
	ns.Shutdown()
	ns.WaitForShutdown()
	return 0
}
