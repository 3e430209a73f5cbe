package ossemu

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Generated describes a bucket whose listing is computed page by page from
// a formula instead of stored objects, so a listing of ten million keys
// costs no memory. Base key i (0 <= i < Count) is GeneratedKey(i). Of every
// 100 base keys (by i mod 100), the first Missing are absent, the next
// Different have another content of the same size (another MD5 ETag), and
// the next Extra are followed by an extra key GeneratedKey(i)+"x" that a
// bucket generated with Extra 0 does not have. A source bucket is
// Generated{Count: n}; its destination with 1% of each is
// Generated{Count: n, Missing: 1, Different: 1, Extra: 1}.
//
// Generated objects exist in listings (both APIs, V1 and V2, with
// prefixes, start-after and continuation tokens) and answer HEAD with what
// the listing says (rclone HEADs them when it sorts a huge directory on
// disk); a GET serves synthetic bytes of their size, which do not match
// their ETag. Their keys never contain a delimiter, so a delimited listing
// returns them all.
type Generated struct {
	Count                     int64
	Missing, Different, Extra int
}

// GeneratedKey is the key of base object i of a generated bucket.
func GeneratedKey(i int64) string { return fmt.Sprintf("g%011d", i) }

// GeneratedSize is the size of base object i.
func GeneratedSize(i int64) int64 { return 1 + i%4096 }

// SetGenerated makes bucket (created if needed) list as g says; its stored
// objects no longer appear in listings.
func (s *Server) SetGenerated(bucket string, g Generated) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gen := &generated{Generated: g, modified: s.now().UTC().Truncate(time.Second)}
	s.createBucketLocked(bucket).gen = gen
}

type generated struct {
	Generated
	modified time.Time
}

func (g *generated) present(i int64) bool { return int(i%100) >= g.Missing }

func (g *generated) different(i int64) bool {
	r := int(i % 100)
	return r >= g.Missing && r < g.Missing+g.Different
}

func (g *generated) extra(i int64) bool {
	r := int(i % 100)
	return r >= g.Missing+g.Different && r < g.Missing+g.Different+g.Extra
}

func genETag(i int64, variant byte) string {
	var b [9]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(i))
	b[8] = variant
	sum := md5.Sum(b[:])
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func (g *generated) object(key string, i int64, variant byte) *object {
	return &object{info: ObjectInfo{Key: key, Size: GeneratedSize(i), ETag: genETag(i, variant),
		LastModified: g.modified, StorageClass: "Standard", ObjectType: "Normal", Synthetic: true, Seed: uint64(i)}}
}

// find returns the generated object named key, or nil.
func (g *generated) find(key string) *object {
	base, extra := strings.CutSuffix(key, "x")
	if len(base) != 12 || base[0] != 'g' {
		return nil
	}
	var i int64
	for _, c := range base[1:] {
		if c < '0' || c > '9' {
			return nil
		}
		i = i*10 + int64(c-'0')
	}
	switch {
	case i >= g.Count:
		return nil
	case extra && g.extra(i):
		return g.object(key, i, 2)
	case extra || !g.present(i):
		return nil
	case g.different(i):
		return g.object(key, i, 1)
	}
	return g.object(key, i, 0)
}

// walk lists up to max entries that start with prefix and sort after after.
func (g *generated) walk(prefix, after string, max int) (entries []listEntry, truncated bool) {
	// The largest entry of base key i grows with i, so the first base key
	// with an entry past both bounds is found by binary search.
	largest := func(i int64) string {
		k := GeneratedKey(i)
		if g.extra(i) {
			k += "x"
		}
		return k
	}
	n := int64(sort.Search(int(g.Count), func(i int) bool {
		l := largest(int64(i))
		return l > after && l >= prefix
	}))
	for i := n; i < g.Count; i++ {
		k := GeneratedKey(i)
		if !strings.HasPrefix(k, prefix) && k > prefix {
			break
		}
		cands := [2]string{k, ""}
		if g.extra(i) {
			cands[1] = k + "x"
		}
		for c, key := range cands {
			if key == "" || key <= after || !strings.HasPrefix(key, prefix) || (c == 0 && !g.present(i)) {
				continue
			}
			if len(entries) == max {
				return entries, true
			}
			var variant byte
			switch {
			case c == 1:
				variant = 2
			case g.different(i):
				variant = 1
			}
			entries = append(entries, listEntry{key: key, obj: g.object(key, i, variant)})
		}
	}
	return entries, false
}
