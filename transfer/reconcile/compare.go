package reconcile

// Compare: the pure decision whether a destination object is the source's
// version, from the listings or from a HEAD.

import (
	"strconv"

	"github.com/oss2s3/oss2s3/transfer"
)

// The diff's comparisons are transfer's one copy decision (NeedCopy, whose
// comment has the rules): Compare asks it with the two listing entries,
// and answers Same or Different when the listing suffices, NeedHead when
// it does not; Decide asks it again with the destination's HEAD.

// Verdict is the copy decision.
type Verdict = transfer.Decision

// Verdicts.
const (
	Same        = transfer.Same
	Different   = transfer.Different
	NeedHead    = transfer.NeedHead
	NeedContent = transfer.NeedContent
)

// Verify modes: what proves an object oss2s3 did not write is current.
const (
	VerifySize    = transfer.VerifySize
	VerifyETag    = transfer.VerifyETag
	VerifyContent = transfer.VerifyContent
)

// CompareOptions are the task settings Compare needs (Verify,
// ETagsNotMD5).
type CompareOptions = transfer.CompareOptions

// Compare decides from the two listing entries alone; why says which rule
// decided.
func Compare(src, dst Entry, o CompareOptions) (v Verdict, why string) {
	s, d := src.info(), dst.info()
	return transfer.NeedCopy(&s, &d, transfer.Listed, o)
}

// Decide finishes a NeedHead comparison with the destination's HEAD;
// srcCRC64 is the source's CRC-64 when known ("" if not).
func Decide(src Entry, srcCRC64 string, head *transfer.ObjectInfo, o CompareOptions) (v Verdict, why string) {
	s := src.info()
	if c, err := strconv.ParseUint(srcCRC64, 10, 64); err == nil {
		s.CRC64, s.HasCRC64 = c, true
	}
	return transfer.NeedCopy(&s, head, transfer.Headed, o)
}

// info is what the copy decision needs of a listing entry.
func (e Entry) info() transfer.ObjectInfo {
	return transfer.ObjectInfo{Key: e.Key, Size: e.Size, ETag: e.ETag, ObjectType: e.ObjectType}
}

// IsPlainMD5 reports whether an ETag is a bare MD5 (32 hex digits).
func IsPlainMD5(etag string) bool { return transfer.IsPlainMD5(etag) }

func crcString(info *transfer.ObjectInfo) string {
	if info == nil || !info.HasCRC64 {
		return ""
	}
	return strconv.FormatUint(info.CRC64, 10)
}
