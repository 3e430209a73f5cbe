package signature

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// decodeHex accepts exactly what hex.DecodeString does for a SHA-256 sum.
func FuzzDecodeHexMatchesTheLibrary(f *testing.F) {
	sum := sha256.Sum256([]byte("x"))
	lower := hex.EncodeToString(sum[:])
	for _, s := range []string{lower, strings.ToUpper(lower), lower[:62] + "g0", lower[:63], lower + "00", "", lower[:62] + "Ff", lower[:62] + " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := decodeHex(s)
		want, err := hex.DecodeString(s)
		wantOK := err == nil && len(want) == sha256.Size
		if ok != wantOK || ok && !bytes.Equal(got[:], want) {
			t.Fatalf("decodeHex(%q) = %x, %v; hex.DecodeString: %x, %v", s, got, ok, want, err)
		}
	})
}
