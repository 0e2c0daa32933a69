package gatetest

// On FreeBSD, the gates' kernel tests share a loopback listener and the
// arm-refuses, disarm-restores check.

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

// LoopbackListener skips tb unless it runs as root and probe, the gate's,
// passes; then it listens on 127.0.0.1 for the rest of the test. tool
// names what the gate runs, for the skip message.
func LoopbackListener(tb testing.TB, tool string, probe func() error) netip.AddrPort {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skipf("needs root to run %s", tool)
	}
	if err := probe(); err != nil {
		tb.Skipf("%s not usable: %v", tool, err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// ArmRefusesDisarmRestores arms g, checks that a client of addr is
// refused, disarms it, runs gone (which checks the gate's rules are gone),
// and checks that a client connects again.
func ArmRefusesDisarmRestores(tb testing.TB, g gate.Gate, addr netip.AddrPort, gone func()) {
	tb.Helper()
	tb.Cleanup(func() { g.Disarm() })
	if err := g.Arm(); err != nil {
		tb.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", addr.String(), 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		tb.Fatalf("connect through the armed gate: %v, want connection refused", err)
	}
	if err := g.Disarm(); err != nil {
		tb.Fatal(err)
	}
	gone()
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		tb.Fatalf("connect after Disarm: %v", err)
	}
	c.Close()
}
