package cloudevents

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Errors returned by Auth.Check and Auth.Validate. The gateway answers 401
// for ErrMissingCredentials and ErrBadCredentials, and must refuse to start
// (or answer 503) on ErrNoAuthConfigured.
var (
	// ErrNoAuthConfigured: the endpoint has no usable credential configured.
	// An EventBridge connection can be created without authentication, but
	// this endpoint then accepts nothing rather than everything.
	ErrNoAuthConfigured = errors.New("no API key or basic-auth user configured for the EventBridge endpoint")
	// ErrMissingCredentials: the request carries neither an API key in the
	// configured header nor Basic authorization.
	ErrMissingCredentials = errors.New("missing credentials")
	// ErrBadCredentials: credentials were sent and none matched. The error
	// does not say which credential was tried or how close it came.
	ErrBadCredentials = errors.New("credentials do not match any configured API key or basic-auth user")
)

// Auth is how the EventBridge connection authenticates: an API key in a
// header of the operator's choice, HTTP basic auth, or both. Several keys
// and several passwords per user let an operator rotate them.
type Auth struct {
	// Header is the API key header name, e.g. "x-api-key". Required when
	// APIKeys is set.
	Header string
	// APIKeys are the accepted API keys. Empty strings are ignored.
	APIKeys []string
	// BasicUsers maps a user name to its accepted passwords. Empty user
	// names and empty passwords are ignored.
	BasicUsers map[string][]string
}

// Validate reports whether a is usable: at least one non-empty API key with
// a header name, or one user with a non-empty password. Call it when loading
// configuration; Check returns the same error for every request.
func (a Auth) Validate() error {
	keys := a.keys()
	if len(keys) > 0 && strings.TrimSpace(a.Header) == "" {
		return fmt.Errorf("%w: API keys are set but the API key header name is empty", ErrNoAuthConfigured)
	}
	if len(keys) == 0 && len(a.users()) == 0 {
		return ErrNoAuthConfigured
	}
	return nil
}

// Check authenticates a request by its headers. It accepts the request if
// the API key header holds any configured key, or the Basic authorization
// names any configured user with one of that user's passwords.
//
// Every configured key and every configured user/password pair is compared,
// in constant time over SHA-256 digests (so lengths leak nothing either), and
// the results are combined without branching: the time taken does not depend
// on which credential matched or how many bytes of it were right.
func (a Auth) Check(h http.Header) error {
	if err := a.Validate(); err != nil {
		return err
	}
	key, hasKey := "", false
	if a.Header != "" {
		key = strings.TrimSpace(h.Get(a.Header))
		hasKey = key != ""
	}
	user, pass, hasBasic := (&http.Request{Header: h}).BasicAuth()
	hasBasic = hasBasic && user != ""
	if !hasKey && !hasBasic {
		if a.Header != "" && len(a.keys()) > 0 {
			return fmt.Errorf("%w: want an API key in header %s or Basic authorization", ErrMissingCredentials, http.CanonicalHeaderKey(a.Header))
		}
		return fmt.Errorf("%w: want Basic authorization", ErrMissingCredentials)
	}

	match := 0
	if hasKey {
		got := sha256.Sum256([]byte(key))
		for _, k := range a.keys() {
			want := sha256.Sum256([]byte(k))
			match |= subtle.ConstantTimeCompare(got[:], want[:])
		}
	}
	if hasBasic {
		gotUser := sha256.Sum256([]byte(user))
		gotPass := sha256.Sum256([]byte(pass))
		for _, up := range a.users() {
			wantUser := sha256.Sum256([]byte(up[0]))
			wantPass := sha256.Sum256([]byte(up[1]))
			match |= subtle.ConstantTimeCompare(gotUser[:], wantUser[:]) & subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		}
	}
	if match != 1 {
		return ErrBadCredentials
	}
	return nil
}

// keys returns the non-empty API keys: an empty configured key must never
// match an empty header.
func (a Auth) keys() []string {
	var out []string
	for _, k := range a.APIKeys {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

// users returns every usable (user, password) pair.
func (a Auth) users() [][2]string {
	var out [][2]string
	for u, ps := range a.BasicUsers {
		if u == "" {
			continue
		}
		for _, p := range ps {
			if p != "" {
				out = append(out, [2]string{u, p})
			}
		}
	}
	return out
}
