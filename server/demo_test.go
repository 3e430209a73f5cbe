package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The README's demo command copies and verifies its sample set, then
// returns: it used to hang after its table, waiting for the reconciler's
// watch, which outlived the server.
func TestDemoVerifiesEveryObjectAndReturns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"oss2s3", "demo"}, func(string) string { return "" }, nil, &stdout, &stderr)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v\n%s\n%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(2*time.Minute + 30*time.Second):
		t.Fatalf("demo did not return\n%s\n%s", stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "objects 7/7 verified byte for byte") {
		t.Fatalf("demo output:\n%s\n%s", stdout.String(), stderr.String())
	}
}
