package reconcile

// Prefix lists: a task's prefixes kept as data rather than configuration
// (DTH's srcPrefixsListFile), in a file or in an OSS or S3 object, read
// line by line at the start of each run.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MaxPrefixLen is the longest key prefix a list may hold: OSS and S3 keys
// are at most 1023 bytes.
const MaxPrefixLen = 1023

// maxListLine is the longest line a list is scanned with; a longer line is
// reported (its number, "longer than ...") rather than read whole.
const maxListLine = 64 << 10

// ReadPrefixes reads a list of key prefixes from r, one a line, and calls
// add with each. Blank lines and lines starting with # are skipped; a
// trailing \r is dropped, any other white space is part of the prefix. A
// line that is no key prefix (not UTF-8, too long, starting with / or \,
// holding a control character) stops the read with "line N: why". Only
// the line being read is held, whatever the size of the list.
func ReadPrefixes(r io.Reader, add func(string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxListLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		if why := badPrefix(line); why != "" {
			return fmt.Errorf("line %d: %s", n, why)
		}
		add(string(line))
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return fmt.Errorf("line %d: longer than %d bytes (a key prefix is at most %d)", n+1, maxListLine, MaxPrefixLen)
	}
	if sc.Err() != nil {
		return fmt.Errorf("after line %d: %w", n, sc.Err())
	}
	return nil
}

// badPrefix says why line is not a key prefix ("" if it is one).
func badPrefix(line []byte) string {
	switch {
	case len(line) > MaxPrefixLen:
		return fmt.Sprintf("%d bytes; a key prefix is at most %d", len(line), MaxPrefixLen)
	case !utf8.Valid(line):
		return "not valid UTF-8 (OSS and S3 keys are UTF-8)"
	case line[0] == '/' || line[0] == '\\':
		return fmt.Sprintf("%q starts with %q; OSS keys cannot", line, line[0])
	}
	for _, c := range line {
		if c < 0x20 || c == 0x7f {
			return fmt.Sprintf("%q holds a control character", line)
		}
	}
	return ""
}

// Disjoint sorts prefixes in byte order, in place, and drops every
// prefix another one of the list covers (a duplicate, or one that starts
// with a shorter prefix of the list): listing it too would report its
// objects twice. It returns the prefixes left; what follows them in the
// array is cleared.
func Disjoint(prefixes []string) []string {
	slices.Sort(prefixes)
	out := prefixes[:0]
	for _, p := range prefixes {
		// Sorted: a covering prefix sorts just before the prefixes it covers.
		if len(out) > 0 && strings.HasPrefix(p, out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	clear(prefixes[len(out):])
	return out
}

// PrefixList is where a task's prefixes are read from at the start of
// each run: a file, or an object in OSS (read with the task's source
// credentials) or S3 (with the destination's).
type PrefixList struct {
	url  string
	open func(ctx context.Context) (io.ReadCloser, error)
}

func (l *PrefixList) String() string { return l.url }

// Read reads the list, streamed, and returns its prefixes made disjoint
// (see Disjoint). An empty list is an error: it would otherwise mean the
// whole bucket.
func (l *PrefixList) Read(ctx context.Context) ([]string, error) {
	rc, err := l.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("prefix list %s: %w", l.url, err)
	}
	defer func() { _ = rc.Close() }()
	var ps []string
	if err := ReadPrefixes(rc, func(p string) { ps = append(ps, p) }); err != nil {
		return nil, fmt.Errorf("prefix list %s: %w", l.url, err)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("prefix list %s lists no prefixes", l.url)
	}
	return Disjoint(ps), nil
}

// ErrNoList means a prefix list's file or object does not exist.
var ErrNoList = errors.New("no such file or object")

// Where a prefix list lives.
const (
	ListFile = "file"
	ListOSS  = "oss"
	ListS3   = "s3"
)

var listBucket = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParsePrefixList says where the list named by s lives: "oss://bucket/key",
// "s3://bucket/key", or else a file path. It checks only the syntax.
func ParsePrefixList(s string) (kind, bucket, key string, err error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		if strings.TrimSpace(s) == "" {
			return "", "", "", errors.New("empty")
		}
		return ListFile, "", s, nil
	}
	if scheme != ListOSS && scheme != ListS3 {
		return "", "", "", fmt.Errorf("%q: want oss://bucket/key, s3://bucket/key or a file path", s)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	switch {
	case !listBucket.MatchString(bucket):
		return "", "", "", fmt.Errorf("%q: %q is not a bucket name (3-63 lower-case letters, digits, '-', '.')", s, bucket)
	case key == "" || strings.HasSuffix(key, "/"):
		return "", "", "", fmt.Errorf("%q names no object (want %s://%s/path/to/list.txt)", s, scheme, bucket)
	case len(key) > MaxPrefixLen || !utf8.ValidString(key):
		return "", "", "", fmt.Errorf("%q: the key is not a valid object key", s)
	}
	return scheme, bucket, key, nil
}

// NewPrefixList opens the list s names (see ParsePrefixList) through the
// task's clients: an oss:// object through src's client (any bucket it may
// read), an s3:// object through dst's client.
func NewPrefixList(s string, src OSSBucket, dst S3Bucket) (*PrefixList, error) {
	kind, bucket, key, err := ParsePrefixList(s)
	if err != nil {
		return nil, err
	}
	l := &PrefixList{url: s}
	switch kind {
	case ListFile:
		l.open = func(context.Context) (io.ReadCloser, error) {
			f, err := os.Open(key) //nolint:gosec // G304: the operator names this file in the configuration
			if errors.Is(err, os.ErrNotExist) {
				return nil, ErrNoList
			}
			return f, err
		}
	case ListOSS:
		b, err := src.Bucket().Client.Bucket(bucket)
		if err != nil {
			return nil, fmt.Errorf("prefix list %s: %w", s, err)
		}
		l.open = func(ctx context.Context) (io.ReadCloser, error) {
			rc, err := b.GetObject(key, oss.WithContext(ctx), oss.AcceptEncoding("identity"))
			var se oss.ServiceError
			if errors.As(err, &se) && se.StatusCode == 404 {
				return nil, fmt.Errorf("%w (%s)", ErrNoList, se.Code)
			}
			return rc, err
		}
	case ListS3:
		c := dst.Client()
		l.open = func(ctx context.Context) (io.ReadCloser, error) {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			var nsk *types.NoSuchKey
			var nsb *types.NoSuchBucket
			if errors.As(err, &nsk) || errors.As(err, &nsb) {
				return nil, ErrNoList
			}
			if err != nil {
				return nil, err
			}
			return out.Body, nil
		}
	}
	return l, nil
}
