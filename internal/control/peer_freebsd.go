package control

import (
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/sockfd"
)

// peerUID is the effective uid of the process that connected c, from
// LOCAL_PEERCRED.
func peerUID(c *net.UnixConn) (int, error) {
	uid := -1
	err := sockfd.Control(c, func(fd int) error {
		cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if err != nil {
			return os.NewSyscallError("getsockopt LOCAL_PEERCRED", err)
		}
		uid = int(cred.Uid)
		return nil
	})
	return uid, err
}
