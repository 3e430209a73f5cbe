package handlers

import (
	"crypto/sha256"
	"crypto/subtle"
)

// tokenSet is a set of secret tokens (admin bearer tokens, MNS path
// tokens), kept as SHA-256 digests. A token presented is hashed and
// compared with every digest in constant time, so how long a check takes
// says nothing about the tokens: comparing the tokens themselves returns
// at once on a length mismatch (crypto/subtle does), which tells a caller
// the length of a token by timing. The EventBridge check does the same
// (cloudevents.Auth.Check).
type tokenSet [][sha256.Size]byte

func newTokenSet(tokens []string) tokenSet {
	s := make(tokenSet, len(tokens))
	for i, t := range tokens {
		s[i] = sha256.Sum256([]byte(t))
	}
	return s
}

// match reports whether got is one of the tokens. Every digest is
// compared, whichever matches.
func (s tokenSet) match(got string) bool {
	d := sha256.Sum256([]byte(got))
	m := 0
	for i := range s {
		m |= subtle.ConstantTimeCompare(d[:], s[i][:])
	}
	return m == 1
}

// index is the position of got among the tokens, or -1. Every digest is
// compared, whichever matches.
func (s tokenSet) index(got string) int {
	d := sha256.Sum256([]byte(got))
	found := -1
	for i := range s {
		if subtle.ConstantTimeCompare(d[:], s[i][:]) == 1 {
			found = i
		}
	}
	return found
}
