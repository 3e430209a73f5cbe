package transfer

import (
	"strconv"
	"strings"
)

// The copy decision: is the destination object already the source's
// version? One rule, for the workers (before a copy, and when a completed
// upload is found), the copier (a create-only write that found the key) and
// the reconciler (from the two listings, then from a HEAD). S3's
// ListObjectsV2 returns no user metadata, so a listing alone proves only
// what sizes and ETags prove; everything else needs a HEAD of the
// destination (or, as a last resort, reading both):
//
//  0. A symlink the task skips: skip. copy_all or compare: false: copy,
//     without looking.
//  1. Sizes differ: different. (Not for a symlink in a listing: its size
//     there is the link's, not its target's.)
//  2. Listed, and both ETags are plain MD5s (32 hex digits: a single-part
//     upload, no SSE-KMS at the destination) of a Normal source object:
//     equal, same; not, different. An Appendable object's ETag is not its
//     MD5 (OSS says so), whatever it looks like.
//  3. Listed, otherwise: the destination needs a HEAD.
//  4. Headed, and it carries oss2s3's source identity
//     (x-amz-meta-oss2s3-source-etag, written on every copy): same iff that
//     ETag (and the CRC-64, when both sides know it) is the source's. Our
//     own copies are therefore judged exactly, however they were uploaded.
//  5. Headed, written by someone else: Verify decides. "identity" (the
//     workers'): different, only our identity proves a copy current;
//     "size": same; "etag" (the reconciler's default): different, so the
//     copy is made again and carries the identity from then on; "content":
//     both are read and their CRC-64s compared.

// Decision is what NeedCopy decides.
type Decision int

// Decisions.
const (
	Same        Decision = iota // the destination holds the source's version
	Different                   // copy
	NeedHead                    // the listing cannot tell: HEAD the destination
	NeedContent                 // only reading both can tell
	Skip                        // the task does not copy this object
)

func (d Decision) String() string {
	return [...]string{"same", "different", "need_head", "need_content", "skip"}[d]
}

// Verify modes: what proves an object oss2s3 did not write is current.
const (
	VerifyIdentity = "identity" // nothing: only oss2s3's source identity proves a copy current
	VerifySize     = "size"
	VerifyETag     = "etag"
	VerifyContent  = "content"
)

// Seen says how much of the destination object the caller has seen.
type Seen int

// How the destination object was seen.
const (
	Listed Seen = iota // a listing entry: size and ETag, no metadata
	Headed             // a HEAD: its metadata too
)

// CompareOptions are the settings the decision takes.
type CompareOptions struct {
	Verify string // VerifyIdentity, VerifySize, VerifyETag (the default) or VerifyContent
	// ETagsNotMD5 says the destination's ETags are not content MD5s even
	// when they look like one (SSE-KMS).
	ETagsNotMD5 bool
	// CopyAll copies whatever is there (a reconcile in copy_all mode);
	// NoCompare is a task's compare: false.
	CopyAll, NoCompare bool
	// SkipSymlinks is a task's symlinks: skip.
	SkipSymlinks bool
}

// Looks reports whether looking at the destination can spare a copy: not
// with copy_all or compare: false.
func (o CompareOptions) Looks() bool { return !o.CopyAll && !o.NoCompare }

// NeedCopy decides whether dst (nil: there is none) is the version src
// describes; why names the rule that decided.
func NeedCopy(src, dst *ObjectInfo, seen Seen, o CompareOptions) (d Decision, why string) {
	symlink := src.ObjectType == ObjectTypeSymlink
	switch {
	case symlink && o.SkipSymlinks:
		return Skip, "symlink (symlinks: skip)"
	case o.CopyAll:
		return Different, "copy_all"
	case o.NoCompare:
		return Different, "compare: false"
	case dst == nil:
		return Different, "missing"
	case src.Size != dst.Size && !(symlink && seen == Listed):
		return Different, "size"
	}
	if seen == Listed {
		return byListing(src, dst, o)
	}
	if dst.Meta[MetaSourceETag] != "" {
		return byIdentity(src, dst)
	}
	switch o.Verify {
	case VerifyIdentity:
		return Different, "not written by oss2s3 (verify: identity)"
	case VerifySize:
		return Same, "size (verify: size)"
	case VerifyContent:
		return NeedContent, "not written by oss2s3 (verify: content)"
	}
	return Different, "not written by oss2s3, etag not comparable (verify: etag)"
}

// byListing decides what the listings' sizes (equal by now) and ETags can
// prove: rules 2 and 3.
func byListing(src, dst *ObjectInfo, o CompareOptions) (Decision, string) {
	md5s := src.ObjectType != ObjectTypeSymlink && src.ObjectType != ObjectTypeAppendable &&
		!o.ETagsNotMD5 && IsPlainMD5(src.ETag) && IsPlainMD5(dst.ETag)
	switch {
	case !md5s:
		return NeedHead, "etag not comparable"
	case strings.EqualFold(src.ETag, dst.ETag):
		return Same, "md5"
	}
	return Different, "md5"
}

// byIdentity judges a copy oss2s3 wrote by the source identity it carries:
// rule 4.
func byIdentity(src, dst *ObjectInfo) (Decision, string) {
	if dst.Meta[MetaSourceETag] != src.ETag {
		return Different, "source identity etag"
	}
	if c := dst.Meta[MetaSourceCRC64]; c != "" && src.HasCRC64 && c != strconv.FormatUint(src.CRC64, 10) {
		return Different, "source identity crc64"
	}
	return Same, "source identity"
}

// HoldsVersion reports whether dst (a destination object's state, from a
// HEAD) is a copy oss2s3 made of exactly the source version src: the
// workers' question, NeedCopy with verify: identity.
func HoldsVersion(dst, src *ObjectInfo) bool {
	d, _ := NeedCopy(src, dst, Headed, CompareOptions{Verify: VerifyIdentity})
	return d == Same
}

// WrittenByUs reports whether dst carries oss2s3's source identity.
func WrittenByUs(dst *ObjectInfo) bool {
	return dst != nil && dst.Meta[MetaSourceETag] != ""
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
