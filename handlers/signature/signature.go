// Package signature signs and verifies oss2s3 webhook requests: the header
// X-Oss2s3-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>.
//
// It depends on the standard library only, so the Function Compute function
// and the OSS emulator can sign exactly as the gateway verifies.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header is the HTTP header that carries the signature.
const Header = "X-Oss2s3-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the
// verifier's clock, in either direction.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify. Each says what was wrong so that a 401 can give
// the sender a reason without revealing a secret.
var (
	ErrMissing   = errors.New("missing " + Header + " header")
	ErrMalformed = errors.New("malformed " + Header + " header: want t=<unix seconds>,v1=<hex hmac-sha256>")
	ErrStale     = errors.New("signature timestamp outside the tolerance window")
	ErrMismatch  = errors.New("signature does not match any configured secret")
	ErrNoSecrets = errors.New("no webhook secret configured")
)

// Sign returns the header value for body signed with secret at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	var sum [sha256.Size]byte
	return macInto(sum[:0], secret, ts, body)
}

// keyed holds, per secret, HMACs already keyed with it (a *sync.Pool of
// hash.Hash): a gateway verifies every request against the same few
// secrets, and keying an HMAC anew costs two SHA-256 blocks and four
// allocations each time.
var keyed sync.Map

// macInto appends HMAC-SHA256(secret, "<ts>.<body>") to dst.
func macInto(dst []byte, secret, ts string, body []byte) []byte {
	p, ok := keyed.Load(secret)
	if !ok {
		p, _ = keyed.LoadOrStore(secret, &sync.Pool{New: func() any { return hmac.New(sha256.New, []byte(secret)) }})
	}
	pool := p.(*sync.Pool)
	m := pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	dst = m.Sum(dst)
	pool.Put(m)
	return dst
}

// Verify checks header against body. It accepts the signature if any of
// secrets produced it (several secrets let an operator rotate them) and its
// timestamp is within tolerance of now. A header may carry several v1 values
// (a sender mid-rotation); any one matching is enough. All comparisons are
// constant-time.
func Verify(header string, body []byte, secrets []string, now time.Time, tolerance time.Duration) error {
	if len(secrets) == 0 {
		return ErrNoSecrets
	}
	if strings.TrimSpace(header) == "" {
		return ErrMissing
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformed
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return ErrMalformed
			}
			sigs = append(sigs, b)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ErrMalformed
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrMalformed
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w (timestamp %d, now %d)", ErrStale, sec, now.Unix())
	}
	matched := false
	var buf [sha256.Size]byte
	for _, secret := range secrets {
		want := macInto(buf[:0], secret, ts, body)
		for _, s := range sigs {
			// No early exit: every secret is tried, so timing does not tell
			// which one matched.
			if hmac.Equal(want, s) {
				matched = true
			}
		}
	}
	if !matched {
		return ErrMismatch
	}
	return nil
}
