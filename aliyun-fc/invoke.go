package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// maxEventBytes bounds the event document read from FC; an OSS trigger
// document is a few KiB.
const maxEventBytes = 6 << 20

// response is the JSON body of every answer to FC.
type response struct {
	RequestID       string          `json:"request_id,omitempty"`
	Records         int             `json:"records,omitempty"`
	GatewayStatus   int             `json:"gateway_status,omitempty"`
	GatewayResponse json.RawMessage `json:"gateway_response,omitempty"`
	Attempts        int             `json:"attempts,omitempty"`
	Sent            int             `json:"sent,omitempty"`
	Failed          int             `json:"failed,omitempty"`
	Skipped         int             `json:"skipped,omitempty"`
	Error           string          `json:"error,omitempty"`
}

// handleInvoke answers POST /invoke: body = the OSS trigger document.
//
// 200: every record was delivered (the gateway answered 2xx, or SQS took
// every message). 400/413: the document is malformed and was not
// delivered. 502: the gateway or SQS refused it, or is down. 504: the budget
// ran out first. Any non-200 makes FC count a function error, retry the
// async invocation and in the end send the event to the failure
// destination; records already sent are then sent again, which the gateway
// recognises as duplicates.
//
// Each invocation is framed on stdout by the "FC Invoke Start RequestId:"
// and "FC Invoke End RequestId:" lines FC's console uses to show an
// invocation's log.
func handleInvoke(logger *slog.Logger, stdout *lineWriter, dst deliverer, to string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := r.Header.Get("x-fc-request-id")
		stdout.line("FC Invoke Start RequestId: " + reqID)
		defer stdout.line("FC Invoke End RequestId: " + reqID)
		log := logger.With("request_id", reqID)
		if fn := r.Header.Get("x-fc-function-name"); fn != "" {
			log = log.With("function", fn)
		}

		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBytes))
		if err != nil {
			if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
				log.Error("event document too large, not forwarded", "limit_bytes", tooBig.Limit)
				writeJSON(w, http.StatusRequestEntityTooLarge, response{RequestID: reqID, Error: fmt.Sprintf("event document larger than %d bytes", tooBig.Limit)})
				return
			}
			log.Error("read event document", "error", err)
			writeJSON(w, http.StatusBadRequest, response{RequestID: reqID, Error: "read event document: " + err.Error()})
			return
		}
		doc, err := ossevent.Parse(body)
		if err != nil {
			log.Error("malformed OSS event document, not forwarded", "error", err, "bytes", len(body))
			writeJSON(w, http.StatusBadRequest, response{RequestID: reqID, Error: "malformed OSS event document: " + err.Error()})
			return
		}
		first := doc.Events[0]
		log = log.With("records", len(doc.Events), "event", first.EventName, "bucket", first.OSS.Bucket.Name, "key", first.OSS.Object.Key)

		out := dst.deliver(r.Context(), body, doc, reqID, log)
		res := response{RequestID: reqID, Records: len(doc.Events), GatewayStatus: out.gatewayStatus, GatewayResponse: rawJSON(out.gatewayBody),
			Attempts: out.attempts, Sent: out.sent, Failed: out.failed, Skipped: out.skipped}
		log = log.With("attempts", out.attempts, "duration_ms", time.Since(start).Milliseconds())
		if to == "the gateway" {
			log = log.With("gateway_status", out.gatewayStatus)
		} else {
			log = log.With("sent", out.sent, "failed", out.failed, "skipped", out.skipped)
		}
		if out.status != http.StatusOK {
			res.Error = out.reason
			log.Error("event not delivered to "+to, "status", out.status, "reason", out.reason)
			writeJSON(w, out.status, res)
			return
		}
		log.Info("event delivered to " + to)
		writeJSON(w, http.StatusOK, res)
	})
}

// handleInitialize answers FC's initializer hook; the function needs no
// per-instance setup beyond what run does.
func handleInitialize(logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.Info("initialized", "request_id", r.Header.Get("x-fc-request-id"))
		writeJSON(w, http.StatusOK, response{RequestID: r.Header.Get("x-fc-request-id")})
	})
}

// lineWriter writes whole lines to one writer from concurrent invocations.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, s+"\n")
}

func handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
}

// writeJSON answers FC. x-fc-status is what FC's custom-runtime contract
// reads to tell a function error (404) from a success (200): without it FC
// counts the invocation as successful whatever the status code, and would
// neither retry the event nor send it to the failure destination.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusOK {
		w.Header().Set("x-fc-status", "200")
	} else {
		w.Header().Set("x-fc-status", "404")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// rawJSON embeds the gateway's answer as JSON when it is JSON, else as a string.
func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b))
	return s
}
