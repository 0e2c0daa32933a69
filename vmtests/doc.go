// Package vmtests runs the kernel-dependent tests on other Linux kernels:
// it fetches Debian kernels, packs static test binaries, their modules and
// a tiny init into an initramfs, boots each kernel under QEMU and reads the
// results back from the serial console.
//
// The host side is cmd/vmtest (make vmtest); the guest side is cmd/vminit,
// which runs as PID 1. They share Config and Result.
package vmtests
