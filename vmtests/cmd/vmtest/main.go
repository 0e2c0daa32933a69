//go:build linux

// Command vmtest runs the kernel-dependent tests on each kernel of
// vmtests.Matrix under QEMU, one VM per kernel in parallel, and prints
// pass or fail per kernel and per test. It exits 1 if any test or VM
// failed. Run it from the repository root, as root (make vmtest).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sockdrain/sockdrain/vmtests"
)

// packages are the packages whose tests need a kernel, by report name.
var packages = map[string]string{
	"sockdrain":                ".",
	"sockdrain_inetdiag":       "./internal/inetdiag",
	"sockdrain_gate_reuseport": "./sockdrain/gate/reuseport",
	"sockdrain_gate_sklookup":  "./sockdrain/gate/sklookup",
	"sockdrain_gate_nftables":  "./sockdrain/gate/nftgate",
	"cmd_sockdrain":            "./cmd/sockdrain",
}

type options struct {
	cache       string
	kernels     string
	vmTimeout   time.Duration
	testTimeout time.Duration
	memoryMB    int
}

func main() {
	var o options
	flag.StringVar(&o.cache, "cache", "vmtests/.cache", "directory for kernels, binaries and logs")
	flag.StringVar(&o.kernels, "kernels", "", "comma-separated kernel names to run (default: the matrix, 6.1 and 6.12; 5.10 on request)")
	flag.DurationVar(&o.vmTimeout, "timeout", 14*time.Minute, "bound on each VM, boot to power-off")
	flag.DurationVar(&o.testTimeout, "test-timeout", 7*time.Minute, "bound on each test binary inside a VM")
	flag.IntVar(&o.memoryMB, "mem", 2048, "memory of each VM in MiB")
	flag.Parse()
	start := time.Now()
	ok, err := run(o)
	fmt.Printf("vmtest: %s in %s\n", verdict(ok && err == nil), time.Since(start).Round(time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
	}
	if !ok || err != nil {
		os.Exit(1)
	}
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// run fetches the kernels, builds the guest and boots every kernel.
func run(o options) (bool, error) {
	kernels, err := selectKernels(o.kernels)
	if err != nil {
		return false, err
	}
	var booted []vmtests.Booted
	for _, k := range kernels {
		b, err := vmtests.Fetch(o.cache, k)
		if err != nil {
			return false, err
		}
		booted = append(booted, b)
	}
	busybox, err := vmtests.FetchBusybox(o.cache)
	if err != nil {
		return false, err
	}
	guest, err := build(filepath.Join(o.cache, "build"), o.testTimeout, busybox)
	if err != nil {
		return false, err
	}
	return bootAll(o, booted, guest), nil
}

func selectKernels(names string) ([]vmtests.Kernel, error) {
	if names == "" {
		return vmtests.Matrix, nil
	}
	var ks []vmtests.Kernel
	for _, n := range strings.Split(names, ",") {
		all := append(slices.Clone(vmtests.Matrix), vmtests.Older...)
		i := indexOf(all, n)
		if i < 0 {
			return nil, fmt.Errorf("select kernel %q: not in vmtests.Matrix or vmtests.Older", n)
		}
		ks = append(ks, all[i])
	}
	return ks, nil
}

func indexOf(ks []vmtests.Kernel, name string) int {
	for i, k := range ks {
		if k.Name == name {
			return i
		}
	}
	return -1
}

// bootAll runs one VM per kernel in parallel and reports each in turn.
func bootAll(o options, booted []vmtests.Booted, guest vmtests.Guest) bool {
	reports := make([]kernelReport, len(booted))
	var wg sync.WaitGroup
	for i, b := range booted {
		wg.Go(func() { reports[i] = bootOne(o, b, guest) })
	}
	wg.Wait()
	ok := true
	for _, r := range reports {
		ok = r.print(os.Stdout) && ok
	}
	return ok
}

func bootOne(o options, b vmtests.Booted, guest vmtests.Guest) kernelReport {
	r := kernelReport{kernel: b, start: time.Now()}
	mods, absent, err := vmtests.ResolveModules(b.Modules, vmtests.Modules)
	r.absent = absent
	initrd := filepath.Join(o.cache, "initramfs-"+b.Name+".cpio")
	if err == nil {
		err = vmtests.WriteInitramfs(initrd, guest, mods)
	}
	if err != nil {
		r.err = err
		return r
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.vmTimeout)
	defer cancel()
	vm := vmtests.VM{Kernel: b, Initramfs: initrd, MemoryMB: o.memoryMB, Log: filepath.Join(o.cache, "vm-"+b.Name+".log")}
	r.results, r.err = vm.Run(ctx)
	r.log = vm.Log
	r.elapsed = time.Since(r.start)
	return r
}
