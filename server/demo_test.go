package main

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/internal/testkit"
)

// The README's demo command copies and verifies its sample set, then
// returns: it used to hang after its table, waiting for the reconciler's
// watch, which outlived the server.
func TestDemoVerifiesEveryObjectAndReturns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr testkit.SyncBuffer
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

// TestDemoKeepPrintsAWorkingAdminToken: `demo --keep` prints an admin
// token with which the admin API answers (and without which it does not),
// so that the dead-letter and reconcile API can be tried on the demo.
func TestDemoKeepPrintsAWorkingAdminToken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"oss2s3", "demo", "--keep"}, func(string) string { return "" }, nil, &stdout, &stderr)
	}()
	re := regexp.MustCompile(`curl -H 'Authorization: Bearer ([0-9a-f]+)' (http://[^ ]+)/v1/dlq`)
	var m []string
	testkit.WaitFor(t, 2*time.Minute, "the demo to print the admin token", func() bool {
		m = re.FindStringSubmatch(stdout.String())
		return m != nil
	})
	token, gateway := m[1], m[2]
	get := func(auth string) int {
		req, err := http.NewRequest(http.MethodGet, gateway+"/v1/dlq", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("Bearer " + token); code != http.StatusOK {
		t.Errorf("GET /v1/dlq with the printed token: %d", code)
	}
	if code := get(""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/dlq without a token: %d", code)
	}
	// The status page it prints takes that token.
	if !strings.Contains(stdout.String(), "status    "+gateway+"/ui/") {
		t.Errorf("demo --keep prints no status page URL:\n%s", stdout.String())
	}
	form := url.Values{"token": {token}}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err := noRedirect.PostForm(gateway+"/ui/login", form); err != nil || resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Errorf("signing in to the status page with the printed token: %v %v", err, resp)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo --keep, cancelled: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo --keep did not stop when cancelled")
	}
}
