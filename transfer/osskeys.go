package transfer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// SourceCredentials says where a task's OSS keys come from when the task
// does not write them out (access_key_id, access_key_secret).
type SourceCredentials struct {
	SecretsManager *SecretsManagerRef `yaml:"secrets_manager"`
	Aliyun         *AliyunCredentials `yaml:"aliyun"`
}

// SecretsManagerRef names an AWS Secrets Manager secret that holds OSS keys
// as JSON: DTH's {"access_key_id", "secret_access_key"}, or oss2s3's
// {"access_key_id", "access_key_secret", "security_token"}. The secret is
// read at start (a missing secret fails the start), again every Refresh,
// and again at once when OSS refuses the keys it gave.
type SecretsManagerRef struct {
	Name   string `yaml:"name"` // the secret's name or ARN
	Region string `yaml:"region"`
	// Endpoint replaces Secrets Manager's (a VPC endpoint, a test bed).
	Endpoint string `yaml:"endpoint"`
	// Refresh is how often the secret is read again (default 5m), so a
	// rotation is followed.
	Refresh time.Duration `yaml:"refresh"`
	// AccessKeyID and SecretAccessKey read the secret; without them the
	// AWS default chain does (environment, profile, instance role, IRSA).
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
}

// DefaultSecretRefresh is how often a secret holding OSS keys is read again.
const DefaultSecretRefresh = 5 * time.Minute

// OSSKeys are the keys one OSS request is signed with.
type OSSKeys struct {
	AccessKeyID, AccessKeySecret, SecurityToken string
}

// KeySource hands the OSS client its keys, request by request.
type KeySource interface {
	// Keys returns the keys to sign with and their generation, which
	// grows each time the keys are read anew.
	Keys() (OSSKeys, uint64, error)
	// Refresh reads the keys again at once, unless they were read again
	// since generation seen (another request's refusal did it). It fails
	// for keys that cannot change (static ones).
	Refresh(ctx context.Context, seen uint64) error
}

var errStaticKeys = errors.New("static keys cannot be read again")

// StaticKeys are keys written in the configuration.
type StaticKeys OSSKeys

var _ KeySource = StaticKeys{}

// Keys implements KeySource.
func (k StaticKeys) Keys() (OSSKeys, uint64, error) { return OSSKeys(k), 0, nil }

// Refresh implements KeySource: static keys stay what they are.
func (StaticKeys) Refresh(context.Context, uint64) error { return errStaticKeys }

// SecretGetter is the part of the Secrets Manager client SecretKeys uses.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SecretKeys are OSS keys read from a Secrets Manager secret and read again
// every period, or at once through Refresh.
type SecretKeys struct {
	client SecretGetter
	name   string
	period time.Duration
	now    func() time.Time
	log    *slog.Logger

	reading sync.Mutex // one read of the secret at a time
	forced  time.Time  // the last read Refresh made; under reading
	mu      sync.Mutex
	keys    OSSKeys
	gen     uint64
	next    time.Time // when Keys reads the secret again
}

var _ KeySource = (*SecretKeys)(nil)

// secretRetry is how soon a failed periodic read is tried again; the keys
// read last stay in use meanwhile.
const secretRetry = 30 * time.Second

// secretReread is the least time between two reads Refresh makes: a
// refusal the secret cannot cure (a request signed wrong for another
// reason) must not read the secret for every request.
const secretReread = 10 * time.Second

// SecretKeysOptions tune SecretKeys; the zero value is ready to use.
type SecretKeysOptions struct {
	Period time.Duration    // how often the secret is read again (0: DefaultSecretRefresh)
	Now    func() time.Time // the clock (nil: time.Now)
	Log    *slog.Logger     // hears each read after the first (nil: discarded); never a key
}

// NewSecretKeys reads the secret name once (an error if it cannot) and
// returns keys that follow it.
func NewSecretKeys(ctx context.Context, client SecretGetter, name string, o SecretKeysOptions) (*SecretKeys, error) {
	k := &SecretKeys{client: client, name: name, period: cmp.Or(o.Period, DefaultSecretRefresh), now: o.Now, log: o.Log}
	if k.now == nil {
		k.now = time.Now
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if err := k.read(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// Keys implements KeySource. When the period is over, one caller reads the
// secret while the others go on with the keys they have.
func (k *SecretKeys) Keys() (OSSKeys, uint64, error) {
	k.mu.Lock()
	due := !k.now().Before(k.next)
	k.mu.Unlock()
	if due && k.reading.TryLock() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := k.readLocked(ctx)
		cancel()
		k.reading.Unlock()
		if err != nil {
			retry := min(secretRetry, k.period)
			k.log.Warn("oss keys: reading the secret again failed; the keys read last stay in use",
				"secret", k.name, "retry_in", retry, "error", err)
			k.mu.Lock()
			k.next = k.now().Add(retry)
			k.mu.Unlock()
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.gen, nil
}

// Refresh implements KeySource.
func (k *SecretKeys) Refresh(ctx context.Context, seen uint64) error {
	k.reading.Lock()
	defer k.reading.Unlock()
	k.mu.Lock()
	newer := k.gen != seen
	k.mu.Unlock()
	if newer || (!k.forced.IsZero() && k.now().Sub(k.forced) < secretReread) {
		return nil
	}
	k.forced = k.now()
	k.log.Info("oss keys: OSS refused the keys; reading the secret again", "secret", k.name)
	return k.readLocked(ctx)
}

func (k *SecretKeys) read(ctx context.Context) error {
	k.reading.Lock()
	defer k.reading.Unlock()
	return k.readLocked(ctx)
}

// readLocked reads the secret's current version; k.reading is held.
func (k *SecretKeys) readLocked(ctx context.Context) error {
	out, err := k.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(k.name)})
	if err != nil {
		var nf *smtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return fmt.Errorf("secret %q: Secrets Manager has no such secret (ResourceNotFoundException)", k.name)
		}
		return fmt.Errorf("secret %q: %w", k.name, err)
	}
	keys, err := ParseOSSSecret(aws.ToString(out.SecretString))
	if err != nil {
		return fmt.Errorf("secret %q: %w", k.name, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gen > 0 && keys != k.keys {
		k.log.Info("oss keys: the secret holds new keys; signing with them", "secret", k.name, "version", aws.ToString(out.VersionId))
	}
	k.keys, k.gen, k.next = keys, k.gen+1, k.now().Add(k.period)
	return nil
}

// ParseOSSSecret reads OSS keys from a secret's JSON. Its errors never
// quote the secret.
func ParseOSSSecret(s string) (OSSKeys, error) {
	var v struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"` // DTH's name
		AccessKeySecret string `json:"access_key_secret"` // oss2s3's and Aliyun's
		SecurityToken   string `json:"security_token"`
	}
	if json.Unmarshal([]byte(s), &v) != nil {
		return OSSKeys{}, errors.New("the secret is not a JSON object")
	}
	keys := OSSKeys{AccessKeyID: v.AccessKeyID, AccessKeySecret: cmp.Or(v.AccessKeySecret, v.SecretAccessKey), SecurityToken: v.SecurityToken}
	if keys.AccessKeyID == "" || keys.AccessKeySecret == "" {
		return OSSKeys{}, errors.New(`the secret has no "access_key_id" with "secret_access_key" (or "access_key_secret")`)
	}
	return keys, nil
}

// SourceKeys returns the key source cfg describes: a Secrets Manager
// secret or credentials-go's, read once now, or the keys written in cfg.
func SourceKeys(ctx context.Context, cfg SourceConfig, log *slog.Logger) (KeySource, error) {
	if a := cfg.Credentials.Aliyun; a != nil {
		keys, err := NewAliyunKeys(*a, log)
		if err != nil {
			return nil, fmt.Errorf("source.credentials.aliyun: %w", err)
		}
		return keys, nil
	}
	ref := cfg.Credentials.SecretsManager
	if ref == nil {
		return StaticKeys{AccessKeyID: cfg.AccessKeyID, AccessKeySecret: cfg.AccessKeySecret, SecurityToken: cfg.SecurityToken}, nil
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(ref.Region)}
	if ref.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ref.AccessKeyID, ref.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("source.credentials.secrets_manager: aws config: %w", err)
	}
	client := secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
		if ref.Endpoint != "" {
			o.BaseEndpoint = aws.String(ref.Endpoint)
		}
	})
	keys, err := NewSecretKeys(ctx, client, ref.Name, SecretKeysOptions{Period: ref.Refresh, Log: log})
	if err != nil {
		return nil, fmt.Errorf("source.credentials.secrets_manager.name: %w", err)
	}
	return keys, nil
}

// ossProvider gives the OSS SDK the keys of a KeySource for every request.
type ossProvider struct{ src KeySource }

var _ oss.CredentialsProviderE = ossProvider{}

func (p ossProvider) GetCredentials() oss.Credentials {
	c, _ := p.GetCredentialsE()
	return c
}

func (p ossProvider) GetCredentialsE() (oss.Credentials, error) {
	keys, _, err := p.src.Keys()
	return ossCredentials(keys), err
}

type ossCredentials OSSKeys

func (c ossCredentials) GetAccessKeyID() string     { return c.AccessKeyID }
func (c ossCredentials) GetAccessKeySecret() string { return c.AccessKeySecret }
func (c ossCredentials) GetSecurityToken() string   { return c.SecurityToken }

// refusedKeys reports whether OSS refused a request's keys in a way fresh
// keys may cure: a rotated key, a secret changed under it, an expired token.
func refusedKeys(err error) bool {
	var se oss.ServiceError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "SecurityTokenExpired":
		return true
	}
	return false
}
