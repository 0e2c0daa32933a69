package sklookup

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

var (
	lo4 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.IPv6Loopback()
)

func TestDrain(t *testing.T) {
	gatetest.RequireKernel(t, "sklookup")
	for _, tc := range []struct {
		name string
		opts gatetest.ListenOpts
		dsts []netip.Addr // addresses a new connect must be refused on
		tied bool
	}{
		{"ipv4", gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0"}, []netip.Addr{lo4}, true},
		{"ipv6", gatetest.ListenOpts{Network: "tcp6", Addr: "[::1]:0"}, []netip.Addr{lo6}, true},
		{"ipv4 wildcard", gatetest.ListenOpts{Network: "tcp4", Addr: "0.0.0.0:0"}, []netip.Addr{lo4}, true},
		{"dual-stack wildcard", gatetest.ListenOpts{Network: "tcp", Addr: "[::]:0"}, []netip.Addr{lo6, lo4}, true},
		{"reuseport group", gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0", Sockets: 2, ReusePort: true}, []netip.Addr{lo4}, true},
		{"MPTCP", gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0", MPTCP: true}, []netip.Addr{lo4}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nstest.New(t)
			srv := ours.Listen(t, ns, tc.opts)
			if tc.opts.MPTCP {
				gatetest.RequireMPTCP(t, srv)
			}
			g, err := Open(srv.Listener)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if g.Tied() != tc.tied {
				t.Errorf("Tied() = %v, want %v", g.Tied(), tc.tied)
			}
			var refused []netip.AddrPort
			for _, a := range tc.dsts {
				refused = append(refused, netip.AddrPortFrom(a, srv.Addr.Port()))
			}
			ours.CheckDrain(t, ns, srv, g, refused[0], refused)
			ours.RequireClean(t, srv)
		})
	}
}

// TestRestartedServer checks that a gate left armed refuses a new server
// on the same port only for the grace after the drained listener closed,
// and then never again.
func TestRestartedServer(t *testing.T) {
	gatetest.RequireKernel(t, "sklookup")
	ns, srv, g := openOnLoopback(t)
	const grace = time.Second // long enough to see, on a slow machine too
	g.cfg.GraceNs = uint64(grace)
	gatetest.ArmTwice(t, g)
	gatetest.RequireRefused(t, ns, srv.Addr) // the program sees the listener open

	for _, ln := range srv.Sockets {
		ln.Close()
	}
	for _, f := range srv.Listener.Sockets {
		f.Close()
	}
	closed := time.Now()
	again := ours.Listen(t, ns, gatetest.ListenOpts{Network: "tcp4", Addr: srv.Addr.String()})
	gatetest.RequireRefused(t, ns, again.Addr)
	if armed, err := g.Armed(); err != nil || !armed {
		t.Errorf("Armed() within the grace after the drained listener closed = %v, %v; want true", armed, err)
	}
	served := nstest.WaitFor(3*grace, func() bool {
		c, err := nstest.DialErr(ns, again.Addr.String())
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if !served {
		t.Fatalf("the new server was still refused %s after the drained listener closed", time.Since(closed))
	}
	if d := time.Since(closed); d < grace/2 {
		t.Errorf("the new server was served %s after the drained listener closed; want refusals for about %s", d, grace)
	}
	again.Accept(t)
	if armed, err := g.Armed(); err != nil || armed {
		t.Errorf("Armed() after the grace = %v, %v; want false", armed, err)
	}
	if err := g.Disarm(); err != nil {
		t.Fatal(err)
	}
	ours.RequireClean(t, srv)
}

func TestPersistence(t *testing.T) {
	gatetest.RequireKernel(t, "sklookup")
	ours.CheckPersistence(t, gatetest.ListenOpts{Network: "tcp6", Addr: "[::1]:0"},
		func(l gate.Listener) (gate.Gate, error) { return Open(l) })
}

// TestFailedArm makes Arm fail after it loaded the program, with a socket
// a SOCKMAP refuses, and checks that it leaves nothing behind.
func TestFailedArm(t *testing.T) {
	gatetest.RequireKernel(t, "sklookup")
	ns := nstest.New(t)
	srv := ours.Listen(t, ns, gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0"})
	var fd int
	err := ns.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	unbound := osFile(t, fd)
	l := srv.Listener
	l.Sockets = append(slices.Clone(l.Sockets), unbound)
	g, err := Open(l)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Arm(); err == nil {
		t.Fatal("Arm with an unbound socket succeeded")
	}
	ours.RequireClean(t, srv)
	gatetest.MustDial(t, ns, srv.Addr)
}

func TestOtherPrograms(t *testing.T) {
	gatetest.RequireKernel(t, "sklookup")
	_, srv, g := openOnLoopback(t)
	gatetest.ArmTwice(t, g)
	defer g.Disarm()
	if others, err := OtherPrograms(srv.Listener.NetNS); err != nil || len(others) != 0 {
		t.Fatalf("OtherPrograms with only the gate = %v, %v; want none", others, err)
	}
	_, detach := attachForeign(t, srv.Listener.NetNS)
	defer detach()
	others, err := OtherPrograms(srv.Listener.NetNS)
	if err != nil || len(others) != 1 || others[0].Name != "foreign" {
		t.Fatalf("OtherPrograms = %v, %v; want the foreign program", others, err)
	}
}

// openOnLoopback opens a gate on a listener on 127.0.0.1 in a new
// namespace, and closes it when t ends.
func openOnLoopback(t *testing.T) (*netns.NS, *gatetest.Server, *Gate) {
	t.Helper()
	ns := nstest.New(t)
	srv := ours.Listen(t, ns, gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0"})
	g, err := Open(srv.Listener)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return ns, srv, g
}
