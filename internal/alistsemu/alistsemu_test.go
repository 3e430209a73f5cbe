package alistsemu_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/oss2s3/oss2s3/internal/alistsemu"
)

var cert *tls.Certificate

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "alistsemu-ca")
	if err == nil {
		cert, err = alistsemu.TrustedCertificate(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const role = "acs:ram::1234567890123456:role/reader"

func setup(t *testing.T) (*alistsemu.Server, string) {
	t.Helper()
	srv := alistsemu.New(alistsemu.Options{Credentials: map[string]string{"LTAI": "secret"}, Roles: map[string]string{role: ""}, Certificate: cert})
	host, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, host
}

func TestCredentialsGoAssumesARole(t *testing.T) {
	t.Parallel()
	srv, host := setup(t)
	cfg := new(credentials.Config).SetType("ram_role_arn").SetAccessKeyId("LTAI").SetAccessKeySecret("secret").
		SetRoleArn(role).SetRoleSessionName("s").SetSTSEndpoint(host).SetRoleSessionExpiration(900)
	cred, err := credentials.NewCredential(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cred.GetCredential()
	if err != nil {
		t.Fatal(err)
	}
	issued := srv.Issued()
	if len(issued) != 1 || *m.AccessKeyId != issued[0].AccessKeyID || *m.SecurityToken != issued[0].SecurityToken {
		t.Fatalf("got %s, issued %+v", *m.AccessKeyId, issued)
	}
	if d := time.Until(issued[0].Expiration); d > 15*time.Minute || d < 14*time.Minute {
		t.Errorf("expires in %s, want the 15 minutes asked", d)
	}
}

// call sends AssumeRole signed with secret, its parameters changed by edit.
func call(t *testing.T, host, secret string, edit func(url.Values)) string {
	t.Helper()
	q := url.Values{"Action": {"AssumeRole"}, "Version": {"2015-04-01"}, "Format": {"JSON"}, "AccessKeyId": {"LTAI"},
		"SignatureMethod": {"HMAC-SHA1"}, "SignatureVersion": {"1.0"}, "SignatureNonce": {"n-1"},
		"Timestamp": {time.Now().UTC().Format("2006-01-02T15:04:05Z")}, "RoleArn": {role}, "RoleSessionName": {"s"}}
	if edit != nil {
		edit(q)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	enc := func(v string) string {
		return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(url.QueryEscape(v))
	}
	var pairs []string
	for _, k := range keys {
		pairs = append(pairs, enc(k)+"="+enc(q.Get(k)))
	}
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte("POST&%2F&" + enc(strings.Join(pairs, "&"))))
	q.Set("Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	client := &http.Client{}
	res, err := client.Post("https://"+host+"/?"+q.Encode(), "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ Code string }
	_ = json.NewDecoder(res.Body).Decode(&out)
	if res.StatusCode == http.StatusOK {
		return "OK"
	}
	return out.Code
}

func TestSignatureTimestampAndNonce(t *testing.T) {
	t.Parallel()
	_, host := setup(t)
	if got := call(t, host, "secret", nil); got != "OK" {
		t.Fatalf("a good request: %s", got)
	}
	cases := []struct {
		name, secret, want string
		edit               func(url.Values)
	}{
		{"TheSameNonceAgainIsRefused", "secret", "SignatureNonceUsed", nil},
		{"AWrongSecretIsRefused", "wrong", "SignatureDoesNotMatch", func(q url.Values) { q.Set("SignatureNonce", "n-2") }},
		{"AnUnknownKeyIsRefused", "secret", "InvalidAccessKeyId.NotFound", func(q url.Values) { q.Set("AccessKeyId", "LTAX") }},
		{"AnOldTimestampIsRefused", "secret", "InvalidTimeStamp.Expired", func(q url.Values) {
			q.Set("SignatureNonce", "n-3")
			q.Set("Timestamp", time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05Z"))
		}},
		{"AnUnknownRoleIsNoPermission", "secret", "NoPermission", func(q url.Values) {
			q.Set("SignatureNonce", "n-4")
			q.Set("RoleArn", "acs:ram::1234567890123456:role/other")
		}},
		{"ATooShortDurationIsRefused", "secret", "InvalidParameter.DurationSeconds", func(q url.Values) {
			q.Set("SignatureNonce", "n-5")
			q.Set("DurationSeconds", "60")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := call(t, host, tc.secret, tc.edit); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}
