//go:build linux || freebsd

package control

import (
	"net"

	"github.com/sockdrain/sockdrain/internal/sockfd"
)

// peerUID is the uid of the process that connected c, as the kernel
// recorded it at connect (see credUID).
func peerUID(c *net.UnixConn) (int, error) {
	uid := -1
	err := sockfd.Control(c, func(fd int) (err error) {
		uid, err = credUID(fd)
		return err
	})
	return uid, err
}
