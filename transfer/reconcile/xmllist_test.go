package reconcile

import (
	"fmt"
	"testing"
)

func TestParseListing(t *testing.T) {
	body := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult><Name>b</Name><Prefix>a%2Fb</Prefix><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<NextContinuationToken>tok%2B1</NextContinuationToken>
<Contents><Key>a%2Fb%20c%2B%26%3C.txt</Key><LastModified>2026-11-25T10:00:00.000Z</LastModified><ETag>&quot;0123456789ABCDEF0123456789ABCDEF&quot;</ETag><Type>Normal</Type><Size>42</Size><StorageClass>Standard</StorageClass><Owner><ID>1</ID></Owner></Contents>
<Contents><Key>%E2%82%AC</Key><ETag>"X-2"</ETag><Size>0</Size></Contents>
<CommonPrefixes><Prefix>a%2Fd%2F</Prefix></CommonPrefixes>
</ListBucketResult>`)
	p, err := parseListing(body, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.entries) != 2 || !p.truncated || p.next != "tok+1" || len(p.prefixes) != 1 || p.prefixes[0] != "a/d/" {
		t.Fatalf("page %+v", p)
	}
	e := p.entries[0]
	if e.Key != "a/b c+&<.txt" || e.Size != 42 || e.ETag != "0123456789ABCDEF0123456789ABCDEF" || e.StorageClass != "Standard" ||
		e.ObjectType != "Normal" || e.LastModified.IsZero() {
		t.Fatalf("entry %+v", e)
	}
	if p.entries[1].Key != "€" || p.entries[1].ETag != "X-2" {
		t.Fatalf("entry %+v", p.entries[1])
	}
	// Without url encoding, keys are only XML-escaped; an S3 token is opaque.
	p, err = parseListing([]byte(`<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>a%2B</NextContinuationToken><Contents><Key>x &amp; &lt;y&gt;</Key><Size>1</Size></Contents></ListBucketResult>`), false, nil)
	if err != nil || p.entries[0].Key != "x & <y>" || p.next != "a%2B" {
		t.Fatalf("page %+v, %v", p, err)
	}
	for _, bad := range []string{
		`<ListBucketResult><Contents><Key>a</Key>`,
		`<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>`,
		`<ListBucketResult><Contents><Key>a</Key><Size>x</Size></Contents></ListBucketResult>`,
		`<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>`,
		`<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>%zz</Key></Contents></ListBucketResult>`,
	} {
		if _, err := parseListing([]byte(bad), true, nil); err == nil {
			t.Errorf("parseListing(%s) succeeded", bad)
		}
	}
}

// BenchmarkParseListing parses a page of 1,000 entries as the emulator's
// S3 API writes them.
func BenchmarkParseListing(b *testing.B) {
	var body []byte
	body = append(body, `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>dst</Name><Prefix></Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>`...)
	for i := range 1000 {
		body = fmt.Appendf(body, `<Contents><Key>g%011d</Key><LastModified>2026-12-05T20:44:46.000Z</LastModified><ETag>&#34;0123456789ABCDEF0123456789ABCDEF&#34;</ETag><Size>%d</Size><Owner><ID>1</ID><DisplayName>o</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents>`, i, 1+i%4096)
	}
	body = append(body, `<NextContinuationToken>g00000000999</NextContinuationToken></ListBucketResult>`...)
	var es []Entry
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		p, err := parseListing(body, false, es)
		if err != nil || len(p.entries) != 1000 {
			b.Fatal(err, len(p.entries))
		}
		es = p.entries
	}
}

// S3's shape: ETags quoted as &#34;, an <Owner> nested in each entry,
// the top-level fields after the entries; a field's first text wins.
func TestParseListingS3Shape(t *testing.T) {
	body := []byte(`<ListBucketResult><IsTruncated>false</IsTruncated>` +
		`<Contents><Key>a</Key><ETag>&#34;E1&#34;</ETag><Size>3</Size><Owner><ID>9</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>` +
		`<Contents><Key>b</Key><Key>not this one</Key><ETag>"E2"</ETag><Size>4</Size></Contents>` +
		`<Contents><Key>c</Key><ETag>&#34;a&amp;b&#34;</ETag><Size>5</Size></Contents>` +
		`<EncodingType>url</EncodingType></ListBucketResult>`)
	p, err := parseListing(body, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{Key: "a", ETag: "E1", Size: 3, StorageClass: "STANDARD"}, {Key: "b", ETag: "E2", Size: 4}, {Key: "c", ETag: "a&b", Size: 5}}
	if len(p.entries) != len(want) || p.truncated {
		t.Fatalf("page %+v", p)
	}
	for i, w := range want {
		if p.entries[i] != w {
			t.Errorf("entry %d = %+v, want %+v", i, p.entries[i], w)
		}
	}
}
