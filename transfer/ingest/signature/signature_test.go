package signature_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/transfer/ingest/signature"
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

func TestVerifySaysHowFarOffAStaleTimestampIs(t *testing.T) {
	t.Parallel()
	// Half a second into a second: the offset is still whole seconds.
	now := time.Unix(1_800_000_000, 500_000_000)
	body := []byte(`{"events":[]}`)
	cases := []struct {
		name string
		at   time.Time
		want string
	}{
		{"TimestampBehind", now.Add(-6 * time.Minute), "signature timestamp is 6m0s behind the gateway's clock (clock skew?); tolerance 5m0s"},
		{"TimestampAhead", now.Add(6 * time.Minute), "signature timestamp is 6m0s ahead of the gateway's clock (clock skew?); tolerance 5m0s"},
		{"TimestampAnHourBehind", now.Add(-time.Hour - 2*time.Second), "signature timestamp is 1h0m2s behind the gateway's clock (clock skew?); tolerance 5m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := signature.Verify(signature.Sign("s1", tc.at, body), body, []string{"s1"}, now, 5*time.Minute)
			if !errors.Is(err, signature.ErrStale) || err.Error() != tc.want {
				t.Fatalf("Verify = %v, want ErrStale saying %q", err, tc.want)
			}
		})
	}
}

// The value is the one openssl gives: printf "1700000000.{}" | openssl dgst -sha256 -hmac secret
func ExampleSign() {
	fmt.Println(signature.Sign("secret", time.Unix(1700000000, 0), []byte("{}")))
	// Output: t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163
}

func TestTimestamp(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]int64{
		signature.Sign("s", time.Unix(1700000000, 0), []byte("b")): 1700000000,
		"v1=ab, t=42": 42,
		" t=7 ,v1=ab": 7,
		"v1=ab":       -1,
		"t=x,v1=ab":   -1,
		"":            -1,
		"tt=5,v1=ab":  -1,
	} {
		got, ok := signature.Timestamp(header)
		if ok != (want >= 0) || ok && got != want {
			t.Errorf("Timestamp(%q) = %d, %v; want %d", header, got, ok, want)
		}
	}
}

// The window is inclusive: a timestamp exactly the tolerance away, behind
// or ahead, is accepted, one second more is not. A tolerance of zero (or
// less) is the default; any other is used as given.
func TestVerifyToleranceWindow(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"events":[]}`)
	cases := []struct {
		name      string
		at        time.Time
		tolerance time.Duration
		want      error
	}{
		{"ExactlyTheToleranceBehindIsAccepted", now.Add(-time.Minute), time.Minute, nil},
		{"ExactlyTheToleranceAheadIsAccepted", now.Add(time.Minute), time.Minute, nil},
		{"OneSecondMoreBehindIsStale", now.Add(-time.Minute - time.Second), time.Minute, signature.ErrStale},
		{"OneSecondMoreAheadIsStale", now.Add(time.Minute + time.Second), time.Minute, signature.ErrStale},
		{"ZeroToleranceIsTheDefault", now.Add(-signature.DefaultTolerance), 0, nil},
		{"ZeroToleranceStillRefusesPastTheDefault", now.Add(-signature.DefaultTolerance - time.Second), 0, signature.ErrStale},
		{"NegativeToleranceIsTheDefault", now.Add(time.Minute), -time.Second, nil},
		{"ASmallToleranceIsUsedAsGiven", now.Add(-30 * time.Second), 10 * time.Second, signature.ErrStale},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := signature.Verify(signature.Sign("s1", tc.at, body), body, []string{"s1"}, now, tc.tolerance)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}
