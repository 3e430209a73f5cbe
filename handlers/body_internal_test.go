package handlers

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll must read the whole body whatever Content-Length says (net/http
// enforces it, but a handler may be called with any request), no more than
// its limit, in one allocation when Content-Length is right.
func TestReadAllAnyContentLength(t *testing.T) {
	body := strings.Repeat("0123456789", 300)
	for _, cl := range []int64{-1, 0, 1, 511, 512, 2999, 3000, 3001, 1 << 30} {
		for name, r := range map[string]io.Reader{
			"whole":    strings.NewReader(body),
			"one-byte": iotest.OneByteReader(strings.NewReader(body)),
			"halves":   iotest.HalfReader(strings.NewReader(body)),
		} {
			got, err := readAll(r, cl, 1<<20)
			if err != nil || !bytes.Equal(got, []byte(body)) {
				t.Errorf("content length %d, %s reader: %d bytes, %v", cl, name, len(got), err)
			}
			// The limit stops the reading, whatever Content-Length says.
			for _, limit := range []int64{1, 511, 513, 2999} {
				rr := iotest.HalfReader(strings.NewReader(body))
				if got, err := readAll(rr, cl, limit); err != nil || !bytes.Equal(got, []byte(body[:limit])) {
					t.Errorf("content length %d, limit %d: %d bytes, %v", cl, limit, len(got), err)
				}
			}
		}
	}
	if _, err := readAll(iotest.ErrReader(io.ErrUnexpectedEOF), 10, 1<<20); err != io.ErrUnexpectedEOF {
		t.Errorf("error: %v", err)
	}
	r := strings.NewReader(body)
	if n := testing.AllocsPerRun(100, func() { r.Reset(body); _, _ = readAll(r, int64(len(body)), 1<<20) }); n > 1 {
		t.Errorf("%v allocations with the right Content-Length, want 1", n)
	}
}

func TestAcceptedBodyIsTheJSONEncoding(t *testing.T) {
	for _, r := range []EventsAccepted{{}, {Queued: 1}, {Queued: 12, Duplicate: 3, Ignored: 45, Unrouted: 6789}, {Queued: -1}} {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(r); err != nil {
			t.Fatal(err)
		}
		if got := appendAccepted(nil, r); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%+v: %q, want %q", r, got, want.Bytes())
		}
	}
}
