package control

import (
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/sockfd"
)

// peerUID is the uid of the process that connected c, from SO_PEERCRED.
func peerUID(c *net.UnixConn) (int, error) {
	uid := -1
	err := sockfd.Control(c, func(fd int) error {
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			return os.NewSyscallError("getsockopt SO_PEERCRED", err)
		}
		uid = int(cred.Uid)
		return nil
	})
	return uid, err
}
