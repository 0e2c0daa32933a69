package reuseport

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/sockfd"
	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

func TestDrain(t *testing.T) {
	gatetest.RequireKernel(t, "reuseport")
	for _, tc := range []struct{ name, network, addr string }{
		{"ipv4", "tcp4", "127.0.0.1:0"},
		{"ipv6", "tcp6", "[::1]:0"},
		{"ipv4 wildcard", "tcp4", "0.0.0.0:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nstest.New(t)
			srv := ours.Listen(t, ns, gatetest.ListenOpts{Network: tc.network, Addr: tc.addr, Sockets: 3, ReusePort: true})
			g, err := Open(srv.Listener)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), srv.Addr.Port())
			if srv.Addr.Addr().Is6() {
				dst = netip.AddrPortFrom(netip.IPv6Loopback(), srv.Addr.Port())
			}
			// Several connects, so each lands on some socket of the group.
			ours.CheckDrain(t, ns, srv, g, dst, slices.Repeat([]netip.AddrPort{dst}, 8))
			ours.RequireClean(t, srv)
		})
	}
}

func TestPersistence(t *testing.T) {
	gatetest.RequireKernel(t, "reuseport")
	ours.CheckPersistence(t, gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0", Sockets: 2, ReusePort: true},
		func(l gate.Listener) (gate.Gate, error) { return Open(l) })
}

func TestNotEligible(t *testing.T) {
	gatetest.RequireKernel(t, "reuseport")
	for _, tc := range []struct {
		name string
		opts gatetest.ListenOpts
	}{
		{"no SO_REUSEPORT", gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0"}},
		{"MPTCP", gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0", ReusePort: true, MPTCP: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nstest.New(t)
			srv := ours.Listen(t, ns, tc.opts)
			if tc.opts.MPTCP {
				gatetest.RequireMPTCP(t, srv)
			}
			if _, err := Open(srv.Listener); !errors.Is(err, gate.ErrNotEligible) {
				t.Fatalf("Open = %v, want ErrNotEligible", err)
			}
		})
	}
}

// TestForeignProgram attaches programs sockdrain did not make, eBPF and
// classic, and checks that the gate refuses the group and, when the
// program arrives between Open and Arm, leaves nothing behind.
func TestForeignProgram(t *testing.T) {
	gatetest.RequireKernel(t, "reuseport")
	for _, tc := range []struct {
		name   string
		attach func(*testing.T, *gatetest.Server)
	}{{"eBPF", attachForeignEBPF}, {"classic BPF", attachForeignCBPF}} {
		t.Run(tc.name+" before Open", func(t *testing.T) {
			ns := nstest.New(t)
			srv := ours.Listen(t, ns, gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0", Sockets: 2, ReusePort: true})
			tc.attach(t, srv)
			if _, err := Open(srv.Listener); !errors.Is(err, gate.ErrNotEligible) {
				t.Fatalf("Open = %v, want ErrNotEligible", err)
			}
		})
		t.Run(tc.name+" before Arm", func(t *testing.T) {
			ns := nstest.New(t)
			srv := ours.Listen(t, ns, gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0", Sockets: 2, ReusePort: true})
			g, err := Open(srv.Listener)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			tc.attach(t, srv)
			if err := g.Arm(); !errors.Is(err, gate.ErrNotEligible) {
				t.Fatalf("Arm = %v, want ErrNotEligible", err)
			}
			ours.RequireClean(t, srv)
			gatetest.MustDial(t, ns, srv.Addr) // the foreign program passes everything
		})
	}
}

func attachForeignEBPF(t *testing.T, srv *gatetest.Server) {
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
	err = sockfd.Control(srv.Listener.Sockets[1], func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_EBPF, prog.FD())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func attachForeignCBPF(t *testing.T, srv *gatetest.Server) {
	t.Helper()
	filter := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	err := sockfd.Control(srv.Listener.Sockets[1], func(fd int) error {
		return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
			&unix.SockFprog{Len: 1, Filter: &filter[0]})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEligibility(t *testing.T) {
	gatetest.RequireKernel(t, "reuseport")
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
