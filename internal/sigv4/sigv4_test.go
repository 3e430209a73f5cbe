package sigv4_test

import (
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/oss2s3/oss2s3/internal/sigv4"
)

func TestCanonicalForms(t *testing.T) {
	t.Parallel()
	if got := sigv4.URIEncode("a b/ü~*", false); got != "a%20b/%C3%BC~%2A" {
		t.Errorf("URIEncode = %q", got)
	}
	if got := sigv4.URIEncode("a/b", true); got != "a%2Fb" {
		t.Errorf("URIEncode(slash) = %q", got)
	}
	q := url.Values{"prefix": {"b c"}, "list-type": {"2"}, "a": {"2", "1"}}
	if got := sigv4.CanonicalQuery(q); got != "a=1&a=2&list-type=2&prefix=b%20c" {
		t.Errorf("CanonicalQuery = %q", got)
	}
	r := httptest.NewRequest("GET", "http://example.com/", nil)
	r.Header.Set("X-Amz-Date", "20260101T000000Z")
	r.Header.Set("X-Amz-Meta-Note", "  two   spaces  ")
	if got := sigv4.CanonicalHeaders(r, []string{"host", "x-amz-date", "x-amz-meta-note"}); got != "host:example.com\nx-amz-date:20260101T000000Z\nx-amz-meta-note:two spaces\n" {
		t.Errorf("CanonicalHeaders = %q", got)
	}
}
