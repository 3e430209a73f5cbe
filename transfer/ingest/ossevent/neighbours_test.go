package ossevent_test

import (
	"testing"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// TestParseNeighboursMatchReference runs the differential check (see
// FuzzParseMatchesReference) on every text one step away from the seeds:
// each prefix (a body cut short at every byte), and each body with one
// byte replaced by a byte that means something to a JSON reader. A reader
// that reads one byte too far, or stops one short, disagrees with
// encoding/json on one of them, without -fuzz. The cost is the square of
// a seed's length: prefixes are taken of the seeds up to 700 bytes,
// replacements in those up to 200 (the short seeds are the syntax cases).
func TestParseNeighboursMatchReference(t *testing.T) {
	t.Parallel()
	// Texts that are no document at all are said to be what they are.
	for _, b := range []string{`\ud800`, `"\ud800"`, `\udc00{}`, ` \ud800`} {
		checkAgainstReference(t, []byte(b))
	}
	seeds := append([]string{seedDocument}, differentialSeeds...)
	const meaningful = "\"\\{}],:0e-"
	for _, s := range seeds {
		if len(s) > 700 {
			continue // quadratic: the long seeds test the record cap, not syntax
		}
		for i := range len(s) + 1 {
			checkAgainstReference(t, []byte(s[:i]))
		}
		if len(s) > 200 {
			continue
		}
		for i := range len(s) {
			for _, c := range []byte(meaningful) {
				if s[i] == c {
					continue
				}
				b := []byte(s)
				b[i] = c
				checkAgainstReference(t, b)
			}
		}
	}
}

// LoneSurrogate finds the first \uD800-\uDFFF escape that is not a high
// surrogate followed by a low one, and only that, wherever it lies.
func TestLoneSurrogate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text string
		want int
	}{
		{``, -1},
		{`abc`, -1},
		{`ab\`, -1},
		{`\u12`, -1},
		{`\ud800`, 0},
		{`x\ud800`, 1},
		{`xyz\ud80`, -1},
		{`\udc00`, 0},
		{`\udfff`, 0},
		{`\ud7ff\ue000`, -1},
		{`\ud800\udc00`, -1},
		{`\ud800\udfff`, -1},
		{`\uD800\uDC00`, -1},
		{`\uDBFF`, 0},
		{`\uDFFF`, 0},
		{`\uDBFF\uDFFF`, -1},
		{`\ud800\udbff`, 0},
		{`\ud800\ue000`, 0},
		{`\ud800\u0041`, 0},
		{`\ud800\n\udc00`, 0},
		{`\ud800\udc0`, 0},
		{`\ud800\udc00\udc00`, 12},
		{`\ud800\udc00x`, -1},
		{`\\ud800`, -1},
		{`\\\ud800`, 2},
		{`a\"\ud800`, 3},
		{`\uzzzz\ud800`, 6},
		{`\u0041\ud800`, 6},
		{`\u0041\u0042`, -1},
		{`"k\u00e9y"`, -1},
	} {
		if got := ossevent.LoneSurrogate([]byte(tc.text)); got != tc.want {
			t.Errorf("LoneSurrogate(%s) = %d, want %d", tc.text, got, tc.want)
		}
	}
}

// A syntax error says what encoding/json says, and at which byte: the
// sender's log shows where its document went wrong.
func TestParseSyntaxErrorsSayWhatAndWhere(t *testing.T) {
	t.Parallel()
	const p = "not an OSS event document: "
	for body, want := range map[string]string{
		`{"events":[`:               p + "unexpected end of JSON input",
		`{"events":[] x}`:           p + "invalid character 'x' after object key:value pair (byte 13)",
		`{"events":[{} x]}`:         p + "invalid character 'x' after array element (byte 14)",
		`{"events":[{"a":"\x"}]}`:   p + "invalid character 'x' in string escape code (byte 18)",
		`{"events":[{"a":"b\qc"}]}`: p + "invalid character 'q' in string escape code (byte 19)",
	} {
		if _, err := ossevent.Parse([]byte(body)); err == nil || err.Error() != want {
			t.Errorf("Parse(%s) = %v, want %q", body, err, want)
		}
	}
}
