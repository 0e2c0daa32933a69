//go:build freebsd && freebsdkernel

package shutdown

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// TestKernelModernFreeBSDHasNoShutdownGate checks, on FreeBSD 11.0 or
// later, both halves of the reason the gate is refused: Probe says
// ErrNotSupported, and shutdown() on a listener fails with ENOTCONN.
func TestKernelModernFreeBSDHasNoShutdownGate(t *testing.T) {
	rel, err := unix.SysctlUint32("kern.osreldate")
	if err != nil {
		t.Fatal(err)
	}
	if rel <= LastOSRelDate {
		t.Skipf("kern.osreldate %d: this kernel honours shutdown() on a listener", rel)
	}
	if err := Probe(); !errors.Is(err, gate.ErrNotSupported) {
		t.Errorf("Probe on osreldate %d = %v, want ErrNotSupported", rel, err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Shutdown(int(f.Fd()), unix.SHUT_RDWR); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("shutdown of a listener = %v, want ENOTCONN", err)
	}
}
