package ossevent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

// FuzzParseMatchesReference holds Parse to parseReference, the
// json.Unmarshal parser it replaced: for every body both accept or both
// reject, and on accepted bodies they agree on the six fields the gateway
// uses. The only differences allowed are the two Parse documents:
//   - the types of unused members are not checked: where parseReference
//     rejects only for such a type (a json.UnmarshalTypeError on a member
//     in unusedFields), Parse must agree with parseLeanReference, which
//     decodes into a struct of the used members only;
//   - a used member given twice in one object (as encoding/json matches
//     names) is rejected, where encoding/json takes the last.
//
// Error wording: where the reference gives one of Parse's own messages
// (empty body, UTF-8, lone surrogate, missing or empty "events",
// "events[i]: ...") or encoding/json's error for a used member of the wrong
// type, Parse gives the same; its JSON syntax errors start "not an OSS event
// document: " as the reference's do.
//
// Seeds: the f.Add calls, FuzzParse's corpus and
// testdata/fuzz/FuzzParseMatchesReference.
func FuzzParseMatchesReference(f *testing.F) {
	for _, s := range differentialSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(seedDocument))
	files, _ := filepath.Glob("testdata/fuzz/FuzzParse/*")
	for _, name := range files {
		f.Add(readCorpusFile(f, name))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAgainstReference(t, body)
	})
}

// TestParseMatchesReference runs the differential check on the seeds
// without -fuzz, also under -race in CI.
func TestParseMatchesReference(t *testing.T) {
	t.Parallel()
	for _, s := range differentialSeeds {
		checkAgainstReference(t, []byte(s))
	}
}

func checkAgainstReference(t *testing.T, body []byte) {
	t.Helper()
	got, err := ossevent.Parse(body)
	full, fullErr := parseReference(body)
	lean, leanErr := parseLeanReference(body)

	if duplicateUsedName(body) {
		if err == nil {
			t.Fatalf("accepted a document with a used member given twice: %q", body)
		}
		return
	}
	// Parse against the lean reference: the same decisions, fields and wording.
	switch {
	case (err == nil) != (leanErr == nil):
		t.Fatalf("Parse error %v, lean reference error %v, body %q", err, leanErr, body)
	case err != nil:
		const prefix = "not an OSS event document: "
		lw, gw := leanErr.Error(), err.Error()
		if strings.HasPrefix(lw, prefix) && !strings.HasPrefix(lw, prefix+"lone UTF-16") {
			if !strings.HasPrefix(gw, prefix) || strings.HasPrefix(gw, prefix+"lone UTF-16") {
				t.Fatalf("Parse error %q, want a JSON error like the reference's %q, body %q", gw, lw, body)
			}
		} else if gw != lw {
			t.Fatalf("Parse error %q, want the reference's %q, body %q", gw, lw, body)
		}
	default:
		sameFields(t, got, lean, body)
	}
	// Parse against the full reference: where they differ, it is only for
	// the type of an unused member.
	switch {
	case fullErr == nil && err != nil:
		t.Fatalf("reference accepts, Parse rejects: %v, body %q", err, body)
	case fullErr == nil:
		sameFields(t, got, full, body)
	case err == nil && !unusedTypeError(fullErr):
		t.Fatalf("Parse accepts, the reference rejects with %v, not for an unused member's type: body %q", fullErr, body)
	case errors.As(fullErr, new(*json.UnmarshalTypeError)) && !unusedTypeError(fullErr) && err.Error() != fullErr.Error():
		// The first wrong type is a used member's: Parse names it the same way.
		t.Fatalf("Parse error %q, want the reference's %q, body %q", err, fullErr, body)
	}
}

func sameFields(t *testing.T, got, want *ossevent.Document, body []byte) {
	t.Helper()
	if len(got.Events) != len(want.Events) {
		t.Fatalf("%d records, reference %d: body %q", len(got.Events), len(want.Events), body)
	}
	for i := range want.Events {
		g, w := &got.Events[i], &want.Events[i]
		if g.EventName != w.EventName || g.EventTime != w.EventTime || g.OSS.Bucket.Name != w.OSS.Bucket.Name ||
			g.OSS.Object.Key != w.OSS.Object.Key || g.OSS.Object.ETag != w.OSS.Object.ETag || g.OSS.Object.Size != w.OSS.Object.Size {
			t.Fatalf("record %d: Parse %+v\nreference %+v\nbody %q", i, g, w, body)
		}
	}
}

// readCorpusFile reads one "go test fuzz v1" file of a single []byte.
func readCorpusFile(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	lines := bytes.SplitN(b, []byte("\n"), 2)
	lit := strings.TrimSpace(string(lines[1]))
	lit = strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")")
	s, err := strconv.Unquote(lit)
	if err != nil {
		f.Fatalf("%s: %v", name, err)
	}
	return []byte(s)
}

// rec is one record with the used members spelled out.
func rec(members string) string {
	return `{"eventName":"ObjectCreated:PutObject","oss":{"bucket":{"name":"b"},"object":{` + members + `}}}`
}

func events(records ...string) string {
	return `{"events":[` + strings.Join(records, ",") + `]}`
}

var differentialSeeds = []string{
	// Escapes, in used and unused members and in names.
	events(rec(`"key":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u4e2d\ud83d\ude42"`)),
	events(rec(`"key":"nul\u0000byte"`)),
	events(rec(`"key":"\u0000"`)),
	events(rec(`"k\u0065y":"escaped-name"`)),
	events(rec(`"key":"k","eTag":"\"ABC\""`)),
	events(rec(`"key":"k","x\ud800":"lone in an unused name"`)),
	events(rec(`"key":"bad\x"`)),
	events(rec(`"key":"bad\u12"`)),
	events(rec("\"key\":\"tab\tinside\"")),
	// Case variants and Unicode folding of names (K is U+212A KELVIN SIGN,
	// ſ is U+017F LATIN SMALL LETTER LONG S).
	`{"EVENTS":[{"EventName":"x","OSS":{"Bucket":{"NAME":"b"},"Object":{"KEY":"k","SIZE":3,"ETAG":"e"}}}]}`,
	events(rec(`"\u212Aey":"kelvin","ſize":2`)),
	events(rec("\"\u212aey\":\"kelvin-raw\"")),
	events(rec(`"kéy":"not key"`)),
	// Duplicates of used names, and of unused ones.
	events(rec(`"key":"a","key":"b"`)),
	events(rec(`"key":"a","KEY":"b"`)),
	events(rec(`"key":"a","key":null`)),
	`{"events":[` + rec(`"key":"a"`) + `],"events":[` + rec(`"key":"b"`) + `]}`,
	`{"events":[{"eventName":"x","oss":{"bucket":{"name":"b"}},"oss":{"object":{"key":"k"}}}]}`,
	events(rec(`"key":"a","deltaSize":1,"deltaSize":2`)),
	// null and wrong types in used and unused members.
	events(rec(`"key":"k","size":null`)),
	`{"events":[null]}`,
	`{"events":null}`,
	`null`,
	`[]`,
	`"events"`,
	`{"events":{}}`,
	`{"events":[1]}`,
	`{"events":[{"eventName":"x","oss":null}]}`,
	`{"events":[{"eventName":"x","oss":[]}]}`,
	events(rec(`"key":5`)),
	events(rec(`"key":"k","size":"12"`)),
	events(rec(`"key":"k","eTag":true`)),
	events(rec(`"key":"k","deltaSize":"12"`)),
	events(rec(`"key":"k","objectMeta":7`)),
	events(rec(`"key":"k","objectMeta":{"userMeta":{"a":1}}`)),
	`{"events":[{"eventName":"x","region":5,"requestParameters":[],"oss":{"bucket":{"name":"b","arn":{}},"object":{"key":"k"}}}]}`,
	// Numbers.
	events(rec(`"key":"k","size":1e3`)),
	events(rec(`"key":"k","size":-0`)),
	events(rec(`"key":"k","size":1.0`)),
	events(rec(`"key":"k","size":1.5`)),
	events(rec(`"key":"k","size":9223372036854775807`)),
	events(rec(`"key":"k","size":9223372036854775808`)),
	events(rec(`"key":"k","size":-9223372036854775808`)),
	events(rec(`"key":"k","size":-1`)),
	events(rec(`"key":"k","size":01`)),
	events(rec(`"key":"k","size":-`)),
	events(rec(`"key":"k","size":1.`)),
	events(rec(`"key":"k","size":1e`)),
	events(rec(`"key":"k","size":+1`)),
	events(rec(`"key":"k","deltaSize":1E+400`)),
	// Deep nesting in unused members: at the limit and one past it.
	events(rec(`"key":"k","deep":` + strings.Repeat("[", 9995) + strings.Repeat("]", 9995))),
	events(rec(`"key":"k","deep":` + strings.Repeat("[", 9996) + strings.Repeat("]", 9996))),
	events(rec(`"key":"k","deep":` + strings.Repeat(`{"a":`, 50) + "1" + strings.Repeat("}", 50))),
	// Syntax around the values.
	events(rec(`"key":"k",`)),
	events(rec(`"key":"k"`)) + "\n\t ",
	events(rec(`"key":"k"`)) + " x",
	events(rec(`"key":"k"`))[:40],
	`{"events":[` + rec(`"key":"k"`) + `,]}`,
	`{"events":[` + rec(`"key":"k"`) + `]`,
	`{"events" [1]}`,
	`{events:[]}`,
	`{"events":[],}`,
	`{"a":tru}`,
	`{"a":nul,"events":[]}`,
	"\v{\"events\":[]}",
	"{\"events\":[" + rec(`"key":"k"`) + "]}\u00a0",
	// Several records, one bad.
	events(rec(`"key":"a"`), rec(`"key":"b","size":2`), rec(`"key":"c"`)),
	events(rec(`"key":"a"`), `{"eventName":"x"}`),
	events(rec(`"key":"a"`), rec(`"key":"b","size":"2"`)),
	// Invalid records after, before and among others: the first one is
	// reported, whichever check finds it.
	events(rec(`"key":"a"`), `null`, rec(`"key":"`+strings.Repeat("k", 1024)+`"`)),
	events(`null`, rec(`"key":"a"`)),
	events(`{}`, `{"eventName":"x","eventTime":"bad","oss":{"bucket":{"name":"b"},"object":{"key":"k"}}}`),
	events(`{"eventName":"x","eventTime":"bad","oss":{"bucket":{"name":"b"},"object":{"key":"k"}}}`, `{}`),
	events(rec(`"key":"a","size":-1`), rec(`"key":"`+strings.Repeat("k", 1024)+`"`)),
	events(rec(`"key":"`+strings.Repeat("k", 1024)+`","size":-1`), `{}`),
	events(rec(`"key":"`+strings.Repeat(`\u0041`, 300)+`","size":-1`), `{}`),
	events(rec(`"key":"`+strings.Repeat(`\u0041`, 1024)+`"`), rec(`"key":"a","size":-1`)),
	events(rec(`"key":"a"`), `{"eventName":"x","oss":{"bucket":{"name":"b"}}}`, rec(`"key":5`)),
	events(rec(`"key":"a"`), `{}`, `{"eventName":"x","oss":{"bucket":{"name":"b"},"object":{"key":"k","key":"j"}}}`),
	events(rec(`"key":"a"`), `{}`, rec(`"key":"b"`)+`]`),
	events(rec(`"key":"a"`), `0`, `{}`, `null`),
	`{"events":[0,0,0,{},null]}`,
	// Times.
	`{"events":[{"eventName":"x","eventTime":"2026-11-24T08:00:00.000Z","oss":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`,
	`{"events":[{"eventName":"x","eventTime":"2026-11-24","oss":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`,
}

// TestParseDecisions pins what Parse decides where it could have gone
// either way; FuzzParseMatchesReference checks the rest against the old
// parser.
func TestParseDecisions(t *testing.T) {
	t.Parallel()
	accept := []struct{ name, body, key string }{
		// Names match as encoding/json matches them.
		{"CaseVariantNames", `{"Events":[{"EVENTNAME":"ObjectCreated:PutObject","Oss":{"BUCKET":{"Name":"b"},"oBJECT":{"Key":"k"}}}]}`, "k"},
		{"KelvinSignName", events(rec(`"\u212Aey":"kelvin"`)), "kelvin"},
		{"EscapedName", events(rec(`"\u006bey":"escaped"`)), "escaped"},
		// Unused members are checked for syntax only.
		{"UnusedWrongTypes", events(rec(`"key":"k","deltaSize":"12","objectMeta":[1,{"a":null}]`)), "k"},
		// null leaves a used member unset, as with encoding/json.
		{"NullETag", events(rec(`"key":"k","eTag":null`)), "k"},
	}
	for _, tc := range accept {
		doc, err := ossevent.Parse([]byte(tc.body))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := doc.Events[0].OSS.Object.Key; got != tc.key {
			t.Errorf("%s: key %q, want %q", tc.name, got, tc.key)
		}
	}
	reject := []struct{ name, body, want string }{
		{"DuplicateKey", events(rec(`"key":"a","key":"b"`)), "events[0].oss.object.key is given twice"},
		{"DuplicateKeyOtherCase", events(rec(`"key":"a","KEY":"b"`)), "events[0].oss.object.key is given twice"},
		{"DuplicateEvents", `{"events":[],"events":[]}`, `"events" is given twice`},
		{"DuplicateOSS", `{"events":[{"eventName":"x","oss":{"bucket":{"name":"b"}},"oss":{"object":{"key":"k"}}}]}`, "events[0].oss is given twice"},
		{"SizeString", events(rec(`"key":"k","size":"12"`)), "cannot unmarshal string into Go struct field Object.events.oss.object.size of type int64"},
		{"SizeFraction", events(rec(`"key":"k","size":1.0`)), "cannot unmarshal number 1.0 into Go struct field Object.events.oss.object.size"},
		{"SizeTooLarge", events(rec(`"key":"k","size":9223372036854775808`)), "cannot unmarshal number 9223372036854775808"},
		{"KeyNumber", events(rec(`"key":5`)), "cannot unmarshal number into Go struct field Object.events.oss.object.key of type string"},
		{"EventsObject", `{"events":{}}`, "cannot unmarshal object into Go struct field Document.events of type []ossevent.Record"},
		{"SyntaxBeforeType", events(rec(`"key":5`)) + "]", "after top-level value"},
		{"TooDeep", events(rec(`"key":"k","x":` + strings.Repeat("[", 9996) + strings.Repeat("]", 9996))), "exceeded max depth"},
	}
	for _, tc := range reject {
		_, err := ossevent.Parse([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}
