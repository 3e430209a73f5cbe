package mns

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"math/big"
)

// sha1DigestInfo is the DER prefix of a SHA-1 DigestInfo (RFC 8017 §9.2,
// note 1).
var sha1DigestInfo = []byte{0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14}

var errVerification = errors.New("rsa: verification error")

// verifyPKCS1v15SHA1 checks an RSASSA-PKCS1-v1_5 signature with SHA-1 over
// msg (sha1WithRSAEncryption, RFC 3447, which MNS uses).
//
// Keys of 1024 bits and more go to crypto/rsa. Smaller keys, which
// crypto/rsa refuses since Go 1.24 and which MNS signs with (512 bits), are
// checked here by the encode-and-compare method of RFC 8017 §8.2.2: build
// the one valid encoded message and compare it with s^e mod n. Nothing is
// parsed out of the decrypted block, so the padding-parsing forgeries of
// lax verifiers do not apply; and a public-key operation has no secret to
// leak through timing.
func verifyPKCS1v15SHA1(pub *rsa.PublicKey, msg, sig []byte) error {
	hashed := sha1.Sum(msg)
	if pub.N.BitLen() >= 1024 {
		return rsa.VerifyPKCS1v15(pub, crypto.SHA1, hashed[:], sig)
	}
	return encodeAndCompare(pub, hashed[:], sig)
}

// encodeAndCompare is RSASSA-PKCS1-v1_5 verification with SHA-1 for a key of
// any size.
func encodeAndCompare(pub *rsa.PublicKey, hashed, sig []byte) error {
	k := (pub.N.BitLen() + 7) / 8
	tLen := len(sha1DigestInfo) + len(hashed)
	if pub.E < 3 || pub.E%2 == 0 || k < tLen+11 || len(sig) != k {
		return errVerification
	}
	s := new(big.Int).SetBytes(sig)
	if s.Cmp(pub.N) >= 0 {
		return errVerification
	}
	m := new(big.Int).Exp(s, big.NewInt(int64(pub.E)), pub.N)
	em := m.FillBytes(make([]byte, k))

	want := make([]byte, k) // 0x00 0x01 PS(0xff...) 0x00 DigestInfo hash
	want[1] = 0x01
	ps := k - tLen - 3
	for i := 2; i < 2+ps; i++ {
		want[i] = 0xff
	}
	copy(want[3+ps:], sha1DigestInfo)
	copy(want[3+ps+len(sha1DigestInfo):], hashed)
	if subtle.ConstantTimeCompare(em, want) != 1 {
		return errVerification
	}
	return nil
}
