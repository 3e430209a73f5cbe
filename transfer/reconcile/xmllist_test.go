package reconcile

import (
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
