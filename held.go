package sockdrain

import (
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/sockfd"
)

// hold makes the session's gates act on the caller's own listening
// sockets (Options.Sockets) rather than on sockets taken from other
// processes. Each listener gets duplicates of the held sockets bound to its
// address, so releasing them leaves the caller's sockets open. It never
// calls Fd on them: that would put the open file description, which a
// duplicate from (*net.TCPListener).File shares with the caller's
// listener, into blocking mode.
func (s *session) hold(files []*os.File) error {
	if len(files) == 0 {
		return nil
	}
	s.releaseSockets()
	for i := range s.gls {
		socks, err := heldSockets(s.gls[i].Addr, files)
		s.gls[i].Sockets = socks
		if err != nil {
			return err
		}
	}
	return nil
}

// heldSockets duplicates the files bound to addr.
func heldSockets(addr netip.AddrPort, files []*os.File) ([]*os.File, error) {
	var socks []*os.File
	for _, f := range files {
		bound, err := localAddr(f)
		if err != nil {
			return socks, err
		}
		if bound != addr {
			continue
		}
		var fd int
		err = sockfd.Control(f, func(held int) (err error) {
			fd, err = unix.Dup(held)
			return os.NewSyscallError("dup", err)
		})
		if err != nil {
			return socks, fmt.Errorf("duplicate held socket %s: %w", addr, err)
		}
		unix.CloseOnExec(fd)
		socks = append(socks, os.NewFile(uintptr(fd), f.Name()))
	}
	return socks, nil
}

// localAddr is the address a socket is bound to.
func localAddr(f *os.File) (netip.AddrPort, error) {
	var sa unix.Sockaddr
	err := sockfd.Control(f, func(fd int) (err error) {
		sa, err = unix.Getsockname(fd)
		return os.NewSyscallError("getsockname", err)
	})
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("read address of held socket %s: %w", f.Name(), err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)), nil
	}
	return netip.AddrPort{}, invalidf("held socket %s is not a TCP/IP socket", f.Name())
}
