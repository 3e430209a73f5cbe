package ossevent

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// This file is the grammar half of Parse's JSON reader: one pass over the
// body that checks the whole text against the JSON grammar (as
// encoding/json's scanner does, with its nesting limit). records.go is the
// other half, which keeps only the six members the gateway uses of what
// this half reads, and unescape.go decodes strings and matches member
// names. Together they replaced json.Unmarshal into Record, whose
// reflection, four maps and ObjectMeta cost about 45 allocations and most
// of Parse's time per request. The reader is hand-written rather than a
// library so that the package keeps to the standard library (the Function
// Compute function links it) and so that member-name matching, string
// unescaping and integer decoding follow encoding/json's rules exactly;
// FuzzParseMatchesReference holds it to the json.Unmarshal version it
// replaced.

// maxDepth is encoding/json's nesting limit: 10000 open objects and arrays
// are accepted, one more is "exceeded max depth".
const maxDepth = 10000

// span is a string value in the body, without its quotes.
type span struct {
	start, end int
	esc        bool // holds a backslash escape: unescape before use
}

// syntax is the error for the byte at r.i (or the end of the text) in
// encoding/json's wording, with the byte offset.
func (r *reader) syntax(context string) error {
	if r.i >= len(r.b) {
		return fmt.Errorf("unexpected end of JSON input")
	}
	c, _ := utf8.DecodeRune(r.b[r.i:])
	return fmt.Errorf("invalid character %s %s (byte %d)", quoteRune(c), context, r.i)
}

func quoteRune(c rune) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	s := strconv.Quote(string(c))
	return "'" + s[1:len(s)-1] + "'"
}

// wrongType skips the value at r.i, which has the wrong JSON type for the
// used member structName.field (a path from the document, as encoding/json
// writes it) of Go type t, and keeps encoding/json's error for it if it is

func (r *reader) ws() {
	for r.i < len(r.b) {
		if c := r.b[r.i]; c > ' ' || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return
		}
		r.i++
	}
}

// at reports whether the next byte is c, after whitespace.
func (r *reader) at(c byte) bool {
	r.ws()
	return r.i < len(r.b) && r.b[r.i] == c
}

// enter consumes the '{' or '[' at r.i and reports whether the container is
// empty (its closing bracket consumed too).
func (r *reader) enter(closing byte) (empty bool, err error) {
	r.depth++
	if r.depth > maxDepth {
		return false, fmt.Errorf("exceeded max depth (byte %d)", r.i)
	}
	r.i++
	if r.at(closing) {
		r.i++
		r.depth--
		return true, nil
	}
	return false, nil
}

// next reads what follows a member or element: ',' (more) or the closing
// bracket (done).
func (r *reader) next(closing byte) (done bool, err error) {
	r.ws()
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case ',':
			r.i++
			return false, nil
		case closing:
			r.i++
			r.depth--
			return true, nil
		}
	}
	if closing == '}' {
		return false, r.syntax("after object key:value pair")
	}
	return false, r.syntax("after array element")
}

// member reads `"name":` and leaves r.i at the value. The name is unescaped;
// it is valid until the next call.
func (r *reader) member() ([]byte, error) {
	if !r.at('"') {
		return nil, r.syntax("looking for beginning of object key string")
	}
	s, err := r.str()
	if err != nil {
		return nil, err
	}
	name := r.b[s.start:s.end]
	if s.esc {
		name = appendUnescaped(r.key[:0], name)
	}
	if !r.at(':') {
		return nil, r.syntax("after object key")
	}
	r.i++
	r.ws()
	if r.i >= len(r.b) {
		return nil, r.syntax("")
	}
	return name, nil
}

// strSafe: bytes that may stand for themselves inside a JSON string.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads the string at r.i (its opening quote). The body is known to be
// valid UTF-8.
func (r *reader) str() (span, error) {
	r.i++
	s := span{start: r.i}
	b := r.b
	for i := r.i; i < len(b); {
		c := b[i]
		if strSafe[c] {
			i++
			continue
		}
		switch c {
		case '"':
			s.end = i
			r.i = i + 1
			return s, nil
		case '\\':
			s.esc = true
			if i+1 >= len(b) {
				r.i = len(b)
				return s, r.syntax("")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) {
						r.i = k
						return s, r.syntax("")
					}
					if _, ok := unhex(b[k]); !ok {
						r.i = k
						return s, r.syntax("in \\u hexadecimal character escape")
					}
				}
				i += 6
			default:
				r.i = i + 1
				return s, r.syntax("in string escape code")
			}
		default: // a control character
			r.i = i
			return s, r.syntax("in string literal")
		}
	}
	r.i = len(b)
	return s, r.syntax("")
}

// literal reads true, false or null at r.i.
func (r *reader) literal() error {
	var want string
	switch r.b[r.i] {
	case 't':
		want = "true"
	case 'f':
		want = "false"
	default:
		want = "null"
	}
	for k := 1; k < len(want); k++ {
		r.i++
		if r.i >= len(r.b) || r.b[r.i] != want[k] {
			return r.syntax(fmt.Sprintf("in literal %s (expecting %s)", want, quoteRune(rune(want[k]))))
		}
	}
	r.i++
	return nil
}

// number reads the number at r.i and reports whether it has neither a
// fraction nor an exponent.
func (r *reader) number() (integer bool, err error) {
	b := r.b
	i := r.i
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i >= len(b):
		r.i = i
		return false, r.syntax("")
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		r.i = i
		return false, r.syntax("in numeric literal")
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		if digits() == 0 {
			r.i = i
			return false, r.syntax("after decimal point in numeric literal")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			r.i = i
			return false, r.syntax("in exponent of numeric literal")
		}
	}
	r.i = i
	return integer, nil
}

// skip reads any value at r.i, checking its syntax only.
func (r *reader) skip() error {
	switch c := r.b[r.i]; {
	case c == '{':
		empty, err := r.enter('}')
		if err != nil || empty {
			return err
		}
		for {
			if _, err := r.member(); err != nil {
				return err
			}
			if err := r.skip(); err != nil {
				return err
			}
			if done, err := r.next('}'); err != nil || done {
				return err
			}
		}
	case c == '[':
		empty, err := r.enter(']')
		if err != nil || empty {
			return err
		}
		for {
			r.ws()
			if r.i >= len(r.b) {
				return r.syntax("")
			}
			if err := r.skip(); err != nil {
				return err
			}
			if done, err := r.next(']'); err != nil || done {
				return err
			}
		}
	case c == '"':
		_, err := r.str()
		return err
	case c == 't' || c == 'f' || c == 'n':
		return r.literal()
	case c == '-' || c >= '0' && c <= '9':
		_, err := r.number()
		return err
	}
	return r.syntax("looking for beginning of value")
}
