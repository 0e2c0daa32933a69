package listenfd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/sockfd"
)

// ErrBadAddress reports a listen address that cannot be parsed.
var ErrBadAddress = errors.New("bad listen address")

// ParseAddr parses HOST:PORT, with an IPv6 HOST in brackets. An empty HOST
// or "*" means every address of both families ([::], dual-stack). PORT 0
// lets the kernel choose.
func ParseAddr(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("parse listen address %q: want HOST:PORT: %w", s, ErrBadAddress)
	}
	port, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("parse listen address %q: want a port from 0 to 65535: %w", s, ErrBadAddress)
	}
	host := s[:i]
	if host == "" || host == "*" {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port)), nil
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || (a.Is6() && !strings.HasPrefix(s, "[")) {
		return netip.AddrPort{}, fmt.Errorf("parse listen address %q: host must be an IP address, IPv6 in brackets: %w", s, ErrBadAddress)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// Options tune the sockets Listen makes.
type Options struct {
	// ReusePort sets SO_REUSEPORT before bind, which the reuseport gate
	// needs on Linux. Other processes of the same user may then bind the
	// same address.
	ReusePort bool
	// Backlog is listen(2)'s backlog; zero means SOMAXCONN.
	Backlog int
}

// Listen makes one listening TCP socket per address, in blocking mode, as
// servers handed sockets expect them. The files are named by the address
// the kernel bound, with the port it chose for port 0. On error it closes
// what it made.
func Listen(addrs []netip.AddrPort, opts Options) (_ []*os.File, err error) {
	var files []*os.File
	defer func() {
		if err != nil {
			for _, f := range files {
				f.Close()
			}
		}
	}()
	for _, a := range addrs {
		f, err := listen(a, opts)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		files = append(files, f)
	}
	return files, nil
}

func listen(a netip.AddrPort, opts Options) (*os.File, error) {
	family, _ := sockaddr(a)
	fd, err := unix.Socket(family, unix.SOCK_STREAM, unix.IPPROTO_TCP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	unix.CloseOnExec(fd)
	if err := setup(fd, a, opts); err != nil {
		unix.Close(fd)
		return nil, err
	}
	bound, err := sockfd.BoundAddr(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), bound.String()), nil
}

func setup(fd int, a netip.AddrPort, opts Options) error {
	_, sa := sockaddr(a)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}
	if opts.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return os.NewSyscallError("setsockopt SO_REUSEPORT", err)
		}
	}
	if a.Addr().Is6() {
		// Only [::] takes both families, as Go's net.Listen(":PORT") does.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(!a.Addr().IsUnspecified())); err != nil {
			return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	backlog := opts.Backlog
	if backlog <= 0 {
		backlog = unix.SOMAXCONN
	}
	return os.NewSyscallError("listen", unix.Listen(fd, backlog))
}

func sockaddr(a netip.AddrPort) (int, unix.Sockaddr) {
	if a.Addr().Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
