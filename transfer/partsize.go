package transfer

// Part sizes: how an object is cut into the parts of a multipart upload,
// within S3's limits.

// S3 multipart limits.
const (
	MaxParts    = 10_000
	MinPartSize = 5 * MiB
	MaxPartSize = 5 * GiB
)

// PartSizeFor returns the part size for an object of size bytes: the
// configured size (at least MinPartSize), or the smallest whole MiB that
// fits the object into MaxParts parts.
func PartSizeFor(configured ByteSize, size int64) int64 {
	return s3Parts.sizeFor(configured, size)
}

// partRules are the floor and the alignment a part size is computed
// with. A copier uses S3's (s3Parts); its tests copy objects of 10,000
// parts with a floor of a few KiB (export_test.go), which no real S3
// accepts.
type partRules struct {
	floor, align int64
}

var s3Parts = partRules{floor: int64(MinPartSize), align: int64(MiB)}

func (r partRules) sizeFor(configured ByteSize, size int64) int64 {
	p := max(int64(configured), r.floor)
	if need := (size + MaxParts - 1) / MaxParts; need > p {
		p = need
	}
	if rem := p % r.align; rem != 0 {
		p += r.align - rem
	}
	return min(p, int64(MaxPartSize))
}

// partRange returns where part n (1-based) starts and how long it is.
func partRange(n int32, partSize, size int64) (int64, int64) {
	off := int64(n-1) * partSize
	return off, min(partSize, size-off)
}

func totalParts(size, partSize int64) int {
	return int((size + partSize - 1) / partSize)
}
