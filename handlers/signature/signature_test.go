package signature_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/handlers/signature"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"events":[]}`)
	good := signature.Sign("s1", now, body)
	cases := []struct {
		name    string
		header  string
		body    []byte
		secrets []string
		want    error
	}{
		{"AcceptsSignatureFromTheOnlySecret", good, body, []string{"s1"}, nil},
		{"AcceptsAnyOfSeveralSecretsDuringRotation", good, body, []string{"s0", "s1"}, nil},
		{"AcceptsOneOfSeveralV1Values", "t=1800000000,v1=" + strings.Repeat("00", 32) + "," + strings.TrimPrefix(good, "t=1800000000,"), body, []string{"s1"}, nil},
		{"AcceptsTheGoodOneOfThreeV1Values", "t=1800000000,v1=" + strings.Repeat("00", 32) + ",v1=" + strings.Repeat("11", 32) + "," + strings.TrimPrefix(good, "t=1800000000,"), body, []string{"s1"}, nil},
		{"AcceptsUpperCaseHex", "t=1800000000,v1=" + strings.ToUpper(strings.TrimPrefix(good, "t=1800000000,v1=")), body, []string{"s1"}, nil},
		{"AcceptsSpacesAroundParts", "t=1800000000 , " + strings.TrimPrefix(good, "t=1800000000,"), body, []string{"s1"}, nil},
		{"RejectsAnEmptyPart", good + ",", body, []string{"s1"}, signature.ErrMalformed},
		{"RejectsAShortSignature", "t=1800000000,v1=" + strings.Repeat("ab", 31), body, []string{"s1"}, signature.ErrMalformed},
		{"RejectsMissingHeader", "", body, []string{"s1"}, signature.ErrMissing},
		{"RejectsWrongSecret", good, body, []string{"other"}, signature.ErrMismatch},
		{"RejectsChangedBody", good, []byte(`{"events":[1]}`), []string{"s1"}, signature.ErrMismatch},
		{"RejectsOldTimestamp", signature.Sign("s1", now.Add(-6*time.Minute), body), body, []string{"s1"}, signature.ErrStale},
		{"RejectsFutureTimestamp", signature.Sign("s1", now.Add(6*time.Minute), body), body, []string{"s1"}, signature.ErrStale},
		{"RejectsHeaderWithoutTimestamp", "v1=" + strings.Repeat("ab", 32), body, []string{"s1"}, signature.ErrMalformed},
		{"RejectsNonHexSignature", "t=1800000000,v1=zz", body, []string{"s1"}, signature.ErrMalformed},
		{"RejectsGarbage", "hello", body, []string{"s1"}, signature.ErrMalformed},
		{"RejectsWhenNoSecretConfigured", good, body, nil, signature.ErrNoSecrets},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := signature.Verify(tc.header, tc.body, tc.secrets, now, 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// The value is the one openssl gives: printf "1700000000.{}" | openssl dgst -sha256 -hmac secret
func ExampleSign() {
	fmt.Println(signature.Sign("secret", time.Unix(1700000000, 0), []byte("{}")))
	// Output: t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163
}
