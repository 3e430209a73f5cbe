package main

import (
	"log/slog"
	"net/http"
)

// newHandler lists every endpoint of FC's custom-runtime protocol the
// function answers.
// to names the destination in log lines: "the gateway" or "SQS".
func newHandler(logger *slog.Logger, stdout *lineWriter, dst deliverer, to string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /invoke", handleInvoke(logger, stdout, dst, to))
	mux.Handle("POST /initialize", handleInitialize(logger))
	mux.Handle("GET /{$}", handleHealth())
	return mux
}
