package reconcile

import (
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

func TestCompare(t *testing.T) {
	const md5a, md5b = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	mp := "0123456789ABCDEF0123456789ABCDEF-3"
	cases := []struct {
		name     string
		src, dst Entry
		o        CompareOptions
		want     Verdict
	}{
		{"sizes differ", Entry{Size: 1, ETag: md5a}, Entry{Size: 2, ETag: md5a}, CompareOptions{}, Different},
		{"same md5", Entry{Size: 5, ETag: md5a}, Entry{Size: 5, ETag: md5a}, CompareOptions{}, Same},
		{"md5 case differs", Entry{Size: 5, ETag: "0123456789ABCDEF0123456789ABCDEF"}, Entry{Size: 5, ETag: md5a}, CompareOptions{}, Same},
		{"same-size overwrite", Entry{Size: 5, ETag: md5b}, Entry{Size: 5, ETag: md5a}, CompareOptions{}, Different},
		{"multipart source", Entry{Size: 5, ETag: mp}, Entry{Size: 5, ETag: md5a}, CompareOptions{}, NeedHead},
		{"multipart destination", Entry{Size: 5, ETag: md5a}, Entry{Size: 5, ETag: mp}, CompareOptions{}, NeedHead},
		{"kms destination", Entry{Size: 5, ETag: md5a}, Entry{Size: 5, ETag: md5a}, CompareOptions{ETagsNotMD5: true}, NeedHead},
		{"kms destination, sizes differ", Entry{Size: 5, ETag: md5a}, Entry{Size: 6, ETag: md5a}, CompareOptions{ETagsNotMD5: true}, Different},
	}
	for _, c := range cases {
		if got, why := Compare(c.src, c.dst, c.o); got != c.want {
			t.Errorf("%s: Compare = %v (%s), want %v", c.name, got, why, c.want)
		}
	}
}

func TestDecide(t *testing.T) {
	src := Entry{Key: "k", Size: 5, ETag: "E-2"}
	ours := func(etag, crc string) *transfer.ObjectInfo {
		m := map[string]string{transfer.MetaSourceETag: etag}
		if crc != "" {
			m[transfer.MetaSourceCRC64] = crc
		}
		return &transfer.ObjectInfo{Size: 5, ETag: "X-1", Meta: m}
	}
	foreign := &transfer.ObjectInfo{Size: 5, ETag: "X-1", Meta: map[string]string{}}
	cases := []struct {
		name   string
		crc    string
		head   *transfer.ObjectInfo
		verify string
		want   Verdict
	}{
		{"our copy of this version", "", ours("E-2", ""), "", Same},
		{"our copy of an older version", "", ours("OLD-2", ""), "", Different},
		{"our copy, crc agrees", "77", ours("E-2", "77"), "", Same},
		{"our copy, crc disagrees", "78", ours("E-2", "77"), "", Different},
		{"our copy, head size differs", "", &transfer.ObjectInfo{Size: 6, Meta: map[string]string{transfer.MetaSourceETag: "E-2"}}, "", Different},
		{"foreign, verify etag", "", foreign, VerifyETag, Different},
		{"foreign, verify default", "", foreign, "", Different},
		{"foreign, verify size", "", foreign, VerifySize, Same},
		{"foreign, verify content", "", foreign, VerifyContent, NeedContent},
	}
	for _, c := range cases {
		if got, why := Decide(src, c.crc, c.head, CompareOptions{Verify: c.verify}); got != c.want {
			t.Errorf("%s: Decide = %v (%s), want %v", c.name, got, why, c.want)
		}
	}
}

func TestRanges(t *testing.T) {
	got := Ranges([]string{"b/", "a/x/", "a/", "c", "a/", "ab", "c/d"})
	want := []string{"a/", "ab", "b/", "c"}
	if len(got) != len(want) {
		t.Fatalf("Ranges = %v, want prefixes %v", got, want)
	}
	for i := range want {
		if got[i].Prefix != want[i] {
			t.Fatalf("Ranges = %v, want prefixes %v", got, want)
		}
	}
	if r := Ranges(nil); len(r) != 1 || r[0].Prefix != "" {
		t.Fatalf("Ranges(nil) = %v, want the whole bucket", r)
	}
}
