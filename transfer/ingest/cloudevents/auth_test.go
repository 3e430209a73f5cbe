package cloudevents_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/oss2s3/oss2s3/transfer/ingest/cloudevents"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestAuthCheck(t *testing.T) {
	t.Parallel()
	both := cloudevents.Auth{
		Header:     "x-api-key",
		APIKeys:    []string{"old-key", "new-key"},
		BasicUsers: map[string][]string{"eventbridge": {"old-pass", "new-pass"}, "ops": {"ops-pass"}},
	}
	keysOnly := cloudevents.Auth{Header: "X-Api-Key", APIKeys: []string{"k1"}}
	basicOnly := cloudevents.Auth{BasicUsers: map[string][]string{"u": {"p"}}}

	cases := []struct {
		name    string
		auth    cloudevents.Auth
		headers map[string]string
		want    error  // nil: accepted
		msg     string // expected error text, if any
	}{
		{"FirstKey", both, map[string]string{"x-api-key": "old-key"}, nil, ""},
		{"RotatedKey", both, map[string]string{"X-API-KEY": "new-key"}, nil, ""},
		{"KeyWithSpaces", both, map[string]string{"x-api-key": "  new-key "}, nil, ""},
		{"BasicFirstPassword", both, map[string]string{"Authorization": basic("eventbridge", "old-pass")}, nil, ""},
		{"BasicRotatedPassword", both, map[string]string{"Authorization": basic("eventbridge", "new-pass")}, nil, ""},
		{"BasicOtherUser", both, map[string]string{"Authorization": basic("ops", "ops-pass")}, nil, ""},
		{"WrongKeyButGoodBasic", both, map[string]string{"x-api-key": "nope", "Authorization": basic("ops", "ops-pass")}, nil, ""},
		{"BasicOnly", basicOnly, map[string]string{"Authorization": basic("u", "p")}, nil, ""},

		{"WrongKey", both, map[string]string{"x-api-key": "new-key2"}, cloudevents.ErrBadCredentials, "credentials do not match any configured API key or basic-auth user"},
		{"KeyPrefix", both, map[string]string{"x-api-key": "new"}, cloudevents.ErrBadCredentials, ""},
		{"PasswordOfOtherUser", both, map[string]string{"Authorization": basic("ops", "new-pass")}, cloudevents.ErrBadCredentials, ""},
		{"WrongUser", both, map[string]string{"Authorization": basic("root", "new-pass")}, cloudevents.ErrBadCredentials, ""},
		{"EmptyPassword", basicOnly, map[string]string{"Authorization": basic("u", "")}, cloudevents.ErrBadCredentials, ""},
		{"KeyWhenOnlyBasicConfigured", basicOnly, map[string]string{"x-api-key": "p"}, cloudevents.ErrMissingCredentials, "missing credentials: want Basic authorization"},
		{"BasicWhenOnlyKeysConfigured", keysOnly, map[string]string{"Authorization": basic("u", "k1")}, cloudevents.ErrBadCredentials, ""},

		{"Nothing", both, nil, cloudevents.ErrMissingCredentials, "missing credentials: want an API key in header X-Api-Key or Basic authorization"},
		{"EmptyKeyHeader", both, map[string]string{"x-api-key": "   "}, cloudevents.ErrMissingCredentials, ""},
		{"BearerToken", both, map[string]string{"Authorization": "Bearer new-key"}, cloudevents.ErrMissingCredentials, ""},
		{"MalformedBasic", both, map[string]string{"Authorization": "Basic !!!"}, cloudevents.ErrMissingCredentials, ""},

		{"NothingConfigured", cloudevents.Auth{}, map[string]string{"x-api-key": ""}, cloudevents.ErrNoAuthConfigured, "no API key or basic-auth user configured for the EventBridge endpoint"},
		{"OnlyEmptyKeys", cloudevents.Auth{Header: "x-api-key", APIKeys: []string{""}}, map[string]string{"x-api-key": ""}, cloudevents.ErrNoAuthConfigured, ""},
		{"OnlyEmptyPasswords", cloudevents.Auth{BasicUsers: map[string][]string{"u": {""}, "": {"p"}}}, map[string]string{"Authorization": basic("u", "")}, cloudevents.ErrNoAuthConfigured, ""},
		{"KeysWithoutHeader", cloudevents.Auth{APIKeys: []string{"k"}}, map[string]string{"x-api-key": "k"}, cloudevents.ErrNoAuthConfigured, "API keys are set but the API key header name is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			err := tc.auth.Check(h)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Check error %q, want it to contain %q", err, tc.msg)
			}
		})
	}
}

func TestAuthValidate(t *testing.T) {
	t.Parallel()
	if err := (cloudevents.Auth{Header: "x-api-key", APIKeys: []string{"k"}}).Validate(); err != nil {
		t.Errorf("keys: %v", err)
	}
	if err := (cloudevents.Auth{BasicUsers: map[string][]string{"u": {"p"}}}).Validate(); err != nil {
		t.Errorf("basic: %v", err)
	}
	if err := (cloudevents.Auth{Header: "x-api-key"}).Validate(); !errors.Is(err, cloudevents.ErrNoAuthConfigured) {
		t.Errorf("header only: %v", err)
	}
}
