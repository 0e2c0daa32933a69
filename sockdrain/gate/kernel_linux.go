package gate

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// RunningKernel returns the version of the running Linux kernel.
func RunningKernel() (KernelVersion, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return KernelVersion{}, os.NewSyscallError("uname", err)
	}
	return ParseKernelVersion(unix.ByteSliceToString(u.Release[:]))
}

// CheckKernel returns nil if the running kernel can run the gate called
// name, and otherwise why not: an error matching ErrNotSupported when the
// kernel is older than the gate's minimum.
func CheckKernel(name string) error {
	m, ok := MinimumOf(name)
	if !ok {
		return fmt.Errorf("no minimum kernel for the %s gate", name)
	}
	v, err := RunningKernel()
	if err != nil {
		return err
	}
	return m.Supports(v)
}
