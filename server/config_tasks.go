package main

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oss2s3/oss2s3/transfer"
	"github.com/oss2s3/oss2s3/transfer/ingest/sqsingest"
	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// The tasks and the SQS queues are configured with types of the packages
// that run them (transfer, reconcile, sqsingest); this file checks them as
// the configuration file gives them, one function per type, with their
// paths in the file.

var (
	taskName   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	s3Classes  = set("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
		"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE")
	ossClasses = set("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
	s3ACLs     = set("private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
		"bucket-owner-read", "bucket-owner-full-control")
)

// validateTasks checks every task and returns the index of each task name.
func validateTasks(tasks []transfer.Task, bad complain) map[string]int {
	if len(tasks) == 0 {
		bad("tasks", "at least one task is required")
	}
	names := map[string]int{}
	for i := range tasks {
		validateTask(&tasks[i], fmt.Sprintf("tasks[%d]", i), names, i, bad)
	}
	return names
}

// validateTask checks task i at path; names holds the names of the tasks
// before it, and gets this one's.
func validateTask(t *transfer.Task, path string, names map[string]int, i int, bad complain) {
	if !taskName.MatchString(t.Name) {
		bad(path+".name", "%q: want 1 to 64 letters, digits, '-' or '_'", t.Name)
	} else if j, dup := names[t.Name]; dup {
		bad(path+".name", "%q is also the name of tasks[%d]", t.Name, j)
	} else {
		names[t.Name] = i
	}
	validateSource(t.Source, path+".source", bad)
	validateReconcile(t.Reconcile, path+".reconcile", bad)
	validateDestination(t.Destination, path+".destination", bad)
	validateOptions(t.Options, path+".options", bad)
}

func validateSource(s transfer.SourceConfig, path string, bad complain) {
	validURL(s.Endpoint, path+".endpoint", true, bad)
	if !bucketName.MatchString(s.Bucket) {
		bad(path+".bucket", "%q is not an OSS bucket name (3-63 lower-case letters, digits, '-')", s.Bucket)
	}
	validateSourceKeys(s, path, bad)
	switch strings.ToLower(s.SignatureVersion) {
	case "", "v1":
	case "v4":
		if s.Region == "" {
			bad(path+".region", "required with signature_version v4 (the SDK would sign for an empty region)")
		}
	default:
		bad(path+".signature_version", "%q: want v1 or v4", s.SignatureVersion)
	}
	if s.PrefixList != "" {
		if _, _, _, err := reconcile.ParsePrefixList(s.PrefixList); err != nil {
			bad(path+".prefix_list", "%v", err)
		} else if len(s.Prefixes) > 0 || s.PrefixFile != "" {
			bad(path+".prefix_list", "set either prefix_list or prefixes and prefix_file, not both: the list replaces them in reconcile runs")
		}
	}
	for j, pr := range s.Prefixes {
		if pr == "" {
			bad(fmt.Sprintf("%s.prefixes[%d]", path, j), "is empty; leave prefixes out to copy the whole bucket")
		}
	}
	for j, sf := range s.Suffixes {
		if sf == "" {
			bad(fmt.Sprintf("%s.suffixes[%d]", path, j), "is empty; leave suffixes out to take every key")
		}
	}
}

// validateSourceKeys checks that a source has keys from one place: written
// out, or read from a secret.
func validateSourceKeys(s transfer.SourceConfig, path string, bad complain) {
	sm, ali := s.Credentials.SecretsManager, s.Credentials.Aliyun
	if sm == nil && ali == nil {
		if s.AccessKeyID == "" || s.AccessKeySecret == "" {
			bad(path, "access_key_id and access_key_secret are required (or credentials.secrets_manager or credentials.aliyun)")
		}
		return
	}
	if s.AccessKeyID != "" || s.AccessKeySecret != "" || s.SecurityToken != "" || (sm != nil && ali != nil) {
		bad(path, "give one of access_key_id and access_key_secret, credentials.secrets_manager, credentials.aliyun")
	}
	if ali != nil {
		validateAliyun(*ali, path+".credentials.aliyun", bad)
	}
	if sm == nil {
		return
	}
	p := path + ".credentials.secrets_manager"
	if sm.Name == "" {
		bad(p+".name", "required: the name or ARN of the secret holding the OSS keys (e.g. dth-oss-credentials)")
	}
	if sm.Region == "" {
		bad(p+".region", "required: the region of the secret (e.g. us-west-2)")
	}
	validURL(sm.Endpoint, p+".endpoint", false, bad)
	if sm.Refresh < 0 || (sm.Refresh > 0 && sm.Refresh < 10*time.Second) {
		bad(p+".refresh", "%s: want at least 10s (or leave it out: %s)", sm.Refresh, transfer.DefaultSecretRefresh)
	}
	if (sm.AccessKeyID == "") != (sm.SecretAccessKey == "") {
		bad(p, "give both access_key_id and secret_access_key, or neither (to use the AWS default credential chain)")
	}
}

var ramRoleARN = regexp.MustCompile(`^acs:ram::[0-9]+:role/[A-Za-z0-9._/-]{1,64}$`)

// validateAliyun checks the credentials-go settings of a source.
func validateAliyun(a transfer.AliyunCredentials, path string, bad complain) {
	roleSettings := func() {
		if !ramRoleARN.MatchString(a.RoleARN) {
			bad(path+".role_arn", "%q is not a RAM role ARN (acs:ram::1234567890123456:role/NAME)", a.RoleARN)
		}
		if a.Duration != 0 && (a.Duration < 15*time.Minute || a.Duration > 12*time.Hour) {
			bad(path+".duration", "%s: want 15m to 12h (default 1h)", a.Duration)
		}
		if a.RoleSessionName != "" && !roleSessionName.MatchString(a.RoleSessionName) {
			bad(path+".role_session_name", "%q: want 2 to 64 letters, digits or +=,.@_-", a.RoleSessionName)
		}
	}
	switch a.Type {
	case transfer.AliyunRAMRoleARN:
		if a.AccessKeyID == "" || a.AccessKeySecret == "" {
			bad(path, "ram_role_arn needs the access_key_id and access_key_secret of a RAM user allowed to assume role_arn")
		}
		roleSettings()
	case transfer.AliyunOIDCRoleARN:
		roleSettings()
	case transfer.AliyunECSRAMRole:
	case transfer.AliyunCredentialsURI:
		if a.URL == "" {
			bad(path+".url", "required with credentials_uri: the URL that answers the keys")
		}
		validURL(a.URL, path+".url", false, bad)
	default:
		bad(path+".type", "%q: want ram_role_arn, ecs_ram_role, oidc_role_arn or credentials_uri", a.Type)
	}
	if strings.Contains(a.STSEndpoint, "/") {
		bad(path+".sts_endpoint", "%q: want a host (e.g. sts-vpc.cn-hangzhou.aliyuncs.com), not a URL", a.STSEndpoint)
	}
}

func validateReconcile(rc transfer.ReconcileConfig, path string, bad complain) {
	if rc.Schedule != "" {
		if _, err := reconcile.ParseSchedule(rc.Schedule); err != nil {
			bad(path+".schedule", "%q: %v (want cron \"0 3 * * *\", \"@every 6h\", AWS cron \"0/60 * * * ? *\" or \"rate(1 hour)\")", rc.Schedule, err)
		}
	}
	if !reconcile.ValidMode(rc.Mode) {
		bad(path+".mode", "%q: want report, copy, sync or copy_all", rc.Mode)
	}
	if !reconcile.ValidVerify(rc.Verify) {
		bad(path+".verify", "%q: want size, etag or content", rc.Verify)
	}
	if rc.MaxDeletes < 0 {
		bad(path+".max_deletes", "%d: want 0 (the default, %d) or more", rc.MaxDeletes, reconcile.DefaultMaxDeletes)
	}
	if rc.Shards < 0 || rc.Shards > reconcile.MaxShards {
		bad(path+".shards", "%d: want 0 (the default) to %d", rc.Shards, reconcile.MaxShards)
	}
}

// validateDestination checks where and as whom a task writes, then how
// (validateWrites).
func validateDestination(d transfer.DestinationConfig, path string, bad complain) {
	if d.Region == "" {
		bad(path+".region", "required (e.g. us-west-2)")
	}
	if len(d.Bucket) < 3 || len(d.Bucket) > 63 || !bucketName.MatchString(d.Bucket) {
		bad(path+".bucket", "%q is not an S3 bucket name", d.Bucket)
	}
	if len(d.Prefix) > 512 {
		bad(path+".prefix", "is %d bytes; keep it under 512", len(d.Prefix))
	}
	validURL(d.Endpoint, path+".endpoint", false, bad)
	if d.CAFile != "" {
		if _, err := os.Stat(d.CAFile); err != nil {
			bad(path+".ca_file", "%v", err)
		}
	}
	if (d.AccessKeyID == "") != (d.SecretAccessKey == "") {
		bad(path, "give both access_key_id and secret_access_key, or neither (to use the AWS default credential chain)")
	}
	validateRole(d, path, bad)
	validateWrites(d, path, bad)
}

var (
	roleARN         = regexp.MustCompile(`^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)
	roleSessionName = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{2,64}$`)
	externalID      = regexp.MustCompile(`^[A-Za-z0-9+=,.@:/_-]+$`)
)

// validateRole checks the role a destination assumes, if any.
func validateRole(d transfer.DestinationConfig, path string, bad complain) {
	if d.RoleARN == "" {
		if d.ExternalID != "" || d.RoleSessionName != "" || d.STSEndpoint != "" {
			bad(path, "external_id, role_session_name and sts_endpoint only with role_arn")
		}
		return
	}
	if !roleARN.MatchString(d.RoleARN) {
		bad(path+".role_arn", "%q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", d.RoleARN)
	}
	if n := len(d.ExternalID); n > 0 && (n < 2 || n > 1224 || !externalID.MatchString(d.ExternalID)) {
		bad(path+".external_id", "want 2 to 1224 letters, digits or +=,.@:/_-")
	}
	if d.RoleSessionName != "" && !roleSessionName.MatchString(d.RoleSessionName) {
		bad(path+".role_session_name", "%q: want 2 to 64 letters, digits or +=,.@_-", d.RoleSessionName)
	}
	validURL(d.STSEndpoint, path+".sts_endpoint", false, bad)
}

// validateWrites checks what a destination's objects are written with:
// storage class, ACL, encryption, checksum, the read timeout of its
// requests and the storage class of each OSS class.
func validateWrites(d transfer.DestinationConfig, path string, bad complain) {
	if d.StorageClass != "" && !s3Classes[d.StorageClass] {
		bad(path+".storage_class", "%q is not an S3 storage class", d.StorageClass)
	}
	if d.ACL != "" && !s3ACLs[d.ACL] {
		bad(path+".acl", "%q is not an S3 canned ACL", d.ACL)
	}
	switch d.SSE {
	case "", "AES256":
		if d.SSEKMSKeyID != "" {
			bad(path+".sse_kms_key_id", "only with sse: aws:kms")
		}
	case "aws:kms":
	default:
		bad(path+".sse", "%q: want AES256 or aws:kms", d.SSE)
	}
	if c := strings.ToUpper(d.Checksum); c != "" && c != "CRC32C" && c != "CRC64NVME" && c != "NONE" {
		bad(path+".checksum", "%q: want CRC32C, CRC64NVME or none", d.Checksum)
	}
	if d.ReadTimeout < 0 || (d.ReadTimeout > 0 && d.ReadTimeout < time.Second) {
		bad(path+".read_timeout", "%s: want at least 1s (or leave it out: %ds)", d.ReadTimeout, transfer.DefaultReadTimeout/time.Second)
	}
	for from, to := range d.StorageClassMap {
		if !ossClasses[from] {
			bad(path+".storage_class_map", "%q is not an OSS storage class (Standard, IA, Archive, ColdArchive, DeepColdArchive)", from)
		}
		if !s3Classes[to] {
			bad(path+".storage_class_map."+from, "%q is not an S3 storage class", to)
		}
	}
}

func validateOptions(o transfer.TaskOptions, path string, bad complain) {
	validParts(o.PartSize, o.PartsInFlight, path, bad)
	if o.Timeout < 0 || o.RestorePoll < 0 {
		bad(path, "timeout and restore_poll must not be negative")
	}
	oneOf := func(field, v string, allowed ...string) {
		if v != "" && !slices.Contains(allowed, v) {
			bad(path+"."+field, "%q: want %s", v, strings.Join(allowed, " or "))
		}
	}
	oneOf("deletes", o.Deletes, transfer.DeletesIgnore, transfer.DeletesPropagate)
	oneOf("symlinks", o.Symlinks, transfer.SymlinksFollow, transfer.SymlinksSkip)
	oneOf("archive", o.Archive, transfer.ArchiveSkip, transfer.ArchiveRestore)
	if o.DeleteForeign && o.Deletes != transfer.DeletesPropagate {
		bad(path+".delete_foreign", "only with deletes: propagate")
	}
}

// validateSQS checks every queue; tasks holds the names of the tasks.
func validateSQS(queues []sqsingest.Config, tasks map[string]int, bad complain) {
	names := map[string]bool{}
	for i, q := range queues {
		path := fmt.Sprintf("sqs[%d]", i)
		if !taskName.MatchString(q.Name) || names[q.Name] {
			bad(path+".name", "%q: want a unique name of letters, digits, '-' or '_'", q.Name)
		}
		names[q.Name] = true
		validateQueue(q, path, tasks, bad)
	}
}

// validateQueue checks one queue but its name.
func validateQueue(q sqsingest.Config, path string, tasks map[string]int, bad complain) {
	validURL(q.QueueURL, path+".queue_url", true, bad)
	validURL(q.Endpoint, path+".endpoint", false, bad)
	if q.Region == "" {
		bad(path+".region", "required (e.g. us-west-2)")
	}
	if _, ok := tasks[q.Task]; q.Task != "" && !ok {
		bad(path+".task", "%q is not the name of a task", q.Task)
	}
	if q.WaitSeconds < 0 || q.WaitSeconds > 20 {
		bad(path+".wait_seconds", "%d: want 1 to 20", q.WaitSeconds)
	}
	if q.Pollers < 0 || q.Pollers > 64 {
		bad(path+".pollers", "%d: want 1 to 64", q.Pollers)
	}
	if (q.AccessKeyID == "") != (q.SecretAccessKey == "") {
		bad(path, "give both access_key_id and secret_access_key, or neither")
	}
}

func validURL(s, path string, required bool, bad complain) {
	if s == "" {
		if required {
			bad(path, "required (e.g. https://oss-cn-hangzhou.aliyuncs.com)")
		}
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad(path, "%q: want an http(s):// URL", s)
		return
	}
	if port := u.Port(); port != "" {
		if _, err := strconv.Atoi(port); err != nil {
			bad(path, "%q: bad port", s)
		}
	}
}
