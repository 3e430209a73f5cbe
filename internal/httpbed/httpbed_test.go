package httpbed

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
)

func TestServeThenCloseOnce(t *testing.T) {
	t.Parallel()
	var s Server
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	url, err := s.Start("bed", "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }), log)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("served %q", body)
	}
	if _, err := s.Start("bed", "127.0.0.1:0", http.NotFoundHandler(), log); err == nil {
		t.Fatal("a second Start succeeded")
	}
	var before, after int
	for range 2 {
		if err := s.Close(func() { before++ }, func() { after++ }); err != nil {
			t.Fatal(err)
		}
	}
	if before != 1 || after != 1 {
		t.Fatalf("hooks ran %d and %d times, want once each", before, after)
	}
	if _, err := http.Get(url); err == nil {
		t.Fatal("still serving after Close")
	}
	if _, err := s.Start("bed", "127.0.0.1:0", http.NotFoundHandler(), log); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}
