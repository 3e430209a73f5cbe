// Package httpbed owns the HTTP life cycle the emulators share: listen on
// an address, serve in the background, and shut down exactly once.
package httpbed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server serves one handler; its zero value is ready to Start.
type Server struct {
	mu       sync.Mutex
	srv      *http.Server
	serveErr chan error
	closed   bool
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves h in a goroutine.
// It returns the endpoint, e.g. "http://127.0.0.1:34567". name prefixes
// its errors; log receives net/http's own error lines at debug level.
func (s *Server) Start(name, addr string, h http.Handler, log *slog.Logger) (string, error) {
	return s.start(name, addr, h, log, nil)
}

// StartTLS is Start over TLS with cfg (its certificates), for test beds of
// services whose clients speak only https; the endpoint is https://.
func (s *Server) StartTLS(name, addr string, h http.Handler, log *slog.Logger, cfg *tls.Config) (string, error) {
	return s.start(name, addr, h, log, cfg)
}

func (s *Server) start(name, addr string, h http.Handler, log *slog.Logger, tlsCfg *tls.Config) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", fmt.Errorf("%s: server is closed", name)
	}
	if s.srv != nil {
		return "", fmt.Errorf("%s: server already started", name)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s: listen %s: %w", name, addr, err)
	}
	scheme := "http://"
	if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https://"
	}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	s.serveErr = make(chan error, 1)
	go func() { s.serveErr <- s.srv.Serve(ln) }()
	return scheme + ln.Addr().String(), nil
}

// Close runs before (if not nil), stops the listener if Start was called,
// closes open connections (cutting handlers still running after 2 s), then
// runs after (if not nil). Only the first call does anything.
func (s *Server) Close(before, after func()) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	if before != nil {
		before()
	}
	var err error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if shutdownErr := srv.Shutdown(ctx); shutdownErr != nil {
			// Handlers still running (a latency fault, a slow reader): cut them.
			_ = srv.Close()
		}
		cancel()
		if serveErr := <-s.serveErr; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
			err = serveErr
		}
	}
	if after != nil {
		after()
	}
	return err
}
