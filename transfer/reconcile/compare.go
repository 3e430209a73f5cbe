package reconcile

import (
	"strconv"
	"strings"

	"github.com/oss2s3/oss2s3/transfer"
)

// How the diff decides whether a destination object is the source's
// version. S3's ListObjectsV2 returns no user metadata, so the listing
// alone can prove only what sizes and ETags prove; everything else needs a
// HEAD of the destination (or, as a last resort, reading both):
//
//  1. Sizes differ: different. No request.
//  2. Both ETags are plain MD5s (32 hex digits: a single-part upload, no
//     SSE-KMS at the destination) and equal: same. Different MD5s:
//     different. No request. This finds a same-size overwrite: the new
//     content has a new MD5.
//  3. Otherwise (a multipart ETag on either side, or a destination whose
//     ETags are not MD5s) the destination is HEADed, and only then, when
//     the sizes already match:
//     - it carries oss2s3's source identity (x-amz-meta-oss2s3-source-etag,
//     written on every copy): same iff that ETag (and the CRC-64, when
//     the source listing knows it) is the source's. Our own copies are
//     therefore judged exactly, however they were uploaded.
//     - it does not (written by someone else): Verify decides. "size":
//     same (the size matched); "etag" (the default): different, so the
//     copy is made again and carries the identity from then on;
//     "content": both are read and their CRC-64s compared.
//
// Compare is the pure part: it answers Same or Different when the listing
// suffices, and NeedHead when it does not; Decide finishes with the HEAD.
type Verdict int

// Verdicts.
const (
	Same Verdict = iota
	Different
	NeedHead
	NeedContent
)

func (v Verdict) String() string {
	return [...]string{"same", "different", "need_head", "need_content"}[v]
}

// Verify modes: what proves an object oss2s3 did not write is current.
const (
	VerifySize    = "size"
	VerifyETag    = "etag"
	VerifyContent = "content"
)

// CompareOptions are the task settings Compare needs.
type CompareOptions struct {
	Verify string // VerifySize, VerifyETag (default) or VerifyContent
	// ETagsNotMD5 says the destination's ETags are not content MD5s even
	// when they look like one (SSE-KMS).
	ETagsNotMD5 bool
}

// Compare decides from the two listing entries alone; why says which rule
// decided.
func Compare(src, dst Entry, o CompareOptions) (v Verdict, why string) {
	if src.Size != dst.Size {
		return Different, "size"
	}
	if !o.ETagsNotMD5 && IsPlainMD5(src.ETag) && IsPlainMD5(dst.ETag) {
		if strings.EqualFold(src.ETag, dst.ETag) {
			return Same, "md5"
		}
		return Different, "md5"
	}
	return NeedHead, "etag not comparable"
}

// Decide finishes a NeedHead comparison with the destination's HEAD.
func Decide(src Entry, srcCRC64 string, head *transfer.ObjectInfo, o CompareOptions) (v Verdict, why string) {
	if head.Size != src.Size {
		return Different, "size"
	}
	if id := head.Meta[transfer.MetaSourceETag]; id != "" {
		if id != src.ETag {
			return Different, "source identity etag"
		}
		if c := head.Meta[transfer.MetaSourceCRC64]; c != "" && srcCRC64 != "" && c != srcCRC64 {
			return Different, "source identity crc64"
		}
		return Same, "source identity"
	}
	switch o.Verify {
	case VerifySize:
		return Same, "size (verify: size)"
	case VerifyContent:
		return NeedContent, "not written by oss2s3 (verify: content)"
	}
	return Different, "not written by oss2s3, etag not comparable (verify: etag)"
}

// IsPlainMD5 reports whether an ETag is a bare MD5 (32 hex digits), as
// single-part uploads to OSS and to S3 without SSE-KMS have.
func IsPlainMD5(etag string) bool {
	if len(etag) != 32 {
		return false
	}
	for i := 0; i < len(etag); i++ {
		c := etag[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func crcString(info *transfer.ObjectInfo) string {
	if info == nil || !info.HasCRC64 {
		return ""
	}
	return strconv.FormatUint(info.CRC64, 10)
}
