//go:build linux || freebsd

package demoserver

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func socketProtocol(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var p int
	var serr error
	err = rc.Control(func(fd uintptr) {
		p, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL)
	})
	if err != nil {
		return 0, err
	}
	return p, os.NewSyscallError("getsockopt SO_PROTOCOL", serr)
}
