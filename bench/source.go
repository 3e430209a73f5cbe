package main

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/oss2s3/oss2s3/internal/ossemu"
)

// The source's credentials and region.
const (
	ossRegion    = "cn-hangzhou"
	ossAccessKey = "benchossaccess"
	ossSecretKey = "benchosssecret-0123456789"
)

// srcObject is one source object: what the copies are checked against.
type srcObject struct {
	Key   string
	Size  int64
	ETag  string
	CRC64 uint64
}

// putObjects stores count objects of size bytes each under keyf(i) in the
// emulator, their bytes a deterministic function of (seed, i).
func putObjects(emu *ossemu.Server, bucket string, count int, size int64, seed uint64, keyf func(int) string) ([]srcObject, error) {
	emu.CreateBucket(bucket)
	objs := make([]srcObject, 0, count)
	buf := make([]byte, size)
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	for i := range count {
		fillRandom(buf, seed+uint64(i))
		info, err := emu.PutObject(bucket, keyf(i), buf, h)
		if err != nil {
			return nil, fmt.Errorf("put %s/%s: %w", bucket, keyf(i), err)
		}
		objs = append(objs, srcObject{Key: info.Key, Size: info.Size, ETag: info.ETag, CRC64: info.CRC64})
	}
	return objs, nil
}

// putSynthetic stores count objects of size bytes each under keyf(i) whose
// bytes the emulator generates on demand from (seed+i): GiB objects that
// cost no memory. They look like multipart uploads (a "HEX-N" ETag).
func putSynthetic(emu *ossemu.Server, bucket string, count int, size int64, seed uint64, keyf func(int) string) ([]srcObject, error) {
	emu.CreateBucket(bucket)
	objs := make([]srcObject, 0, count)
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	for i := range count {
		info, err := emu.PutSynthetic(bucket, keyf(i), size, seed+uint64(i), h)
		if err != nil {
			return nil, fmt.Errorf("put synthetic %s/%s: %w", bucket, keyf(i), err)
		}
		objs = append(objs, srcObject{Key: info.Key, Size: info.Size, ETag: info.ETag, CRC64: info.CRC64})
	}
	return objs, nil
}

// fillRandom fills buf with bytes that do not compress, from seed.
func fillRandom(buf []byte, seed uint64) {
	var s [32]byte
	for i := range 4 {
		for j := range 8 {
			s[i*8+j] = byte((seed + uint64(i)) >> (8 * j))
		}
	}
	_, _ = rand.NewChaCha8(s).Read(buf)
}

func totalBytes(objs []srcObject) int64 {
	var n int64
	for _, o := range objs {
		n += o.Size
	}
	return n
}

// signOSSv1 signs a plain GET or HEAD of /bucket/key with OSS signature V1
// (no x-oss-* headers, no sub-resources), as the OSS SDK does.
func signOSSv1(req *http.Request, bucket, key string) {
	date := time.Now().UTC().Format(http.TimeFormat)
	req.Header.Set("Date", date)
	sts := req.Method + "\n\n\n" + date + "\n/" + bucket + "/" + key
	m := hmac.New(sha1.New, []byte(ossSecretKey))
	m.Write([]byte(sts))
	req.Header.Set("Authorization", "OSS "+ossAccessKey+":"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
}
