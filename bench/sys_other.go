//go:build !linux

package main

import (
	"errors"
	"os"
	"syscall"
)

func procAttr() *syscall.SysProcAttr { return nil }

func peakRSS(int) (int64, error) {
	return 0, errors.New("peak RSS is read from /proc: Linux only")
}

func memoryFS(string) (bool, error) { return false, nil }

func maxRSSOf(*os.ProcessState) int64 { return 0 }

func cpuModel() string { return "unknown CPU" }

func memTotal() int64 { return 0 }

func flushDisk() {}
