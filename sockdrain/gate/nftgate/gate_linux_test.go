package nftgate

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
)

func portOf(ln *net.TCPListener) uint16 {
	return ln.Addr().(*net.TCPAddr).AddrPort().Port()
}

func addrs(port uint16, ips ...string) []netip.AddrPort {
	var aps []netip.AddrPort
	for _, ip := range ips {
		aps = append(aps, netip.AddrPortFrom(netip.MustParseAddr(ip), port))
	}
	return aps
}

// TestDrain arms a gate on a listener with queued and established
// connections: new clients are refused, the queued ones are served, the
// established one keeps working; Disarm lets clients in again and removes
// the table.
func TestDrain(t *testing.T) {
	gatetest.RequireKernel(t, "nftables")
	for _, tc := range []struct {
		name, network, addr string
		dial                []string // addresses clients connect to
	}{
		{"ipv4", "tcp4", "127.0.0.1:0", []string{"127.0.0.1"}},
		{"ipv6", "tcp6", "[::1]:0", []string{"::1"}},
		{"ipv4 wildcard", "tcp4", "0.0.0.0:0", []string{"127.0.0.1", "127.0.0.3"}},
		{"ipv6 wildcard dual-stack", "tcp", "[::]:0", []string{"::1", "127.0.0.1"}},
		{"ipv6 wildcard v6only", "tcp6", "[::]:0", []string{"::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newTestNS(t)
			ln := ns.listen(t, tc.network, tc.addr)
			dial := addrs(portOf(ln), tc.dial...)
			drain(t, ns, ln, dial)
		})
	}
}

func drain(t *testing.T, ns *testNS, ln *net.TCPListener, dial []netip.AddrPort) {
	est, err := ns.dial(dial[0])
	if err != nil {
		t.Fatal(err)
	}
	defer est.Close()
	srvEst := accept(t, ln)
	defer srvEst.Close()
	queued := ns.queue(t, dial[len(dial)-1], 4)

	g := openGate(t, ns.listener(t, ln))
	for range 2 { // idempotent
		mustArm(t, g)
	}
	mustArmed(t, g, true)
	if keys := ns.ourRules(t); len(keys) != 1 {
		t.Fatalf("rules after two Arms: %q, want one", keys)
	}
	for _, a := range dial {
		ns.mustRefuse(t, a)
	}
	exchange(t, est, srvEst, "established")
	serveQueued(t, ln, queued)

	for range 2 {
		mustDisarm(t, g)
	}
	mustArmed(t, g, false)
	ns.mustHaveNoTable(t)
	for _, a := range dial {
		ns.mustServe(t, ln, a)
	}
}

// TestPersist arms in one Gate, closes it, and finds it armed from a
// second one, which disarms.
func TestPersist(t *testing.T) {
	gatetest.RequireKernel(t, "nftables")
	ns := newTestNS(t)
	ln := ns.listen(t, "tcp4", "127.0.0.1:0")
	l := ns.listener(t, ln)
	first, err := Open(l)
	if err != nil {
		t.Fatal(err)
	}
	mustArm(t, first)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Armed(); err == nil {
		t.Error("Armed after Close succeeded")
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	ns.mustRefuse(t, ap)

	second := openGate(t, l)
	mustArmed(t, second, true)
	mustDisarm(t, second)
	ns.mustHaveNoTable(t)
	ns.mustServe(t, ln, ap)
}

// TestIndependent gates two listeners and disarms one: the other keeps
// its rule and keeps refusing.
func TestIndependent(t *testing.T) {
	gatetest.RequireKernel(t, "nftables")
	ns := newTestNS(t)
	a := ns.listen(t, "tcp4", "127.0.0.1:0")
	b := ns.listen(t, "tcp6", "[::1]:0")
	la, lb := ns.listener(t, a), ns.listener(t, b)
	ga, gb := openGate(t, la), openGate(t, lb)
	for _, g := range []*Gate{ga, gb} {
		mustArm(t, g)
	}
	mustDisarm(t, ga)
	mustArmed(t, ga, false)
	mustArmed(t, gb, true)
	if keys := ns.ourRules(t); !slices.Equal(keys, []string{lb.Key()}) {
		t.Fatalf("rules after disarming %s: %q, want only %q", la.Key(), keys, lb.Key())
	}
	ns.mustServe(t, a, la.Addr)
	ns.mustRefuse(t, lb.Addr)

	mustDisarm(t, gb)
	ns.mustHaveNoTable(t)
}

// TestIsolation gates 127.0.0.1:P and checks that another port, another
// address on port P, and IPv4 next to an IPv6-only wildcard keep accepting.
func TestIsolation(t *testing.T) {
	gatetest.RequireKernel(t, "nftables")
	ns := newTestNS(t)
	gated := ns.listen(t, "tcp4", "127.0.0.1:0")
	port := portOf(gated)
	otherPort := ns.listen(t, "tcp4", "127.0.0.1:0")
	otherAddr := ns.listen(t, "tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port).String())
	g := openGate(t, ns.listener(t, gated))
	mustArm(t, g)
	ns.mustRefuse(t, addrs(port, "127.0.0.1")[0])
	ns.mustServe(t, otherPort, addrs(portOf(otherPort), "127.0.0.1")[0])
	ns.mustServe(t, otherAddr, addrs(port, "127.0.0.2")[0])
	mustDisarm(t, g)
}

// TestV6OnlyIsolation gates an IPv6-only wildcard listener: an IPv4
// wildcard listener on the same port keeps accepting.
func TestV6OnlyIsolation(t *testing.T) {
	gatetest.RequireKernel(t, "nftables")
	ns := newTestNS(t)
	v6 := ns.listen(t, "tcp6", "[::]:0")
	port := portOf(v6)
	v4 := ns.listen(t, "tcp4", netip.AddrPortFrom(netip.IPv4Unspecified(), port).String())
	g := openGate(t, ns.listener(t, v6))
	mustArm(t, g)
	ns.mustRefuse(t, addrs(port, "::1")[0])
	ns.mustServe(t, v4, addrs(port, "127.0.0.1")[0])
	mustDisarm(t, g)
}
