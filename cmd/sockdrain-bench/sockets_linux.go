package main

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/netns"
)

// rawListen opens a blocking TCP listener on 127.0.0.1 at a port the
// kernel picks, on the calling thread (so in its namespace).
func rawListen() (int, netip.AddrPort, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, netip.AddrPort{}, os.NewSyscallError("socket", err)
	}
	sa := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, netip.AddrPort{}, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		unix.Close(fd)
		return -1, netip.AddrPort{}, os.NewSyscallError("listen", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, netip.AddrPort{}, os.NewSyscallError("getsockname", err)
	}
	port := uint16(got.(*unix.SockaddrInet4).Port)
	return fd, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), nil
}

// rawListener is a listening socket from rawListen, and its address.
type rawListener struct {
	fd   int
	addr netip.AddrPort
}

// targetAndOther opens two listeners with rawListen inside ns: a drain's
// target, and another port beside it. The caller closes both.
func targetAndOther(ns *netns.NS) (target, other rawListener, err error) {
	err = ns.Do(func() (err error) {
		if target.fd, target.addr, err = rawListen(); err != nil {
			return err
		}
		if other.fd, other.addr, err = rawListen(); err != nil {
			unix.Close(target.fd)
		}
		return err
	})
	return target, other, err
}

// pairs are connected client/server sockets made by connect and accept.
type pairs struct {
	clients, servers []int
}

// connectPairs makes n connections to the blocking listener ln at addr in
// ns, accepting each at once. On error it closes what it made.
func connectPairs(ns *netns.NS, ln int, addr netip.AddrPort, n int) (*pairs, error) {
	p := &pairs{}
	err := ns.Do(func() error {
		sa := &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
		for range n {
			c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return os.NewSyscallError("socket", err)
			}
			p.clients = append(p.clients, c)
			if err := unix.Connect(c, sa); err != nil {
				return os.NewSyscallError("connect", err)
			}
			s, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
			if err != nil {
				return os.NewSyscallError("accept", err)
			}
			p.servers = append(p.servers, s)
		}
		return nil
	})
	if err != nil {
		p.close()
		return nil, fmt.Errorf("connect %d pairs to %s: %w", n, addr, err)
	}
	return p, nil
}

// close closes the clients, then the servers, and returns the time just
// before the last close: from then on, no connection is left to wait on.
func (p *pairs) close() (last time.Time) {
	for _, fds := range [][]int{p.clients, p.servers} {
		for _, fd := range fds {
			last = time.Now()
			unix.Close(fd)
		}
	}
	p.clients, p.servers = nil, nil
	return last
}
