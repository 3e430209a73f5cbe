// Command aliyun-fc is the Function Compute 3.0 custom-runtime function that
// an OSS trigger invokes: it checks the OSS event document and forwards the
// exact bytes, signed, to the oss2s3 gateway, answering FC with a non-200
// status whenever the gateway did not take the event, so that FC's async
// retries and failure destination keep it.
//
// Configuration (environment): OSS2S3_GATEWAY_URL (the function posts to
// <url>/v1/events/oss), OSS2S3_WEBHOOK_SECRET, OSS2S3_TIMEOUT (time budget of
// one invocation, a Go duration, default 10s; keep it below the function's
// timeout) and FC_CUSTOM_LISTEN_PORT (set by FC, default 9000).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "aliyun-fc: %v\n", err)
		os.Exit(1)
	}
}
