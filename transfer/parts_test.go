package transfer_test

import (
	"bytes"
	"context"
	"hash/crc64"
	"io"
	"net/http"
	"testing"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer"
)

// An object that would need more than 10,000 parts at the smallest part
// size is copied for real in exactly 10,000 larger parts: the part size
// grows with the object (PartSizeFor), as it must for a 5 TiB object,
// which at 8 MiB would need 655,360. The part floor is lowered to 1 KiB
// and parts are cut to the byte (S3's floor is 5 MiB in whole MiB, so
// 10,000 real parts would take 50 GB), and the destination, the OSS
// emulator's S3 API, refuses what S3 refuses at that scale: a part number
// above 10,000, a part other than the last below the floor. The object is
// 20,479,000 bytes: 19,999 parts of 1 KiB, or 10,000 of 2 KiB, the last
// of 1,048 bytes. What arrives is compared with the source byte for byte.
//
// Without the growth (the part size left at the floor) the upload of part
// 10,001 is refused and the copy fails; with the needed part size rounded
// down instead of up (size / MaxParts: 2,047 bytes) it needs 10,005 parts
// and fails too.
func TestTenThousandParts(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("20,000 requests: run without -race and -short (.ci/run does)")
	}
	t.Parallel()
	const (
		floor = 1 << 10
		size  = 10_000*2*floor - 1000
		seed  = 19
	)
	emu := ossemu.New(ossemu.Options{Credentials: map[string]string{"AK": "SK"}, Region: "cn-hangzhou", MinPartSize: floor})
	url, err := emu.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	emu.CreateBucket("src")
	emu.CreateBucket("dst")
	if _, err := emu.PutSynthetic("src", "many-parts.bin", size, seed, http.Header{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, err := transfer.NewOSSSource(transfer.SourceConfig{Endpoint: url, Bucket: "src", AccessKeyID: "AK", AccessKeySecret: "SK"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := transfer.NewS3Destination(ctx, transfer.DestinationConfig{Endpoint: url, Region: "us-east-1", Bucket: "dst",
		AccessKeyID: "AK", SecretAccessKey: "SK"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := src.Head(ctx, "many-parts.bin")
	if err != nil || info.Size != size || !info.HasCRC64 {
		t.Fatalf("head: %+v, %v", info, err)
	}

	c := transfer.NewCopier(transfer.MiB, nil, "w").WithPartFloor(floor, 1)
	res, err := c.Copy(ctx, transfer.Object{Task: "t", Src: src, Dst: dst, Info: info, DstKey: "many-parts.bin",
		Write: &transfer.WriteInfo{Source: info}}, transfer.CopyConfig{PartSize: floor, PartsInFlight: 8})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Multipart || res.Parts != transfer.MaxParts || res.Bytes != size || res.CRC64 != info.CRC64 {
		t.Fatalf("copied %+v; want %d parts, %d bytes, crc %d", res, transfer.MaxParts, size, info.CRC64)
	}
	got, body, ok := emu.Object("dst", "many-parts.bin")
	if !ok || got.Size != size {
		t.Fatalf("destination object: %+v, found %v", got, ok)
	}
	want, err := io.ReadAll(ossemu.SyntheticReader(size, seed, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		t.Fatal("the destination object differs from the source's bytes")
	}
	if sum := crc64.Checksum(body, crc64.MakeTable(crc64.ECMA)); sum != info.CRC64 {
		t.Fatalf("destination CRC-64 %d, source %d", sum, info.CRC64)
	}
}
