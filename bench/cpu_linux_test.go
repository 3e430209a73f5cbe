package main

import (
	"testing"
	"time"
)

func TestParseProcStatCPU(t *testing.T) {
	t.Parallel()
	// utime 250 and stime 50 ticks; the command name holds ") (".
	const line = "1234 (oss 2) (s3) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 10 18446744073709551615\n"
	got, err := parseProcStatCPU(line)
	if err != nil || got != 3*time.Second {
		t.Errorf("got %v, %v; want 3s", got, err)
	}
	if _, err := parseProcStatCPU("1234 (x) S 1"); err == nil {
		t.Error("short line accepted")
	}
}
