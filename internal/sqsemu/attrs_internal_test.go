package sqsemu

import "testing"

func TestAttrsMD5(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	tests := []struct {
		name  string
		attrs map[string]msgAttr
		want  string
	}{
		{
			// A message as real SQS returned it (body "foobar2", MD5OfBody
			// cbac77acf401ef89c3297bd9fc41ec0b), kept as a fixture in a
			// public SQS consumer's tests.
			name:  "RealSQSFixture",
			attrs: map[string]msgAttr{"AtTimestamp": {DataType: "String", StringValue: str("2021-02-15T12:00:33+09:00")}},
			want:  "9fd5e217089075be61cd1d67e35e5117",
		},
		{name: "NoAttributes", attrs: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := attrsMD5(tt.attrs); got != tt.want {
				t.Fatalf("attrsMD5 = %q, want %q", got, tt.want)
			}
		})
	}
	if got := md5Hex("foobar2"); got != "cbac77acf401ef89c3297bd9fc41ec0b" {
		t.Fatalf("md5Hex = %q", got)
	}
}

func TestReceiptHandleRoundTrip(t *testing.T) {
	t.Parallel()
	q := &queue{name: "jobs"}
	m := &message{id: newMessageID(), receipt: randomToken()}
	qn, id, tok, ok := parseReceipt(receiptHandle(q, m))
	if !ok || qn != "jobs" || id != m.id || tok != m.receipt {
		t.Fatalf("parseReceipt = %q %q %q %v", qn, id, tok, ok)
	}
	for _, bad := range []string{"", "nonsense", "AQEBgarbage=="} {
		if _, _, _, ok := parseReceipt(bad); ok {
			t.Errorf("parseReceipt(%q) accepted", bad)
		}
	}
}
