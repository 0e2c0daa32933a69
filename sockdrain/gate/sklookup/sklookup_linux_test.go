package sklookup

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
	"github.com/sockdrain/sockdrain/sockdrain/netns"
	"github.com/sockdrain/sockdrain/sockdrain/nstest"
)

const queued = 4

var (
	lo4 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.IPv6Loopback()
)

func TestDrain(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts listenOpts
		dsts []netip.Addr // addresses a new connect must be refused on
		tied bool
	}{
		{"ipv4", listenOpts{network: "tcp4", addr: "127.0.0.1:0"}, []netip.Addr{lo4}, true},
		{"ipv6", listenOpts{network: "tcp6", addr: "[::1]:0"}, []netip.Addr{lo6}, true},
		{"ipv4 wildcard", listenOpts{network: "tcp4", addr: "0.0.0.0:0"}, []netip.Addr{lo4}, true},
		{"dual-stack wildcard", listenOpts{network: "tcp", addr: "[::]:0"}, []netip.Addr{lo6, lo4}, true},
		{"reuseport group", listenOpts{network: "tcp4", addr: "127.0.0.1:0", sockets: 2, reuseport: true}, []netip.Addr{lo4}, true},
		{"MPTCP", listenOpts{network: "tcp4", addr: "127.0.0.1:0", mptcp: true}, []netip.Addr{lo4}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nstest.New(t)
			srv := listen(t, ns, tc.opts)
			if tc.opts.mptcp {
				requireMPTCP(t, srv)
			}
			g, err := Open(srv.gl)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if g.Tied() != tc.tied {
				t.Errorf("Tied() = %v, want %v", g.Tied(), tc.tied)
			}
			checkDrain(t, ns, srv, g, tc.dsts)
			requireClean(t, srv.gl)
		})
	}
}

// checkDrain arms g with clients queued and one established, and checks
// the promise: refused new connects, served queue, working connection.
func checkDrain(t *testing.T, ns *netns.NS, srv *server, g *Gate, dsts []netip.Addr) {
	t.Helper()
	dst := netip.AddrPortFrom(dsts[0], srv.addr.Port())
	est := mustDial(t, ns, dst)
	estSrv := srv.accept(t)
	var waiting []net.Conn
	for range queued {
		waiting = append(waiting, mustDial(t, ns, dst))
	}
	other := listen(t, ns, listenOpts{network: "tcp", addr: netip.AddrPortFrom(dst.Addr(), 0).String()})

	armTwice(t, g)
	for _, a := range dsts {
		requireRefused(t, ns, netip.AddrPortFrom(a, srv.addr.Port()))
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

// TestRestartedServer checks that a gate left armed never refuses a new
// server on the same port once the drained listener is closed.
func TestRestartedServer(t *testing.T) {
	ns := nstest.New(t)
	srv := listen(t, ns, listenOpts{network: "tcp4", addr: "127.0.0.1:0"})
	g, err := Open(srv.gl)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	armTwice(t, g)
	requireRefused(t, ns, srv.addr)

	for _, ln := range srv.lns {
		ln.Close()
	}
	for _, f := range srv.gl.Sockets {
		f.Close()
	}
	again := listen(t, ns, listenOpts{network: "tcp4", addr: srv.addr.String()})
	mustDial(t, ns, again.addr)
	again.accept(t)
	if armed, err := g.Armed(); err != nil || armed {
		t.Errorf("Armed() with the drained listener closed = %v, %v; want false", armed, err)
	}
	if err := g.Disarm(); err != nil {
		t.Fatal(err)
	}
	requireClean(t, srv.gl)
}

func TestPersistence(t *testing.T) {
	ns := nstest.New(t)
	srv := listen(t, ns, listenOpts{network: "tcp6", addr: "[::1]:0"})
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
	armTwice(t, g2) // finds the pinned link: attaches nothing new
	requireState(t, srv.gl, armedState)
	disarmTwice(t, g2)
	requireClean(t, srv.gl)
	mustDial(t, ns, srv.addr)
}

// TestFailedArm makes Arm fail after it loaded the program, with a socket
// a SOCKMAP refuses, and checks that it leaves nothing behind.
func TestFailedArm(t *testing.T) {
	ns := nstest.New(t)
	srv := listen(t, ns, listenOpts{network: "tcp4", addr: "127.0.0.1:0"})
	var fd int
	err := ns.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	unbound := osFile(t, fd)
	l := srv.gl
	l.Sockets = append(slices.Clone(l.Sockets), unbound)
	g, err := Open(l)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Arm(); err == nil {
		t.Fatal("Arm with an unbound socket succeeded")
	}
	requireClean(t, srv.gl)
	mustDial(t, ns, srv.addr)
}

func TestOtherPrograms(t *testing.T) {
	ns := nstest.New(t)
	srv := listen(t, ns, listenOpts{network: "tcp4", addr: "127.0.0.1:0"})
	g, err := Open(srv.gl)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	armTwice(t, g)
	defer g.Disarm()
	if others, err := OtherPrograms(srv.gl.NetNS); err != nil || len(others) != 0 {
		t.Fatalf("OtherPrograms with only the gate = %v, %v; want none", others, err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "foreign",
		Type:         ebpf.SkLookup,
		AttachType:   ebpf.AttachSkLookup,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()},
		License:      "MIT",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	lk, err := link.AttachNetNs(int(srv.gl.NetNS.Fd()), prog)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	others, err := OtherPrograms(srv.gl.NetNS)
	if err != nil || len(others) != 1 || others[0].Name != "foreign" {
		t.Fatalf("OtherPrograms = %v, %v; want the foreign program", others, err)
	}
}
