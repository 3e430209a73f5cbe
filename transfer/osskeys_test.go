package transfer_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/smemu"
	"github.com/oss2s3/oss2s3/transfer"
)

func TestParseOSSSecret(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, secret string
		want         transfer.OSSKeys
		bad          bool
	}{
		{name: "DTHShapeAsIs", secret: `{"access_key_id":"LTAI1","secret_access_key":"s3cr3t"}`,
			want: transfer.OSSKeys{AccessKeyID: "LTAI1", AccessKeySecret: "s3cr3t"}},
		{name: "Oss2s3NamesWithAToken", secret: `{"access_key_id":"STS.1","access_key_secret":"s3cr3t","security_token":"tok"}`,
			want: transfer.OSSKeys{AccessKeyID: "STS.1", AccessKeySecret: "s3cr3t", SecurityToken: "tok"}},
		{name: "NoSecretKey", secret: `{"access_key_id":"LTAI1","password":"s3cr3t"}`, bad: true},
		{name: "NoKeyID", secret: `{"secret_access_key":"s3cr3t"}`, bad: true},
		{name: "NotJSON", secret: `access_key_id=LTAI1 secret=s3cr3t`, bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := transfer.ParseOSSSecret(tc.secret)
			if tc.bad {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Fatalf("the error quotes the secret: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// keysBed is a Secrets Manager holding OSS keys and an OSS emulator that
// accepts them.
type keysBed struct {
	sm       *smemu.Server
	smURL    string
	oss      *ossemu.Server
	ossURL   string
	smClient *secretsmanager.Client
}

func newKeysBed(t *testing.T) *keysBed {
	t.Helper()
	b := &keysBed{sm: smemu.New(smemu.Options{Credentials: map[string]string{"AKSM": "sm-secret"}, Region: "us-west-2"}),
		oss: ossemu.New(ossemu.Options{Credentials: map[string]string{"LTAI-old": "old-secret"}})}
	var err error
	if b.smURL, err = b.sm.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.sm.Close() })
	if b.ossURL, err = b.oss.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.oss.Close() })
	b.oss.CreateBucket("src")
	b.sm.Rotate("dth-oss-credentials", `{"access_key_id":"LTAI-old","secret_access_key":"old-secret"}`)
	b.smClient = secretsmanager.New(secretsmanager.Options{Region: "us-west-2", BaseEndpoint: aws.String(b.smURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKSM", "sm-secret", "")})
	return b
}

// rotate does what a rotation does: a new key, the secret changed to it,
// the old key disabled.
func (b *keysBed) rotate() {
	b.oss.SetKey("LTAI-new", "new-secret")
	b.sm.Rotate("dth-oss-credentials", `{"access_key_id":"LTAI-new","secret_access_key":"new-secret"}`)
	b.oss.RevokeKey("LTAI-old")
}

func (b *keysBed) source(t *testing.T, keys transfer.KeySource) *transfer.OSSSource {
	t.Helper()
	src, err := transfer.NewOSSSourceKeys(transfer.SourceConfig{Endpoint: b.ossURL, Bucket: "src"}, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func copyOne(ctx context.Context, t *testing.T, src *transfer.OSSSource, key string) error {
	t.Helper()
	info, err := src.Head(ctx, key)
	if err != nil {
		return err
	}
	_, err = transfer.NewCopier(8*transfer.MiB, nil, "w").Copy(ctx, transfer.Object{Task: "t", Src: src, Dst: &hashingDest{},
		Info: info, DstKey: key, Write: &transfer.WriteInfo{Source: info}}, transfer.CopyConfig{PartsInFlight: 2})
	return err
}

func TestSecretRotatedBetweenTwoCopies(t *testing.T) {
	t.Parallel()
	b := newKeysBed(t)
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		if _, err := b.oss.PutObject("src", k, []byte("object "+k), http.Header{}); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := transfer.NewSecretKeys(ctx, b.smClient, "dth-oss-credentials", transfer.SecretKeysOptions{Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	src := b.source(t, keys)
	if err := copyOne(ctx, t, src, "a"); err != nil {
		t.Fatalf("copy before the rotation: %v", err)
	}
	b.rotate()
	if err := copyOne(ctx, t, src, "b"); err != nil {
		t.Fatalf("copy after the rotation: %v", err)
	}
	if got, _, _ := keys.Keys(); got.AccessKeyID != "LTAI-new" {
		t.Errorf("signing with %s after the rotation", got.AccessKeyID)
	}
	if n := b.sm.Requests()["GetSecretValue"]; n != 2 {
		t.Errorf("the secret was read %d times, want 2 (at start, after OSS refused the old key)", n)
	}
}

func TestSecretRefusedKeysReadOnceForManyRequests(t *testing.T) {
	t.Parallel()
	b := newKeysBed(t)
	ctx := context.Background()
	if _, err := b.oss.PutObject("src", "a", []byte("a"), http.Header{}); err != nil {
		t.Fatal(err)
	}
	keys, err := transfer.NewSecretKeys(ctx, b.smClient, "dth-oss-credentials", transfer.SecretKeysOptions{Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	src := b.source(t, keys)
	b.rotate()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := src.Head(ctx, "a")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := b.sm.Requests()["GetSecretValue"]; n != 2 {
		t.Errorf("the secret was read %d times for 8 refused requests, want 2 (at start, once after)", n)
	}
}

func TestSecretStaysRefusedWhenItDidNotChange(t *testing.T) {
	t.Parallel()
	b := newKeysBed(t)
	ctx := context.Background()
	if _, err := b.oss.PutObject("src", "a", []byte("a"), http.Header{}); err != nil {
		t.Fatal(err)
	}
	keys, err := transfer.NewSecretKeys(ctx, b.smClient, "dth-oss-credentials", transfer.SecretKeysOptions{Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	src := b.source(t, keys)
	b.oss.RevokeKey("LTAI-old") // disabled, and the secret not updated
	for range 5 {
		_, err = src.Head(ctx, "a")
		if err == nil || !strings.Contains(err.Error(), "InvalidAccessKeyId") {
			t.Fatalf("got %v, want InvalidAccessKeyId", err)
		}
	}
	if n := b.oss.Requests()["HeadObject"] + b.oss.Requests()["GetObjectMeta"]; n > 10 {
		t.Errorf("%d requests for 5 refused HEADs, want at most 10 (each request and one retry)", n)
	}
	if n := b.sm.Requests()["GetSecretValue"]; n != 2 {
		t.Errorf("the secret was read %d times for 5 refusals within seconds, want 2 (at start, once after)", n)
	}
}

func TestSecretFollowedOnItsPeriod(t *testing.T) {
	t.Parallel()
	b := newKeysBed(t)
	var mu sync.Mutex
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var logs bytes.Buffer // written by the test's own goroutine only
	keys, err := transfer.NewSecretKeys(context.Background(), b.smClient, "dth-oss-credentials",
		transfer.SecretKeysOptions{Period: 5 * time.Minute, Now: clock, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	b.sm.Rotate("dth-oss-credentials", `{"access_key_id":"LTAI-new","secret_access_key":"new-secret"}`)
	mu.Lock()
	now = now.Add(4 * time.Minute)
	mu.Unlock()
	if got, _, _ := keys.Keys(); got.AccessKeyID != "LTAI-old" {
		t.Fatalf("read again before the period: %s", got.AccessKeyID)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if got, _, _ := keys.Keys(); got.AccessKeyID != "LTAI-new" {
		t.Fatalf("the rotated secret was not read after the period: signing with %s", got.AccessKeyID)
	}
	if n := b.sm.Requests()["GetSecretValue"]; n != 2 {
		t.Errorf("the secret was read %d times, want 2", n)
	}
	t.Run("AFailedReadKeepsTheKeys", func(t *testing.T) {
		b.sm.InjectFault(smemu.Fault{Status: 500})
		mu.Lock()
		now = now.Add(10 * time.Minute)
		mu.Unlock()
		if got, _, err := keys.Keys(); err != nil || got.AccessKeyID != "LTAI-new" {
			t.Fatalf("got %s, %v; want the keys read last", got.AccessKeyID, err)
		}
	})
	t.Run("TheLogSaysWhatHappenedAndNoKey", func(t *testing.T) {
		out := logs.String()
		for _, want := range []string{"the secret holds new keys", "reading the secret again failed", "secret=dth-oss-credentials"} {
			if !strings.Contains(out, want) {
				t.Errorf("the log does not say %q:\n%s", want, out)
			}
		}
		for _, secret := range []string{"old-secret", "new-secret", "LTAI-"} {
			if strings.Contains(out, secret) {
				t.Errorf("the log shows %q:\n%s", secret, out)
			}
		}
	})
}

func TestSecretMissingFailsAtStart(t *testing.T) {
	t.Parallel()
	b := newKeysBed(t)
	_, err := transfer.OpenOSSSource(context.Background(), transfer.SourceConfig{Endpoint: b.ossURL, Bucket: "src",
		Credentials: transfer.SourceCredentials{SecretsManager: &transfer.SecretsManagerRef{
			Name: "dth-oss-credentialz", Region: "us-west-2", Endpoint: b.smURL, AccessKeyID: "AKSM", SecretAccessKey: "sm-secret"}}}, nil, nil)
	if err == nil {
		t.Fatal("a missing secret did not fail")
	}
	for _, want := range []string{"credentials.secrets_manager.name", `"dth-oss-credentialz"`, "no such secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestSecretOpensTheSource(t *testing.T) {
	t.Parallel()
	b := newKeysBed(t)
	if _, err := b.oss.PutObject("src", "a", []byte("a"), http.Header{}); err != nil {
		t.Fatal(err)
	}
	src, err := transfer.OpenOSSSource(context.Background(), transfer.SourceConfig{Endpoint: b.ossURL, Bucket: "src",
		Credentials: transfer.SourceCredentials{SecretsManager: &transfer.SecretsManagerRef{
			Name: "dth-oss-credentials", Region: "us-west-2", Endpoint: b.smURL, AccessKeyID: "AKSM", SecretAccessKey: "sm-secret"}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Head(context.Background(), "a"); err != nil {
		t.Fatalf("head with the secret's keys: %v", err)
	}
}

// TestRotatedKeysSignV4: the keys a KeySource hands out sign OSS V4
// requests too, and a rotation is followed there as well.
func TestRotatedKeysSignV4(t *testing.T) {
	t.Parallel()
	b := newKeysBed(t)
	ctx := context.Background()
	if _, err := b.oss.PutObject("src", "a", []byte("a"), http.Header{}); err != nil {
		t.Fatal(err)
	}
	keys, err := transfer.NewSecretKeys(ctx, b.smClient, "dth-oss-credentials", transfer.SecretKeysOptions{Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	src, err := transfer.NewOSSSourceKeys(transfer.SourceConfig{Endpoint: b.ossURL, Bucket: "src", SignatureVersion: "v4", Region: "cn-hangzhou"}, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Head(ctx, "a"); err != nil {
		t.Fatalf("V4 with the secret's keys: %v", err)
	}
	b.rotate()
	if _, err := src.Head(ctx, "a"); err != nil {
		t.Fatalf("V4 after the rotation: %v", err)
	}
}
