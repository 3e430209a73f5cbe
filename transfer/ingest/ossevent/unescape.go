package ossevent

import (
	"bytes"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is how Parse's reader decodes what it keeps as encoding/json
// would: string values unescaped, member names matched to fields.

func unhex(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10), true
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var v rune
	for _, c := range s[2:6] {
		d, ok := unhex(c)
		if !ok {
			return -1
		}
		v = v<<4 | d
	}
	return v
}

// appendUnescaped appends the value of a string literal's contents (already
// checked by str) as encoding/json decodes it: a surrogate escape that is
// not half of a pair becomes U+FFFD (Parse rejects those before).
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(dst, s[i:]...)
			}
			dst = append(dst, s[i:i+j]...)
			i += j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			rr := getu4(s[i:])
			if utf16.IsSurrogate(rr) {
				if dec := utf16.DecodeRune(rr, getu4(s[i+6:])); dec != unicode.ReplacementChar {
					dst = utf8.AppendRune(dst, dec)
					i += 12
					continue
				}
				rr = unicode.ReplacementChar
			}
			dst = utf8.AppendRune(dst, rr)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

// nameIs reports whether a member name selects the field named want, as
// encoding/json matches names: exactly or else by bytes.EqualFold (so
// "KEY" and "\u212Aey", with a Kelvin sign, are "key" too).
func nameIs(name []byte, want string) bool {
	// Fast answers for an ASCII first letter (every want starts with a
	// lower-case letter, and c|0x20 is one only for a letter).
	if len(name) > 0 && name[0] < utf8.RuneSelf {
		if name[0]|0x20 != want[0] {
			return false
		}
		if string(name) == want {
			return true
		}
	}
	if len(name) != len(want) {
		// Only a non-ASCII rune (K, ſ) can fold to an ASCII letter, and
		// it is longer.
		if len(name) < len(want) || ascii(name) {
			return false
		}
	}
	return bytes.EqualFold(name, []byte(want))
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
