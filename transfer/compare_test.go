package transfer_test

import (
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

// TestNeedCopy lists every case the one copy decision knows.
func TestNeedCopy(t *testing.T) {
	t.Parallel()
	const (
		md5a = "0cc175b9c0f1b6a831c399e269772661"
		md5b = "92eb5ffee6ae2fec3ad71c777531578f"
		mp   = "9B2CF535F27731C974343645A3985328-3" // a multipart ETag
	)
	obj := func(size int64, etag string) *transfer.ObjectInfo {
		return &transfer.ObjectInfo{Size: size, ETag: etag, ObjectType: "Normal"}
	}
	ours := func(size int64, etag, srcETag, srcCRC string) *transfer.ObjectInfo {
		m := map[string]string{transfer.MetaSourceETag: srcETag}
		if srcCRC != "" {
			m[transfer.MetaSourceCRC64] = srcCRC
		}
		return &transfer.ObjectInfo{Size: size, ETag: etag, Meta: m}
	}
	withCRC := func(i *transfer.ObjectInfo, crc uint64) *transfer.ObjectInfo {
		i.CRC64, i.HasCRC64 = crc, true
		return i
	}
	typed := func(i *transfer.ObjectInfo, t string) *transfer.ObjectInfo { i.ObjectType = t; return i }
	etag := transfer.CompareOptions{Verify: transfer.VerifyETag}
	identity := transfer.CompareOptions{Verify: transfer.VerifyIdentity}
	for _, c := range []struct {
		name     string
		src, dst *transfer.ObjectInfo
		seen     transfer.Seen
		o        transfer.CompareOptions
		want     transfer.Decision
		why      string
	}{
		{"missing", obj(1, md5a), nil, transfer.Headed, identity, transfer.Different, "missing"},
		{"sizes differ in a listing", obj(1, md5a), obj(2, md5a), transfer.Listed, etag, transfer.Different, "size"},
		{"sizes differ after a HEAD, even with our identity", obj(1, mp), ours(2, "x", mp, ""), transfer.Headed, identity, transfer.Different, "size"},
		{"both plain MD5s, equal", obj(1, md5a), obj(1, md5a), transfer.Listed, etag, transfer.Same, "md5"},
		{"both plain MD5s, equal but for case", obj(1, md5a), obj(1, "0CC175B9C0F1B6A831C399E269772661"), transfer.Listed, etag, transfer.Same, "md5"},
		{"both plain MD5s, different: a same-size overwrite", obj(1, md5a), obj(1, md5b), transfer.Listed, etag, transfer.Different, "md5"},
		{"destination ETags are not MD5s (SSE-KMS)", obj(1, md5a), obj(1, md5a), transfer.Listed,
			transfer.CompareOptions{ETagsNotMD5: true}, transfer.NeedHead, "etag not comparable"},
		{"multipart source ETag: a listing cannot tell", obj(1, mp), obj(1, md5a), transfer.Listed, etag, transfer.NeedHead, "etag not comparable"},
		{"multipart destination ETag: a listing cannot tell", obj(1, md5a), obj(1, mp), transfer.Listed, etag, transfer.NeedHead, "etag not comparable"},
		{"an Appendable object's ETag is not its MD5", typed(obj(1, md5a), transfer.ObjectTypeAppendable), obj(1, md5a), transfer.Listed, etag,
			transfer.NeedHead, "etag not comparable"},
		{"our identity, same version", obj(1, mp), ours(1, "x", mp, ""), transfer.Headed, etag, transfer.Same, "source identity"},
		{"our identity, another version", obj(1, mp), ours(1, "x", md5a, ""), transfer.Headed, etag, transfer.Different, "source identity etag"},
		{"our identity, same ETag, CRC-64 differs", withCRC(obj(1, mp), 7), ours(1, "x", mp, "8"), transfer.Headed, etag,
			transfer.Different, "source identity crc64"},
		{"our identity, same ETag and CRC-64", withCRC(obj(1, mp), 7), ours(1, "x", mp, "7"), transfer.Headed, identity, transfer.Same, "source identity"},
		{"our identity, source CRC unknown", obj(1, mp), ours(1, "x", mp, "7"), transfer.Headed, identity, transfer.Same, "source identity"},
		{"not ours, verify: identity (the workers)", obj(1, md5a), obj(1, md5a), transfer.Headed, identity,
			transfer.Different, "not written by oss2s3 (verify: identity)"},
		{"not ours, verify: size", obj(1, mp), obj(1, "x"), transfer.Headed, transfer.CompareOptions{Verify: transfer.VerifySize},
			transfer.Same, "size (verify: size)"},
		{"not ours, verify: etag", obj(1, mp), obj(1, "x"), transfer.Headed, etag, transfer.Different,
			"not written by oss2s3, etag not comparable (verify: etag)"},
		{"not ours, verify unset is etag", obj(1, mp), obj(1, "x"), transfer.Headed, transfer.CompareOptions{}, transfer.Different,
			"not written by oss2s3, etag not comparable (verify: etag)"},
		{"not ours, verify: content", obj(1, mp), obj(1, "x"), transfer.Headed, transfer.CompareOptions{Verify: transfer.VerifyContent},
			transfer.NeedContent, "not written by oss2s3 (verify: content)"},
		{"compare: false copies without looking", obj(1, mp), ours(1, "x", mp, ""), transfer.Headed,
			transfer.CompareOptions{Verify: transfer.VerifyIdentity, NoCompare: true}, transfer.Different, "compare: false"},
		{"copy_all copies whatever is there", obj(1, md5a), obj(1, md5a), transfer.Listed,
			transfer.CompareOptions{CopyAll: true}, transfer.Different, "copy_all"},
		{"a symlink the task skips", typed(obj(1, md5a), transfer.ObjectTypeSymlink), nil, transfer.Headed,
			transfer.CompareOptions{SkipSymlinks: true, CopyAll: true}, transfer.Skip, "symlink (symlinks: skip)"},
		{"a symlink's listed size is the link's, and its ETag no MD5 of the target", typed(obj(1, md5a), transfer.ObjectTypeSymlink), obj(500, md5a),
			transfer.Listed, etag, transfer.NeedHead, "etag not comparable"},
		{"a followed symlink, copied: our identity", typed(obj(500, md5a), transfer.ObjectTypeSymlink), ours(500, "y", md5a, ""),
			transfer.Headed, identity, transfer.Same, "source identity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, why := transfer.NeedCopy(c.src, c.dst, c.seen, c.o)
			if got != c.want || why != c.why {
				t.Fatalf("NeedCopy = %v (%s), want %v (%s)", got, why, c.want, c.why)
			}
		})
	}
	if !transfer.CompareOptions.Looks(etag) || (transfer.CompareOptions{NoCompare: true}).Looks() || (transfer.CompareOptions{CopyAll: true}).Looks() {
		t.Fatal("Looks: only compare: false and copy_all spare the look")
	}
}

// Only 32 hex digits, either case, are a plain MD5: a multipart ETag, a
// longer or shorter string, or 32 characters with one not hex are not.
func TestIsPlainMD5(t *testing.T) {
	t.Parallel()
	for etag, want := range map[string]bool{
		"0123456789abcdef0123456789ABCDEF":   true,
		"d41d8cd98f00b204e9800998ecf8427e":   true,
		"d41d8cd98f00b204e9800998ecf8427":    false,
		"d41d8cd98f00b204e9800998ecf8427e0":  false,
		"d41d8cd98f00b204e9800998ecf8427g":   false,
		"g41d8cd98f00b204e9800998ecf8427e":   false,
		"d41d8cd98f00b204-9800998ecf8427e":   false,
		"d41d8cd98f00b204e9800998ecf842-3":   false,
		"":                                   false,
		"d41d8cd98f00b204e9800998ecf8427e-2": false,
	} {
		if got := transfer.IsPlainMD5(etag); got != want {
			t.Errorf("IsPlainMD5(%q) = %v, want %v", etag, got, want)
		}
	}
}
