package gate

import (
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
