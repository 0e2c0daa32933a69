package control

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// peerUID is the uid of the process that connected c, from SO_PEERCRED.
func peerUID(c *net.UnixConn) (int, error) {
	uid := -1
	err := control(c, func(fd int) error {
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			return os.NewSyscallError("getsockopt SO_PEERCRED", err)
		}
		uid = int(cred.Uid)
		return nil
	})
	return uid, err
}
