// Package sqsemu owns an in-memory Amazon SQS emulator (standard queues)
// that speaks the AWS JSON 1.0 protocol current aws-sdk-go-v2 clients use,
// checks their SigV4 signatures, and injects faults, for tests, the demo
// and benchmarks.
//
// The real SDK client works against it unchanged but for BaseEndpoint and
// credentials:
//
//	srv := sqsemu.New(sqsemu.Options{Credentials: map[string]string{"AK": "SK"}})
//	endpoint, _ := srv.Start("127.0.0.1:0")
//	url := srv.CreateQueue("jobs", map[string]string{"VisibilityTimeout": "60"})
//	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
//
// Errors are what SQS sends in the JSON protocol's query-compatible mode: a
// status, a body {"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":
// "..."} and the header x-amzn-query-error: "<code>;Sender" (or
// ";Receiver"). The SDK maps modeled shapes to its typed errors
// (*types.QueueDoesNotExist, *types.ReceiptHandleIsInvalid, ...) whose
// ErrorCode() is the query code (AWS.SimpleQueueService.NonExistentQueue),
// and other codes (InvalidParameterValue, MissingParameter,
// SignatureDoesNotMatch, InvalidClientTokenId) to a smithy.GenericAPIError
// with that code, as against real SQS.
//
// Where it departs from real SQS, and why:
//   - Only standard queues: FIFO queues (.fifo names, FifoQueue,
//     MessageGroupId) are refused. Tags, permissions and message move
//     tasks answer UnsupportedOperation. Only the JSON protocol is spoken,
//     not the older query protocol.
//   - Delivery is deterministic: a receive returns up to MaxNumberOfMessages
//     of the visible messages in the order they became visible, never a
//     random subset and never a duplicate of a message in flight (real
//     standard queues may do both; consumers must cope, tests want
//     repeatable runs).
//   - Long polling returns as soon as one message is available, like SQS,
//     and also when the request's context ends or the server closes.
//   - A message that has been received maxReceiveCount times moves to the
//     dead-letter queue as soon as it becomes visible again (SQS moves it
//     at the next receive attempt: same outcome, but Stats show it at
//     once). In the dead-letter queue it keeps its ID, body, attributes and
//     sent time, gets DeadLetterQueueSourceArn, and its receive count starts
//     again from 0. Dead-letter targets are resolved by queue name; if the
//     target queue is deleted, messages stay where they are.
//   - Receipt handles: only a message's latest receipt handle deletes it or
//     changes its visibility. DeleteMessage with an older handle of a
//     message received again since succeeds without deleting (as the SQS
//     documentation states; counted in Stats.StaleDeletes); with a handle of
//     a message already deleted it succeeds; with a handle the emulator
//     cannot have issued, ReceiptHandleIsInvalid (per entry in
//     DeleteMessageBatch). ChangeMessageVisibility with a stale or gone
//     handle is InvalidParameterValue, on a message no longer in flight
//     MessageNotInflight.
//   - PurgeQueue may be repeated at once (SQS allows one per 60 s), and a
//     deleted queue's name can be reused at once.
//   - Queue URLs are http://HOST:PORT/000000000000/NAME; requests may name a
//     queue by any URL whose last path element is its name (so the AWS form
//     https://sqs.REGION.amazonaws.com/ACCOUNT/NAME works too).
//   - Signatures: SigV4 in the Authorization header only (no presigned
//     URLs), service "sqs", the region of Options.Region or any; a session
//     token is not checked. See Options.Credentials.
//   - MaximumMessageSize defaults to 256 KiB and may be raised to 1 MiB;
//     a batch may not exceed the queue's MaximumMessageSize in total.
package sqsemu
