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

// StaleError is ErrStale with how far off the timestamp was: the usual
// cause is a clock out of step (the sender's or the verifier's), and saying
// by how much and which way tells the operator which one to fix.
type StaleError struct {
	Offset    time.Duration // the timestamp minus the verifier's clock: negative when the timestamp is behind
	Tolerance time.Duration
}

func (e *StaleError) Error() string {
	way, off := "ahead of", e.Offset
	if off < 0 {
		way, off = "behind", -off
	}
	return fmt.Sprintf("signature timestamp is %s %s the gateway's clock (clock skew?); tolerance %s", off, way, e.Tolerance)
}

// Is makes errors.Is(err, ErrStale) hold.
func (e *StaleError) Is(target error) bool { return target == ErrStale }

// Sign returns the header value for body signed with secret at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	sum := mac(secret, ts, body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(sum[:])
}

// keyed holds, per secret, HMACs already keyed with it (a *sync.Pool of
// *keyedMAC): a gateway verifies every request against the same few
// secrets, and keying an HMAC anew costs two SHA-256 blocks and four
// allocations each time.
var keyed sync.Map

// keyedMAC is an HMAC keyed with one secret and the scratch space it
// writes through (a slice passed to hash.Hash escapes: one allocation per
// call if it were the caller's).
type keyedMAC struct {
	h   hash.Hash
	buf []byte
}

// mac returns HMAC-SHA256(secret, "<ts>.<body>").
func mac(secret, ts string, body []byte) (sum [sha256.Size]byte) {
	p, ok := keyed.Load(secret)
	if !ok {
		p, _ = keyed.LoadOrStore(secret, &sync.Pool{New: func() any {
			return &keyedMAC{h: hmac.New(sha256.New, []byte(secret)), buf: make([]byte, 0, 64)}
		}})
	}
	pool := p.(*sync.Pool)
	m := pool.Get().(*keyedMAC)
	m.h.Reset()
	m.buf = append(append(m.buf[:0], ts...), '.')
	m.h.Write(m.buf)
	m.h.Write(body)
	m.buf = m.h.Sum(m.buf[:0])
	copy(sum[:], m.buf)
	pool.Put(m)
	return sum
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
	var two [2][sha256.Size]byte // a sender mid-rotation sends two
	sigs := two[:0]
	for rest, more := header, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformed
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sig, ok := decodeHex(v)
			if !ok {
				return ErrMalformed
			}
			sigs = append(sigs, sig)
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
		// In whole seconds, as the timestamp is: a sender 6 minutes off
		// reads "6m0s", whatever the fraction of a second now is at.
		return &StaleError{Offset: time.Duration(sec-now.Unix()) * time.Second, Tolerance: tolerance}
	}
	matched := false
	for _, secret := range secrets {
		want := mac(secret, ts, body)
		for i := range sigs {
			// No early exit: every secret is tried, so timing does not tell
			// which one matched.
			if hmac.Equal(want[:], sigs[i][:]) {
				matched = true
			}
		}
	}
	if !matched {
		return ErrMismatch
	}
	return nil
}

// decodeHex decodes a SHA-256 sum written in hex (either case), as
// hex.DecodeString does, without allocating.
func decodeHex(v string) (sum [sha256.Size]byte, ok bool) {
	if len(v) != 2*len(sum) {
		return sum, false
	}
	for i := range sum {
		hi, ok1 := unhex(v[2*i])
		lo, ok2 := unhex(v[2*i+1])
		if !ok1 || !ok2 {
			return sum, false
		}
		sum[i] = hi<<4 | lo
	}
	return sum, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
