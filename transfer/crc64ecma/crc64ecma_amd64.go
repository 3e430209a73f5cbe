//go:build amd64 && !purego

package crc64ecma

import "golang.org/x/sys/cpu"

var hasCLMUL = cpu.X86.HasPCLMULQDQ && cpu.X86.HasSSE41

// updateCLMUL is updateAsm in crc64ecma_amd64.s: len(p) is a multiple of
// 128 and &p[0] is 16-byte aligned.
//
//go:noescape
func updateAsm(crc uint64, p []byte) (checksum uint64)

func updateCLMUL(crc uint64, p []byte) uint64 { return updateAsm(crc, p) }
