package sklookup

import (
	"net"
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

const queued = 4

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
			checkDrain(t, ns, srv, g, tc.dsts)
			ours.RequireClean(t, srv)
		})
	}
}

// checkDrain arms g with clients queued and one established, and checks
// the promise: refused new connects, served queue, working connection.
func checkDrain(t *testing.T, ns *netns.NS, srv *gatetest.Server, g *Gate, dsts []netip.Addr) {
	t.Helper()
	dst := netip.AddrPortFrom(dsts[0], srv.Addr.Port())
	est := gatetest.MustDial(t, ns, dst)
	estSrv := srv.Accept(t)
	var waiting []net.Conn
	for range queued {
		waiting = append(waiting, gatetest.MustDial(t, ns, dst))
	}
	other := ours.Listen(t, ns, gatetest.ListenOpts{Network: "tcp", Addr: netip.AddrPortFrom(dst.Addr(), 0).String()})

	gatetest.ArmTwice(t, g)
	for _, a := range dsts {
		gatetest.RequireRefused(t, ns, netip.AddrPortFrom(a, srv.Addr.Port()))
	}
	gatetest.MustDial(t, ns, other.Addr)
	other.Accept(t)
	srv.ExchangeWaiting(t, waiting)
	gatetest.Exchange(t, est, estSrv)

	gatetest.DisarmTwice(t, g)
	gatetest.MustDial(t, ns, dst)
	srv.Accept(t)
}

// TestRestartedServer checks that a gate left armed refuses a new server
// on the same port only for the grace after the drained listener closed,
// and then never again.
func TestRestartedServer(t *testing.T) {
	gatetest.RequireKernel(t, "sklookup")
	ns := nstest.New(t)
	srv := ours.Listen(t, ns, gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0"})
	g, err := Open(srv.Listener)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
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
	ns := nstest.New(t)
	srv := ours.Listen(t, ns, gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0"})
	g, err := Open(srv.Listener)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
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
