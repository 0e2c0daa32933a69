package control

import (
	"os"

	"golang.org/x/sys/unix"
)

// credUID reads the peer's uid from SO_PEERCRED.
func credUID(fd int) (int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, os.NewSyscallError("getsockopt SO_PEERCRED", err)
	}
	return int(cred.Uid), nil
}
