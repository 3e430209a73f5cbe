// Package sqsemu is an Amazon SQS emulator that speaks the AWS JSON 1.0
// protocol current aws-sdk-go-v2 clients use, for tests, the demo and
// benchmarks.
package sqsemu

import _ "github.com/aws/aws-sdk-go-v2/service/sqs"
