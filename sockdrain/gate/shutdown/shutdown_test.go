package shutdown

import (
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

func TestSupported(t *testing.T) {
	for _, tc := range []struct {
		rel uint32
		ok  bool
	}{
		{1004000, true},  // 10.4
		{1100076, true},  // last 11-CURRENT before the change
		{1100077, false}, // listeners return ENOTCONN from here
		{1100122, false}, // 11.0-RELEASE
		{1403000, false}, // 14.3
		{1500000, false},
	} {
		err := Supported(tc.rel)
		if (err == nil) != tc.ok {
			t.Errorf("Supported(%d) = %v, want ok=%v", tc.rel, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, gate.ErrNotSupported) || !errors.Is(err, errModernKernel)) {
			t.Errorf("Supported(%d) = %v, want ErrNotSupported with the reason", tc.rel, err)
		}
	}
}

func TestProbeAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:80": "127.0.0.1:80", "[::]:80": "[::1]:80", "10.0.0.1:80": "10.0.0.1:80",
	} {
		if got := probeAddr(netip.MustParseAddrPort(in)); got.String() != want {
			t.Errorf("probeAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func heldListener(t *testing.T) gate.Listener {
	f, err := os.CreateTemp(t.TempDir(), "sock") // stands in for a socket: only its fd is passed on
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return gate.Listener{Addr: netip.MustParseAddrPort("0.0.0.0:8080"), Sockets: []*os.File{f}}
}

func TestArmVerifiesRefusal(t *testing.T) {
	var shut []int
	var probed []netip.AddrPort
	sys := system{
		shutdown: func(fd int) error { shut = append(shut, fd); return nil },
		connect:  func(a netip.AddrPort) error { probed = append(probed, a); return syscall.ECONNREFUSED },
	}
	l := heldListener(t)
	g, err := newGate(l, sys)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Arm(); err != nil {
		t.Fatal(err)
	}
	if len(shut) != 1 || shut[0] != int(l.Sockets[0].Fd()) || len(probed) != 1 || probed[0].String() != "127.0.0.1:8080" {
		t.Errorf("Arm shut %v and probed %v", shut, probed)
	}
	if armed, _ := g.Armed(); !armed {
		t.Error("Armed = false after Arm")
	}
	if err := g.Arm(); err != nil || len(shut) != 1 {
		t.Errorf("second Arm = %v, shut %d times; want a no-op", err, len(shut))
	}
	if err := g.Disarm(); !errors.Is(err, gate.ErrNotSupported) {
		t.Errorf("Disarm = %v, want ErrNotSupported", err)
	}
}

func TestArmFailsWhenProbeConnects(t *testing.T) {
	for _, probeErr := range []error{nil, syscall.ETIMEDOUT} {
		g, err := newGate(heldListener(t), system{
			shutdown: func(int) error { return nil },
			connect:  func(netip.AddrPort) error { return probeErr },
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Arm(); err == nil {
			t.Errorf("Arm with probe result %v succeeded", probeErr)
		}
		if armed, _ := g.Armed(); armed {
			t.Errorf("Armed = true after a failed Arm (probe %v)", probeErr)
		}
	}
}

func TestArmFailsOnENOTCONN(t *testing.T) {
	g, err := newGate(heldListener(t), system{
		shutdown: func(int) error { return syscall.ENOTCONN },
		connect:  func(netip.AddrPort) error { t.Error("probed after shutdown failed"); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Arm(); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("Arm = %v, want ENOTCONN", err)
	}
}

func TestOpenNeedsHeldSocket(t *testing.T) {
	_, err := newGate(gate.Listener{Addr: netip.MustParseAddrPort("0.0.0.0:80")}, system{})
	if !errors.Is(err, gate.ErrNotEligible) {
		t.Errorf("newGate without sockets = %v, want ErrNotEligible", err)
	}
}
