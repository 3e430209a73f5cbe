package ossemu_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/oss2s3/oss2s3/internal/ossemu"
)

// BenchmarkGetObject measures what one GET stream of a stored and of a
// synthetic object delivers over loopback (no signatures checked, plain
// net/http client: the emulator's own cost plus the client's).
func BenchmarkGetObject(b *testing.B) {
	const size = 256 << 20
	srv := ossemu.New(ossemu.Options{})
	endpoint, err := srv.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	if _, err := srv.PutObject("bench", "stored", bytes.Repeat([]byte("x"), size), nil); err != nil {
		b.Fatal(err)
	}
	if _, err := srv.PutSynthetic("bench", "synthetic", size, 1, nil); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for _, key := range []string{"stored", "synthetic"} {
		b.Run(key, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				resp, err := http.Get(endpoint + "/bench/" + key)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if err != nil || n != size {
					b.Fatalf("read %d, %v", n, err)
				}
			}
		})
	}
}
