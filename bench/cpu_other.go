//go:build !linux

package main

import (
	"errors"
	"time"
)

func procCPU(int) (time.Duration, error) {
	return 0, errors.New("process CPU time is read from /proc: Linux only")
}

func selfCPU() time.Duration { return 0 }

func machineCPU() (cpuTicks, error) {
	return cpuTicks{}, errors.New("the machine's CPU time is read from /proc: Linux only")
}

func pressureSome(string) (time.Duration, error) {
	return 0, errors.New("pressure stall information is read from /proc: Linux only")
}
