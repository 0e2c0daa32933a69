package vmtests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// powerOffGrace is how long a guest that reported its results may take
// to power off.
const powerOffGrace = 30 * time.Second

// cmdline is the guest kernel's command line: console on the serial port,
// little kernel chatter, no reboot on panic, and a CPU-seeded RNG so Go's
// crypto/rand does not wait for entropy.
const cmdline = "console=ttyS0 quiet loglevel=3 panic=-1 random.trust_cpu=on mitigations=off"

// cpu is the guest CPU: all QEMU can emulate, but without CMPXCHG16B.
// QEMU 7.2's TCG mis-emulates it with a segment prefix, as SLUB uses it
// since Linux 6.8 (this_cpu_cmpxchg128): with it, about one 6.12 boot in
// four died in kmem_cache_alloc (double fault or general protection).
const cpu = "max,-cx16"

// VM is one boot of a kernel with an initramfs.
type VM struct {
	Kernel    Booted
	Initramfs string
	MemoryMB  int
	Log       string // where the whole serial output goes
}

// Run boots the VM under QEMU (TCG, one vCPU) and returns the guest's
// result lines. It returns an error if the guest did not finish, with the
// results it got before.
func (vm VM) Run(ctx context.Context) ([]Result, error) {
	log, err := os.Create(vm.Log)
	if err != nil {
		return nil, fmt.Errorf("create VM log: %w", err)
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", vm.args()...)
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("boot %s: %w", vm.Kernel.Name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("boot %s: %w", vm.Kernel.Name, err)
	}
	results, done, readErr := readResults(io.TeeReader(out, log))
	if done {
		// The guest powers off now; a guest that hangs instead is killed.
		t := time.AfterFunc(powerOffGrace, func() { cmd.Process.Kill() })
		defer t.Stop()
	}
	io.Copy(log, out)
	waitErr := cmd.Wait()
	if !done {
		return results, fmt.Errorf("VM %s did not finish (see %s): %w", vm.Kernel.Name, vm.Log, errors.Join(ctx.Err(), waitErr, readErr))
	}
	return results, readErr
}

func (vm VM) args() []string {
	return []string{
		"-machine", "pc", "-accel", "tcg", "-cpu", cpu, "-smp", "1",
		"-m", strconv.Itoa(vm.MemoryMB), "-nodefaults", "-no-reboot",
		"-display", "none", "-serial", "stdio",
		"-kernel", vm.Kernel.Vmlinux, "-initrd", vm.Initramfs, "-append", cmdline,
	}
}

// readResults reads result lines until the guest says it is done, or
// its output ends.
func readResults(r io.Reader) (results []Result, done bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		res, ok, perr := ParseResult(sc.Text())
		switch {
		case perr != nil:
			err = errors.Join(err, perr)
		case ok && res.Status == StatusDone:
			return results, true, err
		case ok:
			results = append(results, res)
		}
	}
	return results, done, err
}
