package shutdown

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// probeTimeout bounds the probe connection; a refused one returns at once.
const probeTimeout = 2 * time.Second

// Probe reports whether this kernel honours shutdown() on a listener.
func Probe() error {
	rel, err := unix.SysctlUint32("kern.osreldate")
	if err != nil {
		return fmt.Errorf("probe shutdown gate: %w: %w", os.NewSyscallError("sysctl kern.osreldate", err), gate.ErrNotSupported)
	}
	return Supported(rel)
}

// Open returns the shutdown gate of l, which must hold l's sockets.
func Open(l gate.Listener) (*Gate, error) {
	if err := Probe(); err != nil {
		return nil, err
	}
	return newGate(l, system{
		shutdown: func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RDWR) },
		connect:  dialOnce,
	})
}

func dialOnce(addr netip.AddrPort) error {
	c, err := net.DialTimeout("tcp", addr.String(), probeTimeout)
	if err != nil {
		return err
	}
	return c.Close()
}
