package main

import (
	"strconv"

	"github.com/oss2s3/oss2s3/transfer"
)

// byteSize is a flag value written as 1048576, "64MiB", "1GiB", "10KiB" or
// "5MB", the way the oss2s3 configuration writes sizes.
type byteSize int64

// parseSize reads a size the way the oss2s3 configuration does.
func parseSize(s string) (int64, error) {
	n, err := transfer.ParseByteSize(s)
	return int64(n), err
}

func (b *byteSize) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func (b *byteSize) String() string { return formatSize(int64(*b)) }

// formatSize writes n in the largest binary unit that divides it exactly,
// else with two decimals.
func formatSize(n int64) string {
	units := []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	for _, u := range units {
		if n >= u.mult {
			return strconv.FormatFloat(float64(n)/float64(u.mult), 'f', 2, 64) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
