// Command aliyun-fc is the Function Compute 3.0 custom-runtime function that
// an OSS trigger invokes. It checks the OSS event document and delivers every
// record of it, answering FC with a non-200 status whenever it could not, so
// that FC's async retries and failure destination keep the event:
//
//   - webhook mode (default) posts the exact bytes, signed, to the oss2s3
//     gateway (OSS2S3_GATEWAY_URL, OSS2S3_WEBHOOK_SECRET);
//   - sqs mode writes one message per record to an SQS queue with
//     SendMessageBatch (OSS2S3_SQS_QUEUE_URL, OSS2S3_SQS_FORMAT dth or event,
//     AWS credentials), for Data Transfer Hub's queue or a gateway that Aliyun
//     cannot reach.
//
// envVars in run.go lists every variable it reads; README.md, "Deploying the
// Function Compute function", explains them.
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
