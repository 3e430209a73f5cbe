package transfer

import (
	"errors"
	"fmt"
)

// ErrChecksumMismatch means the bytes read from the source do not match the
// source's own CRC-64 or length; the copy is abandoned and retried.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// ErrThrottled marks an answer that asks the client to slow down (S3's
// SlowDown, a 503 or a 429 from either side): a reason to wait, not a
// failure of the object, so it spends none of the job's attempts.
var ErrThrottled = errors.New("throttled")

// throttledCodes are the error codes that mean "slow down".
var throttledCodes = map[string]bool{
	"SlowDown": true, "ServiceUnavailable": true, "Throttling": true, "ThrottlingException": true,
	"RequestLimitExceeded": true, "TooManyRequests": true, "QpsLimitExceeded": true,
}

// throttled wraps err with ErrThrottled when its HTTP status or error code
// says slow down.
func throttled(status int, code string, err error) error {
	if status == 503 || status == 429 || throttledCodes[code] {
		return fmt.Errorf("%w: %w", ErrThrottled, err)
	}
	return err
}

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
