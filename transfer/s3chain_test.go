package transfer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/stsemu"
	"github.com/oss2s3/oss2s3/transfer"
)

// TestDestinationDefaultChain: with no keys in the configuration the
// destination signs with what the AWS default chain finds (the environment,
// a profile, IRSA's web identity), and assumes role_arn on top of it. The
// subtests set the process's environment, so they do not run in parallel.
func TestDestinationDefaultChain(t *testing.T) {
	s3 := ossemu.New(ossemu.Options{Credentials: map[string]string{"AKIA-env": "env-secret", "AKIA-profile": "profile-secret"}})
	s3URL, err := s3.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Close() })
	s3.CreateBucket("dst")
	sts := stsemu.New(stsemu.Options{Credentials: map[string]string{"AKIA-base": "base-secret"},
		Roles: map[string]string{writerRole: ""}, WebIdentityToken: "projected-token",
		Issued: func(c stsemu.Credentials) { s3.SetKey(c.AccessKeyID, c.SecretAccessKey) }})
	stsURL, err := sts.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sts.Close() })

	dir := t.TempDir()
	profile := filepath.Join(dir, "credentials")
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(profile, []byte("[default]\naws_access_key_id = AKIA-profile\naws_secret_access_key = profile-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(token, []byte("projected-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	isolated := map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"),
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_ENDPOINT_URL_STS": stsURL,
	}
	cases := []struct {
		name    string
		env     map[string]string
		roleARN string
		caller  string // who assumed a role, if one was
	}{
		{name: "Environment", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIA-env", "AWS_SECRET_ACCESS_KEY": "env-secret"}},
		{name: "Profile", env: map[string]string{"AWS_SHARED_CREDENTIALS_FILE": profile}},
		{name: "IRSAWebIdentity", env: map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": token, "AWS_ROLE_ARN": writerRole}, caller: "web-identity"},
		{name: "RoleOnTopOfTheEnvironment", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIA-base", "AWS_SECRET_ACCESS_KEY": "base-secret"},
			roleARN: writerRole, caller: "AKIA-base"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range isolated {
				t.Setenv(k, v)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			before := len(sts.Issued())
			d, err := transfer.NewS3Destination(context.Background(), transfer.DestinationConfig{Region: "us-east-1", Bucket: "dst",
				Endpoint: s3URL, RoleARN: tc.roleARN, STSEndpoint: stsURL})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Put(context.Background(), "k", strings.NewReader("x"), 1, &transfer.WriteInfo{Source: &transfer.ObjectInfo{}}); err != nil {
				t.Fatalf("put: %v", err)
			}
			issued := sts.Issued()[before:]
			switch {
			case tc.caller == "" && len(issued) != 0:
				t.Errorf("STS was asked for keys %d times", len(issued))
			case tc.caller != "" && (len(issued) != 1 || issued[0].Caller != tc.caller):
				t.Errorf("issued %+v, want one session assumed by %s", issued, tc.caller)
			}
		})
	}
}
