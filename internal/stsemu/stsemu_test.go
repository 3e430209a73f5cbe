package stsemu_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/oss2s3/oss2s3/internal/stsemu"
)

const role = "arn:aws:iam::123456789012:role/oss2s3-writer"

func setup(t *testing.T, opts stsemu.Options) (*stsemu.Server, string) {
	t.Helper()
	srv := stsemu.New(opts)
	endpoint, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, endpoint
}

func client(endpoint, ak, sk string) *sts.Client {
	return sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, ""),
		Retryer:     retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 })})
}

func TestAssumeRole(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var hooked []stsemu.Credentials
	srv, endpoint := setup(t, stsemu.Options{Credentials: map[string]string{"AKIA": "base"},
		Roles: map[string]string{role: "ext-1"}, Duration: 15 * time.Minute, WebIdentityToken: "projected",
		Issued: func(c stsemu.Credentials) { mu.Lock(); hooked = append(hooked, c); mu.Unlock() }})
	ctx := context.Background()

	t.Run("StscredsGetsShortLivedKeys", func(t *testing.T) {
		p := stscreds.NewAssumeRoleProvider(client(endpoint, "AKIA", "base"), role, func(o *stscreds.AssumeRoleOptions) {
			o.ExternalID = aws.String("ext-1")
			o.RoleSessionName = "s1"
		})
		got, err := p.Retrieve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		issued := srv.Issued()
		mu.Lock()
		defer mu.Unlock()
		if len(issued) != 1 || len(hooked) != 1 {
			t.Fatalf("issued %d, hooked %d", len(issued), len(hooked))
		}
		c := issued[0]
		if got.AccessKeyID != c.AccessKeyID || got.SecretAccessKey != c.SecretAccessKey || got.SessionToken != c.SessionToken {
			t.Errorf("the client got %+v, the server issued %+v", got, c)
		}
		if !got.CanExpire || time.Until(got.Expires) > 15*time.Minute || time.Until(got.Expires) < 14*time.Minute {
			t.Errorf("expires %v, want in 15m", got.Expires)
		}
		if c.Caller != "AKIA" || c.SessionName != "s1" || c.RoleARN != role {
			t.Errorf("issued %+v", c)
		}
	})
	cases := []struct {
		name, ak, sk, role, external, code string
	}{
		{"AWrongExternalIDIsDenied", "AKIA", "base", role, "ext-2", "AccessDenied"},
		{"AnUnknownRoleIsDenied", "AKIA", "base", "arn:aws:iam::123456789012:role/other", "ext-1", "AccessDenied"},
		{"AnUnknownCallerIsRefused", "NOPE", "base", role, "ext-1", "InvalidClientTokenId"},
		{"AWrongSecretIsRefused", "AKIA", "wrong", role, "ext-1", "SignatureDoesNotMatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client(endpoint, tc.ak, tc.sk).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(tc.role),
				RoleSessionName: aws.String("s"), ExternalId: aws.String(tc.external)})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	t.Run("AssumeRoleWithWebIdentity", func(t *testing.T) {
		anon := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint)})
		in := &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(role), RoleSessionName: aws.String("pod"),
			WebIdentityToken: aws.String("projected")}
		out, err := anon.AssumeRoleWithWebIdentity(ctx, in)
		if err != nil || out.Credentials == nil || aws.ToString(out.Credentials.AccessKeyId) == "" {
			t.Fatalf("got %+v, %v", out, err)
		}
		in.WebIdentityToken = aws.String("forged")
		_, err = anon.AssumeRoleWithWebIdentity(ctx, in)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidIdentityToken" {
			t.Fatalf("a forged token: %v, want InvalidIdentityToken", err)
		}
	})
	t.Run("AFault", func(t *testing.T) {
		srv.InjectFault(stsemu.Fault{Status: 400, Code: "RegionDisabledException", Times: 1})
		_, err := client(endpoint, "AKIA", "base").AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role),
			RoleSessionName: aws.String("s"), ExternalId: aws.String("ext-1")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "RegionDisabledException" {
			t.Fatalf("got %v", err)
		}
	})
}
