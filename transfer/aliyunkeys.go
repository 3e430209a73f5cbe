package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aliyun/credentials-go/credentials"
)

// AliyunCredentials are OSS keys that github.com/aliyun/credentials-go
// obtains and renews before they expire (3 minutes before, for STS keys).
type AliyunCredentials struct {
	// Type is ram_role_arn (STS AssumeRole with a RAM user's keys),
	// ecs_ram_role (the instance's role, from the metadata service),
	// oidc_role_arn (RRSA on ACK: the pod's OIDC token) or credentials_uri
	// (an HTTP endpoint answering keys).
	Type string `yaml:"type"`
	// ram_role_arn: the RAM user's keys that assume the role.
	AccessKeyID     string `yaml:"access_key_id"`
	AccessKeySecret string `yaml:"access_key_secret"`
	// ram_role_arn and oidc_role_arn.
	RoleARN         string        `yaml:"role_arn"`          // acs:ram::<account>:role/<name>
	RoleSessionName string        `yaml:"role_session_name"` // default oss2s3
	ExternalID      string        `yaml:"external_id"`       // ram_role_arn, if the role's trust policy asks
	Duration        time.Duration `yaml:"duration"`          // of the STS keys, 15m to 12h (default 1h)
	STSEndpoint     string        `yaml:"sts_endpoint"`      // host, e.g. sts-vpc.cn-hangzhou.aliyuncs.com; default sts.aliyuncs.com
	// oidc_role_arn: default ALIBABA_CLOUD_OIDC_PROVIDER_ARN and
	// ALIBABA_CLOUD_OIDC_TOKEN_FILE, as ACK's RRSA sets them.
	OIDCProviderARN string `yaml:"oidc_provider_arn"`
	OIDCTokenFile   string `yaml:"oidc_token_file"`
	// ecs_ram_role: the role's name (default: asked of the metadata service).
	RoleName string `yaml:"role_name"`
	// credentials_uri: the URL.
	URL string `yaml:"url"`
}

// The types of AliyunCredentials.
const (
	AliyunRAMRoleARN     = "ram_role_arn"
	AliyunECSRAMRole     = "ecs_ram_role"
	AliyunOIDCRoleARN    = "oidc_role_arn"
	AliyunCredentialsURI = "credentials_uri"
)

// config is what credentials-go is given.
func (a AliyunCredentials) config() *credentials.Config {
	c := new(credentials.Config).SetType(a.Type)
	set := func(v string, f func(string) *credentials.Config) {
		if v != "" {
			f(v)
		}
	}
	set(a.AccessKeyID, c.SetAccessKeyId)
	set(a.AccessKeySecret, c.SetAccessKeySecret)
	set(a.RoleARN, c.SetRoleArn)
	session := a.RoleSessionName
	if session == "" && (a.Type == AliyunRAMRoleARN || a.Type == AliyunOIDCRoleARN) {
		session = "oss2s3"
	}
	set(session, c.SetRoleSessionName)
	set(a.ExternalID, c.SetExternalId)
	set(a.STSEndpoint, c.SetSTSEndpoint)
	set(a.OIDCProviderARN, c.SetOIDCProviderArn)
	set(a.OIDCTokenFile, c.SetOIDCTokenFilePath)
	set(a.RoleName, c.SetRoleName)
	set(a.URL, c.SetURLCredential)
	if a.Duration > 0 {
		c.SetRoleSessionExpiration(int(a.Duration / time.Second))
	}
	return c
}

// AliyunKeys are OSS keys from credentials-go, which renews them before
// they expire; Refresh starts a new session at once (after OSS refused the
// keys: a token revoked or expired early).
type AliyunKeys struct {
	cfg AliyunCredentials
	log *slog.Logger

	renewing sync.Mutex // one Refresh at a time
	forced   time.Time  // the last new session Refresh started; under renewing

	mu   sync.Mutex // credentials-go's providers are not safe for concurrent use
	cred credentials.Credential
	last OSSKeys
	gen  uint64
}

var _ KeySource = (*AliyunKeys)(nil)

// NewAliyunKeys builds the credentials-go client cfg describes and gets
// keys once (an error if it cannot). log (nil: discarded) hears renewals
// that fail and new sessions, never a key.
func NewAliyunKeys(cfg AliyunCredentials, log *slog.Logger) (*AliyunKeys, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &AliyunKeys{cfg: cfg, log: log}
	if err := k.renew(); err != nil {
		return nil, err
	}
	return k, nil
}

// Keys implements KeySource.
func (k *AliyunKeys) Keys() (OSSKeys, uint64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	// A failed renewal keeps the last keys: OSS says whether they still work.
	if err := k.getLocked(); err != nil {
		k.log.Warn("oss keys: renewing the keys failed; the last keys stay in use", "type", k.cfg.Type, "error", err)
	}
	return k.last, k.gen, nil
}

// Refresh implements KeySource.
// A refusal new keys cannot cure starts at most one session every
// secretReread.
func (k *AliyunKeys) Refresh(_ context.Context, seen uint64) error {
	k.renewing.Lock()
	defer k.renewing.Unlock()
	k.mu.Lock()
	newer := k.gen != seen
	k.mu.Unlock()
	if newer || (!k.forced.IsZero() && time.Since(k.forced) < secretReread) {
		return nil
	}
	k.forced = time.Now()
	k.log.Info("oss keys: OSS refused the keys; starting a new session", "type", k.cfg.Type)
	return k.renew()
}

// renew builds a new client, so that a new session is started.
func (k *AliyunKeys) renew() error {
	cred, err := credentials.NewCredential(k.cfg.config())
	if err != nil {
		return fmt.Errorf("aliyun %s: %w", k.cfg.Type, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cred = cred
	return k.getLocked()
}

func (k *AliyunKeys) getLocked() error {
	m, err := k.cred.GetCredential()
	if err != nil {
		return fmt.Errorf("aliyun %s: %w", k.cfg.Type, err)
	}
	keys := OSSKeys{AccessKeyID: deref(m.AccessKeyId), AccessKeySecret: deref(m.AccessKeySecret), SecurityToken: deref(m.SecurityToken)}
	if keys.AccessKeyID == "" || keys.AccessKeySecret == "" {
		return errors.New("aliyun " + k.cfg.Type + ": no keys in the answer")
	}
	if keys != k.last {
		k.last, k.gen = keys, k.gen+1
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
