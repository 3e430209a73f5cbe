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

func TestParsePressureSome(t *testing.T) {
	t.Parallel()
	const psi = "some avg10=66.42 avg60=52.35 avg300=74.66 total=1316262543\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"
	got, err := parsePressureSome(psi)
	if err != nil || got != 1316262543*time.Microsecond {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := parsePressureSome("full avg10=0.00 total=7\n"); err == nil {
		t.Error("a file without the some line accepted")
	}
}

func TestParseStatCPULine(t *testing.T) {
	t.Parallel()
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseStatCPULine("cpu  100 5 50 1000 20 3 2 1 7 0")
	if err != nil {
		t.Fatal(err)
	}
	want := cpuTicks{busy: 1610 * time.Millisecond, idle: 10 * time.Second, iowait: 200 * time.Millisecond}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := parseStatCPULine(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
