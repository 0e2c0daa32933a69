// Package shutdown gates a listener the way FreeBSD 10 and older allowed:
// shutdown(2) on the listening socket makes the kernel answer new SYNs with
// a RST, while connections already on the accept queue stay acceptable.
//
// FreeBSD 11.0 changed that: shutdown() on a listener returns ENOTCONN and
// the listener keeps accepting SYNs. Linux resets the whole accept queue.
// So the gate exists only where kern.osreldate < 1100077, and Arm checks
// its effect with a probe connection that must be refused.
//
// The gate acts on sockets sockdrain holds (gate.Listener.Sockets). It
// cannot be disarmed, since shutdown is one-way, and it does not outlive
// the socket.
package shutdown

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"github.com/sockdrain/sockdrain/internal/sockfd"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// LastOSRelDate is the last kern.osreldate whose listeners honour
// shutdown(): 1100077 is the first where they return ENOTCONN.
const LastOSRelDate = 1100076

// errModernKernel explains why a FreeBSD 11.0+ kernel has no such gate.
var errModernKernel = errors.New("FreeBSD 11.0+ returns ENOTCONN on shutdown() of a listener and keeps accepting SYNs")

// Supported reports whether a kernel of osreldate honours shutdown() on a
// listener.
func Supported(osreldate uint32) error {
	if osreldate > LastOSRelDate {
		return fmt.Errorf("probe shutdown gate on kern.osreldate %d: %w: %w", osreldate, errModernKernel, gate.ErrNotSupported)
	}
	return nil
}

// system is the kernel interface the gate uses, faked in tests.
type system struct {
	shutdown func(fd int) error
	// connect dials addr once and returns the error; nil means the
	// connection was accepted (and has been closed).
	connect func(addr netip.AddrPort) error
}

// Gate is the shutdown gate of one listener.
type Gate struct {
	sockets []*os.File
	probe   netip.AddrPort
	sys     system
	armed   bool
}

var _ gate.Gate = (*Gate)(nil)

func newGate(l gate.Listener, sys system) (*Gate, error) {
	if len(l.Sockets) == 0 {
		return nil, fmt.Errorf("open shutdown gate for %s: it acts on the listening socket, and none is held: %w", l.Addr, gate.ErrNotEligible)
	}
	return &Gate{sockets: l.Sockets, probe: probeAddr(l.Addr), sys: sys}, nil
}

// probeAddr is where a probe connection to a listener on addr goes: addr,
// or the loopback address of its family for a wildcard listener.
func probeAddr(addr netip.AddrPort) netip.AddrPort {
	a := addr.Addr().Unmap()
	switch {
	case a == netip.IPv4Unspecified():
		a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case a.IsUnspecified():
		a = netip.IPv6Loopback()
	}
	return netip.AddrPortFrom(a, addr.Port())
}

// Arm shuts every held listening socket down, then checks that a probe
// connection is refused.
func (g *Gate) Arm() error {
	if g.armed {
		return nil
	}
	for _, f := range g.sockets {
		if err := sockfd.Control(f, g.sys.shutdown); err != nil { // f.Fd would make the server's listener blocking
			return fmt.Errorf("shut down listener %s: %w", g.probe, os.NewSyscallError("shutdown", err))
		}
	}
	err := g.sys.connect(g.probe)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("verify shutdown gate: probe connect to %s got %v, want connection refused: %w", g.probe, err, gate.ErrNotSupported)
	}
	g.armed = true
	return nil
}

// Disarm fails: shutdown cannot be undone.
func (g *Gate) Disarm() error {
	return fmt.Errorf("disarm shutdown gate on %s: shutdown() cannot be undone; the gate ends when the socket closes: %w", g.probe, gate.ErrNotSupported)
}

// Armed reports whether this Gate armed itself. The kernel has no way to
// ask, short of a probe connection that would be accepted when unarmed.
func (g *Gate) Armed() (bool, error) { return g.armed, nil }

// Close does nothing: the sockets belong to the caller.
func (g *Gate) Close() error { return nil }
