package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
)

// slowDownProxy is a reverse proxy in front of the destination that, during
// a storm, answers a share of the requests itself with S3's throttling
// error, 503 SlowDown, as S3 does when a prefix is hot: a fault only HTTP
// can carry, which a TCP proxy cannot make. The rest go through untouched,
// Host header included, so SigV4 signatures made for the proxy's address
// still verify at the destination.
type slowDownProxy struct {
	rp *httputil.ReverseProxy

	mu    sync.Mutex
	share float64
	rng   *rand.Rand

	passed, refused atomic.Int64
}

var _ http.Handler = (*slowDownProxy)(nil)

// newSlowDownProxy forwards to target over transport.
func newSlowDownProxy(target *url.URL, transport http.RoundTripper, seed uint64) *slowDownProxy {
	return &slowDownProxy{
		rp: &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.Out.Host = r.In.Host
			},
			Transport: transport,
			// Stream bodies as they come (GetObject, UploadPart).
			FlushInterval: -1,
			// A client that goes away mid-request (killed, or its
			// connection reset by a fault) is part of the run, not news.
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				http.Error(w, err.Error(), http.StatusBadGateway)
			},
		},
		rng: rand.New(rand.NewPCG(seed, 0x503)),
	}
}

// setShare makes the proxy refuse this share (0 to 1) of the requests
// from now on; 0 ends a storm.
func (p *slowDownProxy) setShare(share float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.share = share
}

func (p *slowDownProxy) refuse() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.share > 0 && p.rng.Float64() < p.share
}

func (p *slowDownProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.refuse() {
		p.passed.Add(1)
		p.rp.ServeHTTP(w, r)
		return
	}
	p.refused.Add(1)
	id := strconv.FormatInt(p.refused.Load(), 16)
	w.Header().Set("x-amz-request-id", id)
	w.Header().Set("Retry-After", "1")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>%s</RequestId><HostId>chaos</HostId></Error>`, id)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	// The request body is left unread: the server closes the connection
	// after a refused upload, as a throttled client sees it.
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(body))
}
