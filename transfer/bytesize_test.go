package transfer_test

import (
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want transfer.ByteSize
	}{
		{"1048576", transfer.MiB}, {"64MiB", 64 * transfer.MiB}, {"1GiB", transfer.GiB}, {"10KiB", 10 * transfer.KiB},
		{"2g", 2 * transfer.GiB}, {"5MB", 5e6}, {" 1.5 MiB ", 3 * transfer.MiB / 2}, {"16 MiB", 16 * transfer.MiB},
	} {
		got, err := transfer.ParseByteSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "ten"} {
		if _, err := transfer.ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
	if s := (8 * transfer.MiB).String(); s != "8MiB" {
		t.Errorf("String() = %q", s)
	}
}
