//go:build freebsd && freebsdkernel

package pf

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// TestKernelArmRefusesAndDisarmRestores needs root, pf enabled and
// `anchor "sockdrain/*"` in the main ruleset, and pf not skipping lo0: the
// Vagrant box sets that up.
func TestKernelArmRefusesAndDisarmRestores(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run pfctl")
	}
	if err := Probe(); err != nil {
		t.Skipf("pf not usable: %v", err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := netip.MustParseAddrPort(ln.Addr().String())
	g, err := Open(gate.Listener{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	if ws, _ := g.Warnings(); len(ws) > 0 {
		t.Skipf("pf skips loopback here: %v", ws)
	}
	t.Cleanup(func() { g.Disarm() })
	if err := g.Arm(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", addr.String(), 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect through the armed gate: %v, want connection refused", err)
	}
	if err := g.Disarm(); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		t.Fatalf("connect after Disarm: %v", err)
	}
	c.Close()
	if armed, err := g.Armed(); err != nil || armed {
		t.Errorf("Armed after Disarm = %v, %v", armed, err)
	}
}
