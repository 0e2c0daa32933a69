package sockfd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Control calls fn with c's descriptor without touching its blocking mode,
// which a duplicate shares with the descriptor it was taken from.
func Control(c syscall.Conn, fn func(fd int) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var fnErr error
	if err := rc.Control(func(fd uintptr) { fnErr = fn(int(fd)) }); err != nil {
		return err
	}
	return fnErr
}

// ErrNotIP: the socket is not an IPv4 or IPv6 socket.
var ErrNotIP = errors.New("not an IP socket")

// BoundAddr is the address the socket fd is bound to.
func BoundAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, os.NewSyscallError("getsockname", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)), nil
	}
	return netip.AddrPort{}, fmt.Errorf("getsockname: %w: %T", ErrNotIP, sa)
}

// LocalAddr is the address c is bound to, read through Control.
func LocalAddr(c syscall.Conn) (a netip.AddrPort, err error) {
	err = Control(c, func(fd int) (err error) {
		a, err = BoundAddr(fd)
		return err
	})
	return a, err
}
