//go:build !amd64 || purego

package crc64ecma

const hasCLMUL = false

func updateCLMUL(crc uint64, p []byte) uint64 { panic("unreachable") }
