package demoserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// listen opens the configured sockets on the calling thread, so they
// belong to its network namespace. The first socket picks the port when
// Addr's is 0; the others bind the same one.
func (s *Server) listen() error {
	lc := net.ListenConfig{KeepAlive: -1}
	lc.SetMultipathTCP(s.cfg.MPTCP)
	if s.cfg.ReusePort {
		lc.Control = setReusePort
	}
	addr := s.cfg.Addr
	for range s.cfg.Listeners {
		l, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		s.listeners = append(s.listeners, l.(*net.TCPListener))
		addr = samePort(addr, l.Addr())
	}
	return nil
}

func setReusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
}

// samePort is addr with its port replaced by bound's.
func samePort(addr string, bound net.Addr) string {
	host, _, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, strconv.Itoa(bound.(*net.TCPAddr).Port))
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		l.Close()
	}
	s.listeners = nil
}
