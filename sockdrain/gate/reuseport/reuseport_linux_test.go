package reuseport

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
	"github.com/sockdrain/sockdrain/sockdrain/netns"
	"github.com/sockdrain/sockdrain/sockdrain/nstest"
)

const queued = 4

func TestDrain(t *testing.T) {
	for _, tc := range []struct{ name, network, addr string }{
		{"ipv4", "tcp4", "127.0.0.1:0"},
		{"ipv6", "tcp6", "[::1]:0"},
		{"ipv4 wildcard", "tcp4", "0.0.0.0:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nstest.New(t)
			srv := listen(t, ns, listenOpts{network: tc.network, addr: tc.addr, sockets: 3, reuseport: true})
			g, err := Open(srv.gl)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			checkDrain(t, ns, srv, g)
			requireClean(t, srv.gl)
		})
	}
}

// checkDrain arms g with clients queued and one established, and checks
// the promise: refused new connects, served queue, working connection.
func checkDrain(t *testing.T, ns *netns.NS, srv *server, g *Gate) {
	t.Helper()
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), srv.addr.Port())
	if srv.addr.Addr().Is6() {
		dst = netip.AddrPortFrom(netip.IPv6Loopback(), srv.addr.Port())
	}
	est := mustDial(t, ns, dst)
	estSrv := srv.accept(t)
	var waiting []net.Conn
	for range queued {
		waiting = append(waiting, mustDial(t, ns, dst))
	}
	other := listen(t, ns, listenOpts{network: "tcp", addr: netip.AddrPortFrom(dst.Addr(), 0).String()})

	armTwice(t, g)
	for range 8 { // several connects, so each lands on some socket of the group
		requireRefused(t, ns, dst)
	}
	mustDial(t, ns, other.addr)
	other.accept(t)
	accepted := map[string]net.Conn{}
	for range waiting {
		c := srv.accept(t)
		accepted[c.RemoteAddr().String()] = c
	}
	for _, c := range waiting {
		exchange(t, c, accepted[c.LocalAddr().String()])
	}
	exchange(t, est, estSrv)

	disarmTwice(t, g)
	mustDial(t, ns, dst)
	srv.accept(t)
}

func armTwice(t *testing.T, g gate.Gate) {
	t.Helper()
	for range 2 {
		if err := g.Arm(); err != nil {
			t.Fatalf("arm: %v", err)
		}
	}
	if armed, err := g.Armed(); err != nil || !armed {
		t.Fatalf("Armed() after Arm = %v, %v", armed, err)
	}
}

func disarmTwice(t *testing.T, g gate.Gate) {
	t.Helper()
	for range 2 {
		if err := g.Disarm(); err != nil {
			t.Fatalf("disarm: %v", err)
		}
	}
	if armed, err := g.Armed(); err != nil || armed {
		t.Fatalf("Armed() after Disarm = %v, %v", armed, err)
	}
}

func TestPersistence(t *testing.T) {
	ns := nstest.New(t)
	srv := listen(t, ns, listenOpts{network: "tcp4", addr: "127.0.0.1:0", sockets: 2, reuseport: true})
	g, err := Open(srv.gl)
	if err != nil {
		t.Fatal(err)
	}
	armTwice(t, g)
	armedState := snapshot(t, srv.gl)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	requireRefused(t, ns, srv.addr)

	g2, err := Open(srv.gl)
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	armTwice(t, g2) // finds the pinned program: attaches nothing new
	requireState(t, srv.gl, armedState)
	disarmTwice(t, g2)
	requireClean(t, srv.gl)
	mustDial(t, ns, srv.addr)
}

func TestNotEligible(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts listenOpts
	}{
		{"no SO_REUSEPORT", listenOpts{network: "tcp4", addr: "127.0.0.1:0"}},
		{"MPTCP", listenOpts{network: "tcp4", addr: "127.0.0.1:0", reuseport: true, mptcp: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nstest.New(t)
			srv := listen(t, ns, tc.opts)
			if tc.opts.mptcp {
				requireMPTCP(t, srv)
			}
			if _, err := Open(srv.gl); !errors.Is(err, gate.ErrNotEligible) {
				t.Fatalf("Open = %v, want ErrNotEligible", err)
			}
		})
	}
}

func requireMPTCP(t *testing.T, srv *server) {
	t.Helper()
	var proto int
	control(srv.gl.Sockets[0], func(fd int) (err error) {
		proto, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		return err
	})
	if proto != ipprotoMPTCP {
		t.Skipf("kernel made protocol %d, not MPTCP (net.mptcp.enabled=0?)", proto)
	}
}

// TestForeignProgram attaches programs sockdrain did not make, eBPF and
// classic, and checks that the gate refuses the group and, when the
// program arrives between Open and Arm, leaves nothing behind.
func TestForeignProgram(t *testing.T) {
	for _, tc := range []struct {
		name   string
		attach func(*testing.T, *server)
	}{{"eBPF", attachForeignEBPF}, {"classic BPF", attachForeignCBPF}} {
		t.Run(tc.name+" before Open", func(t *testing.T) {
			ns := nstest.New(t)
			srv := listen(t, ns, listenOpts{network: "tcp4", addr: "127.0.0.1:0", sockets: 2, reuseport: true})
			tc.attach(t, srv)
			if _, err := Open(srv.gl); !errors.Is(err, gate.ErrNotEligible) {
				t.Fatalf("Open = %v, want ErrNotEligible", err)
			}
		})
		t.Run(tc.name+" before Arm", func(t *testing.T) {
			ns := nstest.New(t)
			srv := listen(t, ns, listenOpts{network: "tcp4", addr: "127.0.0.1:0", sockets: 2, reuseport: true})
			g, err := Open(srv.gl)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			tc.attach(t, srv)
			if err := g.Arm(); !errors.Is(err, gate.ErrNotEligible) {
				t.Fatalf("Arm = %v, want ErrNotEligible", err)
			}
			requireClean(t, srv.gl)
			mustDial(t, ns, srv.addr) // the foreign program passes everything
		})
	}
}

func attachForeignEBPF(t *testing.T, srv *server) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SkReuseport,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()},
		License:      "MIT",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	err = control(srv.gl.Sockets[1], func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_EBPF, prog.FD())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func attachForeignCBPF(t *testing.T, srv *server) {
	t.Helper()
	filter := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	err := control(srv.gl.Sockets[1], func(fd int) error {
		return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
			&unix.SockFprog{Len: 1, Filter: &filter[0]})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEligibility(t *testing.T) {
	for _, tc := range []struct {
		name                           string
		listening, reuseport, protocol int
		ok                             bool
	}{
		{"reuseport listener", 1, 1, unix.IPPROTO_TCP, true},
		{"no reuseport", 1, 0, unix.IPPROTO_TCP, false},
		{"MPTCP", 1, 1, ipprotoMPTCP, false},
		{"not listening", 0, 1, unix.IPPROTO_TCP, false},
		{"SCTP", 1, 1, unix.IPPROTO_SCTP, false},
	} {
		err := eligibility("s", tc.listening, tc.reuseport, tc.protocol)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, gate.ErrNotEligible) {
			t.Errorf("%s: eligibility = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
