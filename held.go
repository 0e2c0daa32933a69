package sockdrain

import (
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"errors"
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
	a, err := sockfd.LocalAddr(f)
	if errors.Is(err, sockfd.ErrNotIP) {
		return a, invalidf("held socket %s is not a TCP/IP socket", f.Name())
	}
	if err != nil {
		return a, fmt.Errorf("read address of held socket %s: %w", f.Name(), err)
	}
	return a, nil
}
