package ossemu

import (
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// A symlink is an object of type Symlink with no content of its own that
// names a target key in the same bucket. Reads through it are resolved on
// every request (see resolveLocked), so it follows the target's changes.
// Listings show the link itself: type Symlink, size 0, the link's ETag.

// symlinkETag is a symlink's own ETag: OSS documents only that GetSymlink
// returns one; the emulator uses the upper-hex MD5 of the target key.
func symlinkETag(target string) string {
	sum := md5.Sum([]byte(target))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// putSymlink serves PUT ?symlink. The target comes URL-encoded in
// x-oss-symlink-target (the SDK QueryEscapes it); like OSS the emulator
// does not check that it exists. x-oss-meta-*, the content headers,
// x-oss-storage-class, x-oss-tagging and x-oss-forbid-overwrite apply to
// the link.
func (s *Server) putSymlink(w http.ResponseWriter, q *request) *ossError {
	if e := validKey(q.key); e != nil {
		return e
	}
	raw := q.r.Header.Get("x-oss-symlink-target")
	if raw == "" {
		return errInvalidArgument("x-oss-symlink-target is missing.")
	}
	target, err := url.QueryUnescape(raw)
	if err != nil {
		return errInvalidArgument("x-oss-symlink-target is not URL-encoded correctly.")
	}
	if e := validKey(target); e != nil {
		e.message = "Invalid symlink target: " + e.message
		return e
	}
	m, e := objectMetaFromRequest(q.r.Header)
	if e != nil {
		return e
	}
	o := s.newObject(q.key, nil, nil, 0, "Symlink", m)
	o.info.ETag = symlinkETag(target)
	o.info.SymlinkTarget = target
	if e := s.store(q, o, "ObjectCreated:PutSymlink"); e != nil {
		return e
	}
	w.Header().Set("ETag", quote(o.info.ETag))
	w.WriteHeader(http.StatusOK)
	return nil
}

// getSymlink serves GET ?symlink: the link's own ETag, Last-Modified,
// content headers and user metadata, and its target, URL-encoded.
func (s *Server) getSymlink(w http.ResponseWriter, q *request) *ossError {
	o, e := s.lookup(q.bucket, q.key)
	if e != nil {
		return e
	}
	if o.info.ObjectType != "Symlink" {
		return &ossError{status: 400, code: "NotSymlink", message: "The specified object is not a symlink.", extra: errorExtra{Key: q.key}}
	}
	h := w.Header()
	for k, v := range o.info.Header {
		h[k] = v
	}
	for k, v := range o.info.Meta {
		h.Set("x-oss-meta-"+k, v)
	}
	h.Set("ETag", quote(o.info.ETag))
	h.Set("Last-Modified", o.info.LastModified.UTC().Format(http.TimeFormat))
	h.Set("x-oss-symlink-target", escapeSDK(o.info.SymlinkTarget))
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}
