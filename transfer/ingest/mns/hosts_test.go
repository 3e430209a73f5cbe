// The certificate hosts a push may name: the default allow list, and the
// bound on downloads running at once.

package mns_test

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
)

type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected request to %s", r.URL)
	return nil, errors.New("no network in this test")
}

func TestDefaultAllowListRefusesWithoutANetworkRequest(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ url, msg string }{
		{"https://evil.example.com/cert.pem", `MNS signing certificate URL not allowed: host "evil.example.com"`},
		{"http://mns-cert.oss-cn-hangzhou.aliyuncs.com/x.pem", `MNS signing certificate URL not allowed: scheme "http" of http://mns-cert.oss-cn-hangzhou.aliyuncs.com/x.pem (only https)`},
		// The URL of the documentation's 2016 example, plain http too.
		{"http://mnstest.oss-cn-hangzhou.aliyuncs.com/x509_public_certificate.pem", `scheme "http"`},
		{"https://mns-cert.oss-cn-hangzhou.aliyuncs.com.evil.example.com/x.pem", `host "mns-cert.oss-cn-hangzhou.aliyuncs.com.evil.example.com"`},
		{"https://mns-cert.oss-cn-hangzhou.aliyuncs.com:8443/x.pem", `host "mns-cert.oss-cn-hangzhou.aliyuncs.com:8443"`},
		{"https://evil.example.com#@mns-cert.oss-cn-hangzhou.aliyuncs.com/x.pem", `host "evil.example.com"`},
		{"https://mns-cert.oss-cn-hangzhou.aliyuncs.com@evil.example.com/x.pem", "has user information"},
		{"https://mnstest.oss-cn-shanghai.aliyuncs.com/x.pem", `host "mnstest.oss-cn-shanghai.aliyuncs.com"`},
		{"https://xmns-cert.oss-cn-hangzhou.aliyuncs.com/x.pem", `host "xmns-cert.oss-cn-hangzhou.aliyuncs.com"`},
		{"file:///etc/passwd", `scheme "file"`},
		{"//evil.example.com/x.pem", `scheme ""`},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			v := &mns.Verifier{Client: &http.Client{Transport: failTransport{t}}, Now: func() time.Time { return now }}
			body := []byte("{}")
			sum := md5.Sum(body)
			h := http.Header{}
			h.Set("Date", now.Format(http.TimeFormat))
			h.Set("Content-MD5", hex.EncodeToString(sum[:]))
			h.Set("x-mns-signing-cert-url", base64.StdEncoding.EncodeToString([]byte(tc.url)))
			p := push{method: "POST", path: "/notifications", h: h, body: body}
			p.sign(t, key)
			err := p.verify(v)
			if !errors.Is(err, mns.ErrCertHostNotAllowed) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Verify = %v, want ErrCertHostNotAllowed containing %q", err, tc.msg)
			}
		})
	}
}

func TestDefaultAllowedHost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"mns-cert.oss-cn-hangzhou.aliyuncs.com":      true, // documented pattern
		"mns-cert.oss-ap-southeast-1.aliyuncs.com":   true,
		"mnstest.oss-cn-hangzhou.aliyuncs.com":       true, // every captured push
		"mns-cert.oss-cn-hangzhou.aliyuncs.com:443":  false,
		"MNS-CERT.oss-cn-hangzhou.aliyuncs.com":      false,
		"mns-cert.oss-cn-hangzhou.aliyuncs.com.":     false,
		"mns-cert.oss-.aliyuncs.com.evil.com":        false,
		"evil.com/mns-cert.oss-cn-hangzhou.aliyuncs": false,
		"mns-cert.oss-cn_hangzhou.aliyuncs.com":      false,
		"":                                           false,
		// Only real regions (issue 14: any label was accepted, so a
		// request could name a host nobody checked).
		"mns-cert.oss-anything-i-like.aliyuncs.com":       false,
		"mns-cert.oss-cn-hangzhou-x.aliyuncs.com":         false,
		"mns-cert.oss-eu-central-1.aliyuncs.com":          true,
		"mns-cert.oss-cn-shanghai-finance-1.aliyuncs.com": true,
	} {
		if got := mns.DefaultAllowedHost(host); got != want {
			t.Errorf("DefaultAllowedHost(%q) = %v, want %v", host, got, want)
		}
	}
	if _, err := mns.HostPattern("("); err == nil || !strings.Contains(err.Error(), "MNS certificate host pattern: error parsing regexp") {
		t.Errorf("HostPattern(\"(\") error = %v", err)
	}
	anchored, _ := mns.HostPattern(`127\.0\.0\.1:[0-9]+`)
	if anchored("127.0.0.1:443.evil.com") || !anchored("127.0.0.1:8443") {
		t.Error("HostPattern is not anchored at both ends")
	}
	def, _ := mns.HostPattern("")
	if !def("mnstest.oss-cn-hangzhou.aliyuncs.com") || def("127.0.0.1:8443") {
		t.Error(`HostPattern("") is not DefaultAllowedHost`)
	}
	for _, r := range mns.Regions {
		if !mns.DefaultAllowedHost("mns-cert.oss-" + r + ".aliyuncs.com") {
			t.Errorf("region %s is not allowed", r)
		}
	}
}

// TestVerifyBoundsConcurrentDownloads is the fifth finding of issue 14:
// 20 requests naming 20 certificate URLs held 20 downloads open at once
// (each up to FetchTimeout). Now at most MaxFetches run; a request that
// finds none free waits as long as its context allows.
func TestVerifyBoundsConcurrentDownloads(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var inFlight, most, total atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		total.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	b := &testBundle{key: key, srv: srv, host: u.Host}
	v := b.verifier()
	v.MaxFetches = 2
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 20 {
		p := b.newPush(t, fmt.Sprintf("/cert-%d.pem", i), key)
		wg.Go(func() { errs <- v.Verify(ctx, p.method, p.path, p.h, p.body) })
	}
	// Two downloads start; the others wait for a slot.
	deadline := time.Now().Add(10 * time.Second)
	for total.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, mns.ErrCertFetch) {
			t.Errorf("Verify = %v, want ErrCertFetch", err)
		}
	}
	if m := most.Load(); m > 2 {
		t.Fatalf("%d downloads in flight at once, want at most 2", m)
	}
	if n := total.Load(); n != 20 {
		t.Fatalf("%d downloads, want 20 (one per URL, two at a time)", n)
	}

	t.Run("ARequestThatFindsNoSlotInTimeFailsWithoutDownloading", func(t *testing.T) {
		hold := make(chan struct{})
		var started atomic.Int32
		slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			started.Add(1)
			select {
			case <-hold:
			case <-r.Context().Done():
			}
			http.NotFound(w, r)
		}))
		defer slow.Close()
		defer close(hold)
		u, _ := url.Parse(slow.URL)
		b := &testBundle{key: key, srv: slow, host: u.Host}
		v := b.verifier()
		v.MaxFetches = 1
		first := b.newPush(t, "/first.pem", key)
		go func() { _ = first.verify(v) }()
		for started.Load() < 1 {
			time.Sleep(5 * time.Millisecond)
		}
		second := b.newPush(t, "/second.pem", key)
		sctx, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer scancel()
		err := v.Verify(sctx, second.method, second.path, second.h, second.body)
		if !errors.Is(err, mns.ErrCertFetch) || !strings.Contains(err.Error(), "downloads in flight") {
			t.Fatalf("Verify = %v, want ErrCertFetch for no free slot", err)
		}
		if n := started.Load(); n != 1 {
			t.Fatalf("%d downloads started, want 1", n)
		}
	})
}
