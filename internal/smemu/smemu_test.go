package smemu_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/oss2s3/oss2s3/internal/smemu"
)

func setup(t *testing.T) (*smemu.Server, string) {
	t.Helper()
	srv := smemu.New(smemu.Options{Credentials: map[string]string{"AKSM": "sm-secret"}, Region: "us-west-2"})
	endpoint, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, endpoint
}

func client(endpoint, ak, sk, region string) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region: region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, ""),
		Retryer:     retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 }),
	})
}

func get(ctx context.Context, c *secretsmanager.Client, in *secretsmanager.GetSecretValueInput) (string, error) {
	out, err := c.GetSecretValue(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func TestGetSecretValue(t *testing.T) {
	t.Parallel()
	srv, endpoint := setup(t)
	ctx := context.Background()
	c := client(endpoint, "AKSM", "sm-secret", "us-west-2")

	first := srv.Rotate("dth-oss-credentials", `{"access_key_id":"a1"}`)
	t.Run("CurrentByNameAndByARN", func(t *testing.T) {
		for _, id := range []string{"dth-oss-credentials", srv.ARN("dth-oss-credentials")} {
			out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if got := aws.ToString(out.SecretString); got != `{"access_key_id":"a1"}` {
				t.Errorf("%s: SecretString %q", id, got)
			}
			if aws.ToString(out.VersionId) != first || len(out.VersionStages) != 1 || out.VersionStages[0] != smemu.StageCurrent {
				t.Errorf("%s: version %s %v, want %s [AWSCURRENT]", id, aws.ToString(out.VersionId), out.VersionStages, first)
			}
			if out.CreatedDate == nil || out.CreatedDate.IsZero() {
				t.Errorf("%s: no CreatedDate", id)
			}
		}
	})

	second := srv.Rotate("dth-oss-credentials", `{"access_key_id":"a2"}`)
	third := srv.Rotate("dth-oss-credentials", `{"access_key_id":"a3"}`)
	cases := []struct {
		name      string
		versionID string
		stage     string
		want      string
		notFound  bool
	}{
		{name: "RotationMakesTheNewValueCurrent", want: `{"access_key_id":"a3"}`},
		{name: "ThePreviousValueKeepsAWSPREVIOUS", stage: smemu.StagePrevious, want: `{"access_key_id":"a2"}`},
		{name: "AnOldVersionByID", versionID: first, want: `{"access_key_id":"a1"}`},
		{name: "VersionIDAndItsStage", versionID: third, stage: smemu.StageCurrent, want: `{"access_key_id":"a3"}`},
		{name: "VersionIDWithAStageItLacks", versionID: second, stage: smemu.StageCurrent, notFound: true},
		{name: "AnUnknownVersionID", versionID: "00000000-0000-0000-0000-000000000000", notFound: true},
		{name: "AnUnknownStage", stage: "PENDING", notFound: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &secretsmanager.GetSecretValueInput{SecretId: aws.String("dth-oss-credentials")}
			if tc.versionID != "" {
				in.VersionId = aws.String(tc.versionID)
			}
			if tc.stage != "" {
				in.VersionStage = aws.String(tc.stage)
			}
			got, err := get(ctx, c, in)
			var nf *types.ResourceNotFoundException
			switch {
			case tc.notFound && !errors.As(err, &nf):
				t.Fatalf("got %q, %v; want ResourceNotFoundException", got, err)
			case !tc.notFound && err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("AnUnknownSecretIsResourceNotFound", func(t *testing.T) {
		_, err := get(ctx, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("no-such-secret")})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("got %v, want ResourceNotFoundException", err)
		}
	})
	t.Run("ADeletedSecretIsResourceNotFound", func(t *testing.T) {
		srv.Rotate("gone", "x")
		srv.DeleteSecret("gone")
		_, err := get(ctx, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("gone")})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("got %v, want ResourceNotFoundException", err)
		}
	})
	if n := srv.Requests()["GetSecretValue"]; n < len(cases)+2 {
		t.Errorf("Requests()[GetSecretValue] = %d", n)
	}
}

func TestSignatures(t *testing.T) {
	t.Parallel()
	srv, endpoint := setup(t)
	srv.Rotate("s", "v")
	cases := []struct {
		name, ak, sk, region, code string
	}{
		{name: "AnUnknownKeyIsUnrecognized", ak: "NOPE", sk: "sm-secret", region: "us-west-2", code: "UnrecognizedClientException"},
		{name: "AWrongSecretIsAnInvalidSignature", ak: "AKSM", sk: "wrong", region: "us-west-2", code: "InvalidSignatureException"},
		{name: "AnotherRegionIsAnInvalidSignature", ak: "AKSM", sk: "sm-secret", region: "eu-west-1", code: "InvalidSignatureException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := get(context.Background(), client(endpoint, tc.ak, tc.sk, tc.region),
				&secretsmanager.GetSecretValueInput{SecretId: aws.String("s")})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	t.Run("AnUnsignedRequestIsRefused", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, endpoint, nil)
		req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", res.StatusCode)
		}
	})
}

func TestFaults(t *testing.T) {
	t.Parallel()
	srv, endpoint := setup(t)
	srv.Rotate("s", "v")
	c := client(endpoint, "AKSM", "sm-secret", "us-west-2")
	ctx := context.Background()
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")}

	srv.InjectFault(smemu.Fault{Op: "GetSecretValue", SecretID: "s", Skip: 1, Status: 400, Code: "ThrottlingException", Times: 1})
	if _, err := get(ctx, c, in); err != nil {
		t.Fatalf("the skipped request failed: %v", err)
	}
	_, err := get(ctx, c, in)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" {
		t.Fatalf("got %v, want ThrottlingException", err)
	}
	if _, err := get(ctx, c, in); err != nil {
		t.Fatalf("a used-up fault still applies: %v", err)
	}
	srv.InjectFault(smemu.Fault{Status: 500})
	if _, err := get(ctx, c, in); !errors.As(err, &ae) || ae.ErrorCode() != "InternalServiceError" {
		t.Fatalf("got %v, want InternalServiceError", err)
	}
	srv.ClearFaults()
	if _, err := get(ctx, c, in); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}
}
