package mns

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"testing"
)

// A real MNS push, as published in a public test of an MNS endpoint
// verifier (Rust, openssl): the certificate served at
// https://mnstest.oss-cn-hangzhou.aliyuncs.com/x509_public_certificate.pem,
// the string MNS signed for a SIMPLIFIED push on 2023-03-29, and its
// Authorization header. It pins three facts the documentation does not
// state: the key is 512-bit RSA, the self-signed certificate expired on
// 2016-07-01 yet still signs, and Content-MD5 is upper-case hex.
const (
	realCertPEM = `-----BEGIN CERTIFICATE-----
MIICiDCCAjKgAwIBAgIJAL+acWZrTrlfMA0GCSqGSIb3DQEBBQUAMGMxCzAJBgNV
BAYTAjg2MREwDwYDVQQIEwhaaGVqaWFuZzERMA8GA1UEBxMISGFuZ3pob3UxDzAN
BgNVBAoTBkFsaXl1bjEMMAoGA1UECxMDTW5zMQ8wDQYDVQQDEwZub3RpZnkwHhcN
MTUwNzAyMDIwNjE2WhcNMTYwNzAxMDIwNjE2WjBjMQswCQYDVQQGEwI4NjERMA8G
A1UECBMIWmhlamlhbmcxETAPBgNVBAcTCEhhbmd6aG91MQ8wDQYDVQQKEwZBbGl5
dW4xDDAKBgNVBAsTA01uczEPMA0GA1UEAxMGbm90aWZ5MFwwDQYJKoZIhvcNAQEB
BQADSwAwSAJBALX0sFVowct1NAQjDyYSUf0rp1rOHLkz4kp0zNWcDyXMXa5PzsPU
UwJXaLwhvNCDLLWuiLK6Oh5elmOmL8Gy/5MCAwEAAaOByDCBxTAdBgNVHQ4EFgQU
kEah2o9HpCUCxhN/fY3kUtPkP4owgZUGA1UdIwSBjTCBioAUkEah2o9HpCUCxhN/
fY3kUtPkP4qhZ6RlMGMxCzAJBgNVBAYTAjg2MREwDwYDVQQIEwhaaGVqaWFuZzER
MA8GA1UEBxMISGFuZ3pob3UxDzANBgNVBAoTBkFsaXl1bjEMMAoGA1UECxMDTW5z
MQ8wDQYDVQQDEwZub3RpZnmCCQC/mnFma065XzAMBgNVHRMEBTADAQH/MA0GCSqG
SIb3DQEBBQUAA0EAluPg+k0Fc7WRcpP78+eLptYD8an7YOapUdNUmT2/SQC5BZ+t
cyWFit5pAEipngFL105d7AuW2AtwqG0FgV0ipw==
-----END CERTIFICATE-----`

	realStringToSign = "POST\n" +
		"4CCBAD7AF2D23C2D00DDECCA59323A8C\n" +
		"text/plain;charset=utf-8\n" +
		"Wed, 29 Mar 2023 08:41:27 GMT\n" +
		"x-mns-message-id:250EB49D5F8D737A391C93C6ED165396\n" +
		"x-mns-publish-time:1680079287576\n" +
		"x-mns-request-id:6423F9B7BF94313030AF5EA0\n" +
		"x-mns-signing-cert-url:aHR0cHM6Ly9tbnN0ZXN0Lm9zcy1jbi1oYW5nemhvdS5hbGl5dW5jcy5jb20veDUwOV9wdWJsaWNfY2VydGlmaWNhdGUucGVt\n" +
		"x-mns-subscriber:1321669497458181\n" +
		"x-mns-subscription-name:mns-en-subs-oss-fecdn-internal-pre-1-22849529855680\n" +
		"x-mns-topic-name:mns-en-topics-oss-fecdn-internal-pre-22849529792243\n" +
		"x-mns-topic-owner:1321669497458181\n" +
		"x-mns-version:2015-06-06\n" +
		"/notifications"

	realSignature = "LP3cxoTCbhsiLJi0KQdEiRaufaxMfWUdLH064yoVoKl8xNcY+299itGmGsirVMY8vDpuZ1VwS0Uw7R5dNduSXg=="
)

// realHeaders are the push's headers, rebuilt from the string it signed,
// in the spelling a Go server hands over (canonical keys) plus the headers
// MNS sends that are not signed.
func realHeaders() http.Header {
	h := http.Header{}
	h.Set("Content-MD5", "4CCBAD7AF2D23C2D00DDECCA59323A8C")
	h.Set("Content-Type", "text/plain;charset=utf-8")
	h.Set("Date", "Wed, 29 Mar 2023 08:41:27 GMT")
	h.Set("x-mns-message-id", "250EB49D5F8D737A391C93C6ED165396")
	h.Set("x-mns-publish-time", "1680079287576")
	h.Set("x-mns-request-id", "6423F9B7BF94313030AF5EA0")
	h.Set("x-mns-signing-cert-url", "aHR0cHM6Ly9tbnN0ZXN0Lm9zcy1jbi1oYW5nemhvdS5hbGl5dW5jcy5jb20veDUwOV9wdWJsaWNfY2VydGlmaWNhdGUucGVt")
	h.Set("x-mns-subscriber", "1321669497458181")
	h.Set("x-mns-subscription-name", "mns-en-subs-oss-fecdn-internal-pre-1-22849529855680")
	h.Set("x-mns-topic-name", "mns-en-topics-oss-fecdn-internal-pre-22849529792243")
	h.Set("x-mns-topic-owner", "1321669497458181")
	h.Set("x-mns-version", "2015-06-06")
	h.Set("User-Agent", "Aliyun Notification Service Agent")
	h.Set("Content-Length", "40")
	h.Set("Authorization", realSignature)
	return h
}

func realKey(t *testing.T) *rsa.PublicKey {
	t.Helper()
	cert, err := (&Verifier{}).parseCert([]byte(realCertPEM))
	if err != nil {
		t.Fatal(err)
	}
	return cert.PublicKey.(*rsa.PublicKey)
}

func TestRealPushStringToSign(t *testing.T) {
	t.Parallel()
	if got := StringToSign("POST", "/notifications", realHeaders()); got != realStringToSign {
		t.Fatalf("StringToSign:\n%s\nwant:\n%s", got, realStringToSign)
	}
}

func TestRealPushSignatureVerifies(t *testing.T) {
	t.Parallel()
	pub := realKey(t)
	if pub.N.BitLen() != 512 {
		t.Fatalf("MNS key is %d bits; the comments and DefaultMinRSABits assume 512", pub.N.BitLen())
	}
	sig, _ := base64.StdEncoding.DecodeString(realSignature)
	if err := verifyPKCS1v15SHA1(pub, []byte(realStringToSign), sig); err != nil {
		t.Fatalf("real MNS signature rejected: %v", err)
	}
	if err := verifyPKCS1v15SHA1(pub, []byte(realStringToSign+"x"), sig); err == nil {
		t.Fatal("accepted a signature over another string")
	}
	for i := range sig {
		bad := append([]byte(nil), sig...)
		bad[i] ^= 0x01
		if verifyPKCS1v15SHA1(pub, []byte(realStringToSign), bad) == nil {
			t.Fatalf("accepted a signature with byte %d flipped", i)
		}
	}
	if verifyPKCS1v15SHA1(pub, []byte(realStringToSign), sig[1:]) == nil {
		t.Fatal("accepted a short signature")
	}
	if verifyPKCS1v15SHA1(pub, []byte(realStringToSign), append([]byte{0}, sig...)) == nil {
		t.Fatal("accepted a long signature")
	}
}

func TestMinRSABitsRefusesTheRealKey(t *testing.T) {
	t.Parallel()
	_, err := (&Verifier{MinRSABits: 1024}).parseCert([]byte(realCertPEM))
	if !errors.Is(err, ErrBadCert) || err.Error() != "unusable MNS signing certificate: 512-bit RSA key, want at least 1024" {
		t.Fatalf("parseCert = %v", err)
	}
}

// TestEncodeAndCompareAgreesWithCryptoRSA runs the small-key path on a
// 2048-bit key, where crypto/rsa is the reference.
func TestEncodeAndCompareAgreesWithCryptoRSA(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"", "POST\n\n\n", realStringToSign} {
		h := sha1.Sum([]byte(msg))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, h[:])
		if err != nil {
			t.Fatal(err)
		}
		if err := encodeAndCompare(&key.PublicKey, h[:], sig); err != nil {
			t.Fatalf("rejected a crypto/rsa signature: %v", err)
		}
		other := sha1.Sum([]byte(msg + "!"))
		if encodeAndCompare(&key.PublicKey, other[:], sig) == nil {
			t.Fatal("accepted a signature over another digest")
		}
		sig[len(sig)-1] ^= 1
		if encodeAndCompare(&key.PublicKey, h[:], sig) == nil {
			t.Fatal("accepted a corrupted signature")
		}
		if rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA1, h[:], sig) == nil {
			t.Fatal("crypto/rsa accepted a corrupted signature (test is wrong)")
		}
	}
}
