package main

import (
	"log/slog"
	"net/http"
)

// newHandler lists every endpoint of FC's custom-runtime protocol the
// function answers.
func newHandler(logger *slog.Logger, fwd *forwarder) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /invoke", handleInvoke(logger, fwd))
	mux.Handle("POST /initialize", handleInitialize(logger))
	mux.Handle("GET /{$}", handleHealth())
	return mux
}
