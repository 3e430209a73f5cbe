package transfer

import (
	"errors"
	"fmt"
)

// ErrChecksumMismatch means the bytes read from the source do not match the
// source's own CRC-64 or length; the copy is abandoned and retried.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// ErrExists means a create-only write found the key already there.
var ErrExists = errors.New("destination object exists")

// permanentError marks an error that no retry can fix (access denied, no
// such bucket): the job goes to the dead-letter queue at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying will not fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

func mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrChecksumMismatch}, args...)...)
}
