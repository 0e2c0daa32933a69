package control

import (
	"os"

	"golang.org/x/sys/unix"
)

// credUID reads the peer's effective uid from LOCAL_PEERCRED.
func credUID(fd int) (int, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, os.NewSyscallError("getsockopt LOCAL_PEERCRED", err)
	}
	return int(cred.Uid), nil
}
