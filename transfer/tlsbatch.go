package transfer

// TLS connections to the destination whose records reach the socket in
// batches. crypto/tls writes every record (16 KiB at most) with a write
// system call of its own, and net/http feeds a request body to the
// connection 32 KiB at a time; on the large copies these writes were a
// fifth of oss2s3's CPU, most of it the kernel's cost per write rather than
// per byte. Here a body goes to the connection 256 KiB at a time, and the
// records each Write makes go to the socket together, in one system call
// per 256 KiB. The bytes on the wire are the same records in the same
// order; nothing is held back once Write returns.

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"
)

// tlsBatchSize is the most bytes a body is read in at once, and the most
// bytes of records sent with one system call.
const tlsBatchSize = 256 << 10

// tlsBatchBufs holds the buffers of batches and body reads, taken only
// while a Write is under way: idle connections hold none. A batch has room
// for tlsBatchSize bytes of data in records and their headers and tags (22
// bytes per record of at most 16 KiB).
var tlsBatchBufs = sync.Pool{New: func() any { b := make([]byte, 0, tlsBatchSize+4<<10); return &b }}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// batchedTLSDialer returns an http.Transport's DialTLSContext: it dials with
// dial (the transport's own DialContext; nil: a net.Dialer), shakes hands
// with cfg (nil: the defaults) naming the host as the transport would,
// within handshakeTimeout (0: none but ctx), and returns the batching
// connection. It offers HTTP/1.1 only: the transport speaks HTTP/2 over its
// own *tls.Conn only.
func batchedTLSDialer(dial dialFunc, cfg *tls.Config, handshakeTimeout time.Duration) dialFunc {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := &tls.Config{}
		if cfg != nil {
			c = cfg.Clone()
		}
		if c.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			c.ServerName = host
		}
		c.NextProtos = []string{"http/1.1"}
		sock := &recordBatcher{Conn: raw}
		tc := tls.Client(sock, c)
		hctx := ctx
		if handshakeTimeout > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, handshakeTimeout)
			defer cancel()
		}
		if err := tc.HandshakeContext(hctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		return &batchedTLS{Conn: tc, sock: sock}, nil
	}
}

// batchedTLS is a client TLS connection whose Write sends its records in
// batches, and whose ReadFrom (what io.Copy, and so net/http's body copy,
// uses) reads the body in pieces of tlsBatchSize.
type batchedTLS struct {
	*tls.Conn
	sock *recordBatcher
}

// Write encrypts p and sends its records, all of them sent when it returns.
func (c *batchedTLS) Write(p []byte) (int, error) {
	c.sock.begin()
	n, err := c.Conn.Write(p)
	if ferr := c.sock.end(); ferr != nil && err == nil {
		// Records counted as written never left: the connection is broken
		// (crypto/tls would not write on it again either).
		return 0, ferr
	}
	return n, err
}

// ReadFrom implements io.ReaderFrom.
func (c *batchedTLS) ReadFrom(r io.Reader) (int64, error) {
	bp := tlsBatchBufs.Get().(*[]byte)
	defer tlsBatchBufs.Put(bp)
	buf := (*bp)[:tlsBatchSize]
	var total int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			m, werr := c.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// recordBatcher is the socket under the TLS connection. Between begin and
// end it gathers what it is given (TLS records) and writes them out when
// tlsBatchSize is reached and at end; otherwise (the handshake, alerts,
// close_notify) it writes at once. crypto/tls writes records one at a
// time and in order, under its own lock, so gathering keeps their order.
type recordBatcher struct {
	net.Conn
	mu    sync.Mutex
	depth int     // Writes under way
	buf   *[]byte // gathered records; from tlsBatchBufs while depth > 0
}

func (b *recordBatcher) begin() {
	b.mu.Lock()
	b.depth++
	b.mu.Unlock()
}

// end sends what was gathered.
func (b *recordBatcher) end() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.depth--
	err := b.flushLocked()
	if b.depth == 0 && b.buf != nil {
		*b.buf = (*b.buf)[:0]
		tlsBatchBufs.Put(b.buf)
		b.buf = nil
	}
	return err
}

func (b *recordBatcher) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.depth == 0 || len(p) >= tlsBatchSize {
		// Nothing to gather, or nothing gained by it.
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		return b.Conn.Write(p)
	}
	if b.buf == nil {
		b.buf = tlsBatchBufs.Get().(*[]byte)
	}
	if len(*b.buf)+len(p) > cap(*b.buf) {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	*b.buf = append(*b.buf, p...)
	return len(p), nil
}

func (b *recordBatcher) flushLocked() error {
	if b.buf == nil || len(*b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(*b.buf)
	*b.buf = (*b.buf)[:0]
	return err
}
