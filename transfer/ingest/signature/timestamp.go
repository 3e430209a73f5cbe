package signature

import (
	"strconv"
	"strings"
)

// Timestamp returns the t= of a signature header (unix seconds), the time
// the sender signed at: with the body, what a replay of the request
// repeats. It does not verify anything; call it on a header Verify
// accepted.
func Timestamp(header string) (int64, bool) {
	for rest, more := header, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == "t" {
			sec, err := strconv.ParseInt(v, 10, 64)
			return sec, err == nil
		}
	}
	return 0, false
}
