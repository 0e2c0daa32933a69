package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/netns"
)

// DialIn returns a DialFunc whose sockets belong to ns. It enters ns only
// to create each socket and connects from wherever the caller runs, so
// workers need not be pinned to threads inside ns (compare Config.Do).
func DialIn(ns *netns.NS) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		f, err := socketIn(ns, ap)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		defer f.Close()
		if err := connect(ctx, f, ap); err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(ap), Err: err}
		}
		return net.FileConn(f)
	}
}

// socketIn makes a non-blocking TCP socket inside ns.
func socketIn(ns *netns.NS, ap netip.AddrPort) (*os.File, error) {
	family := unix.AF_INET
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	var fd int
	err := ns.Do(func() (err error) {
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		return os.NewSyscallError("socket", err)
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "tcp"), nil
}

// connect starts a connect on f and waits, through the runtime's poller,
// until it succeeds, fails, or ctx's deadline passes.
func connect(ctx context.Context, f *os.File, ap netip.AddrPort) error {
	if dl, ok := ctx.Deadline(); ok {
		if err := f.SetWriteDeadline(dl); err != nil {
			return err
		}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	err = rc.Control(func(fd uintptr) { cerr = unix.Connect(int(fd), sockaddr(ap)) })
	if err != nil {
		return err
	}
	if cerr != nil && cerr != unix.EINPROGRESS {
		return os.NewSyscallError("connect", cerr)
	}
	err = rc.Write(func(fd uintptr) bool {
		cerr = connectResult(int(fd))
		return cerr != unix.EINPROGRESS
	})
	if err != nil {
		return err
	}
	return os.NewSyscallError("connect", cerr)
}

// connectResult is nil once fd is connected, the connect's error if it
// failed, and EINPROGRESS while it is still under way.
func connectResult(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return unix.Errno(v)
	}
	if _, err := unix.Getpeername(fd); err == unix.ENOTCONN {
		return unix.EINPROGRESS
	}
	return nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}
