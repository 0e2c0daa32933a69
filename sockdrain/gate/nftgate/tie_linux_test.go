package nftgate

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// listenOpts shapes a listener for the tie tests.
type listenOpts struct {
	network, addr string
	mptcp         bool
	group         int // sockets in an SO_REUSEPORT group; 0 for one without
	mark          int // SO_MARK set before bind, if not 0
}

// server is a listener the test closes itself, with the files a gate gets.
type server struct {
	lns   []*net.TCPListener
	files []*os.File
	l     gate.Listener
}

// listenServer opens o's sockets in ns. close ends them; cleanup does too.
func (ns *testNS) listenServer(tb testing.TB, o listenOpts) *server {
	tb.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) {
			if o.group > 0 {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
			if err == nil && o.mark != 0 {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, o.mark)
			}
		})
		return err
	}}
	lc.SetMultipathTCP(o.mptcp)
	s := &server{}
	addr := o.addr
	for range max(o.group, 1) {
		var ln net.Listener
		err := ns.Do(func() (err error) {
			ln, err = lc.Listen(tb.Context(), o.network, addr)
			return err
		})
		if err != nil {
			tb.Fatalf("listen %s %s: %v", o.network, addr, err)
		}
		tl := ln.(*net.TCPListener)
		f, err := tl.File()
		if err != nil {
			tb.Fatal(err)
		}
		s.lns, s.files = append(s.lns, tl), append(s.files, f)
		addr = ln.Addr().String()
	}
	tb.Cleanup(s.close)
	ap := s.lns[0].Addr().(*net.TCPAddr).AddrPort()
	s.l = gate.Listener{NetNS: ns.file, NetNSInode: ns.inode, Addr: ap, Sockets: s.files}
	return s
}

// close closes the listening sockets and the gate's duplicates of them,
// so the kernel closes the listener.
func (s *server) close() {
	for i := range s.lns {
		s.lns[i].Close()
		s.files[i].Close()
	}
}

func mark(tb testing.TB, f *os.File) int {
	tb.Helper()
	m, err := sockoptInt(f, unix.SO_MARK)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustMarks(tb testing.TB, s *server, want int) {
	tb.Helper()
	for i, f := range s.files {
		if got := mark(tb, f); got != want {
			tb.Fatalf("socket %d of %s: mark %#x, want %#x", i, s.l.Addr, got, want)
		}
	}
}

// TestTiedRestart arms a tied gate on a listener with queued and
// established connections, checks the drain, then closes the listener and
// starts a new one on the same address and port while the rule is still
// there: the new one serves. Disarm then removes every rule and chain.
func TestTiedRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    listenOpts
		dial []string
	}{
		{"ipv4", listenOpts{network: "tcp4", addr: "127.0.0.1:0"}, []string{"127.0.0.1"}},
		{"ipv4 mptcp", listenOpts{network: "tcp4", addr: "127.0.0.1:0", mptcp: true}, []string{"127.0.0.1"}},
		{"ipv6", listenOpts{network: "tcp6", addr: "[::1]:0"}, []string{"::1"}},
		{"dual-stack", listenOpts{network: "tcp", addr: "[::]:0"}, []string{"::1", "127.0.0.1"}},
		{"dual-stack mptcp", listenOpts{network: "tcp", addr: "[::]:0", mptcp: true}, []string{"::1", "127.0.0.1"}},
		{"reuseport group", listenOpts{network: "tcp4", addr: "127.0.0.1:0", group: 3}, []string{"127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newTestNS(t)
			old := ns.listenServer(t, tc.o)
			dial := addrs(old.l.Addr.Port(), tc.dial...)
			g := drainTied(t, ns, old, dial)

			old.close()
			next := tc.o
			next.addr = old.l.Addr.String()
			srv := ns.listenServer(t, next)
			if keys := ns.ourRules(t); !slices.Equal(keys, []string{old.l.Key()}) {
				t.Fatalf("rules after restart: %q, want the old listener's", keys)
			}
			for _, a := range dial {
				ns.mustServeAny(t, srv, a)
			}
			fresh := openGate(t, srv.l)
			mustArmed(t, fresh, false)
			mustArmed(t, openGate(t, gate.Listener{NetNS: ns.file, NetNSInode: ns.inode, Addr: srv.l.Addr}), true)

			if err := fresh.Disarm(); err != nil { // what resume does
				t.Fatal(err)
			}
			ns.mustHaveNoTable(t)
			mustMarks(t, srv, 0)
			mustArmed(t, g, false)
		})
	}
}

// drainTied arms a tied gate on s and checks the drain: new clients are
// refused, queued ones served, the established one untouched.
func drainTied(t *testing.T, ns *testNS, s *server, dial []netip.AddrPort) *Gate {
	t.Helper()
	est, err := ns.dial(dial[0])
	if err != nil {
		t.Fatal(err)
	}
	defer est.Close()
	srvEst := acceptAny(t, s)
	defer srvEst.Close()
	queued := ns.queue(t, dial[len(dial)-1], 4)

	g := openGate(t, s.l)
	if !g.Tied() {
		t.Fatalf("Tied() = false: %v", g.WhyUntied())
	}
	for range 2 {
		mustArm(t, g)
	}
	mustArmed(t, g, true)
	mustMarks(t, s, SocketMark)
	for _, a := range dial {
		ns.mustRefuse(t, a)
	}
	exchange(t, est, srvEst, "established")
	serveQueuedAny(t, s, queued)
	return g
}

// acceptAny takes the next connection from any socket of s.
func acceptAny(tb testing.TB, s *server) net.Conn {
	tb.Helper()
	for range 100 {
		for _, ln := range s.lns {
			if c, err := acceptWithin(ln, 20*time.Millisecond); err == nil {
				return c
			}
		}
	}
	tb.Fatalf("accept on %s: nothing queued", s.l.Addr)
	return nil
}

func (ns *testNS) mustServeAny(tb testing.TB, s *server, addr netip.AddrPort) {
	tb.Helper()
	c, err := ns.dial(addr)
	if err != nil {
		tb.Fatalf("connect to %s: %v", addr, err)
	}
	defer c.Close()
	srv := acceptAny(tb, s)
	defer srv.Close()
	exchange(tb, c, srv, "new")
}

func serveQueuedAny(tb testing.TB, s *server, cs []net.Conn) {
	tb.Helper()
	if len(s.lns) == 1 {
		serveQueued(tb, s.lns[0], cs)
		return
	}
	for range cs {
		acceptAny(tb, s).Close()
	}
}

// TestUntied: a listener with a mark of its own, and one without sockets,
// get today's untied rule; the server's mark is left alone, and a new
// listener on the same address is refused until Disarm.
func TestUntied(t *testing.T) {
	ns := newTestNS(t)
	old := ns.listenServer(t, listenOpts{network: "tcp4", addr: "127.0.0.1:0", mark: 0x1})
	g := openGate(t, old.l)
	if g.Tied() || !errors.Is(g.WhyUntied(), errMarked) {
		t.Fatalf("Tied() = %v, WhyUntied() = %v; want untied for a marked socket", g.Tied(), g.WhyUntied())
	}
	if bare := openGate(t, gate.Listener{NetNS: ns.file, NetNSInode: ns.inode, Addr: old.l.Addr}); bare.Tied() {
		t.Fatal("Tied() = true without sockets")
	}
	mustArm(t, g)
	mustMarks(t, old, 0x1)
	ns.mustRefuse(t, old.l.Addr)

	old.close()
	srv := ns.listenServer(t, listenOpts{network: "tcp4", addr: old.l.Addr.String()})
	ns.mustRefuse(t, old.l.Addr)
	if err := openGate(t, srv.l).Disarm(); err != nil {
		t.Fatal(err)
	}
	ns.mustHaveNoTable(t)
	ns.mustServeAny(t, srv, old.l.Addr)
}

// TestTiedTimeWait: a SYN whose 4-tuple is in TIME_WAIT on the server
// side is refused too. The socket lookup finds the TIME_WAIT socket, not
// the listener; without the tied chain's last rule TCP would reopen the
// connection on the draining listener.
func TestTiedTimeWait(t *testing.T) {
	ns := newTestNS(t)
	s := ns.listenServer(t, listenOpts{network: "tcp4", addr: "127.0.0.1:0"})
	client := netip.MustParseAddrPort("127.0.0.1:41000")
	c := ns.dialFrom(t, client, s.l.Addr)
	srv := acceptAny(t, s)
	exchange(t, c, srv, "hello")
	srv.Close() // the server closes first: its side goes to TIME_WAIT
	expectEOF(t, c)
	c.Close()

	g := openGate(t, s.l)
	mustArm(t, g)
	_, err := ns.dialFromErr(client, s.l.Addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect from %s, in TIME_WAIT on the server: %v, want ECONNREFUSED", client, err)
	}
	mustDisarm(t, g)
	ns.mustHaveNoTable(t)
}

func acceptWithin(ln *net.TCPListener, d time.Duration) (net.Conn, error) {
	ln.SetDeadline(time.Now().Add(d))
	c, err := ln.Accept()
	if err == nil {
		c.SetDeadline(time.Now().Add(ioTimeout))
	}
	return c, err
}

// dialFromErr connects from the local address from to addr inside ns.
func (ns *testNS) dialFromErr(from, addr netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		d := net.Dialer{Timeout: ioTimeout, LocalAddr: net.TCPAddrFromAddrPort(from)}
		c, err = d.Dial("tcp", addr.String())
		return err
	})
	if err == nil {
		c.SetDeadline(time.Now().Add(ioTimeout))
	}
	return c, err
}

func (ns *testNS) dialFrom(tb testing.TB, from, addr netip.AddrPort) net.Conn {
	tb.Helper()
	c, err := ns.dialFromErr(from, addr)
	if err != nil {
		tb.Fatalf("connect from %s to %s: %v", from, addr, err)
	}
	return c
}

func expectEOF(tb testing.TB, c net.Conn) {
	tb.Helper()
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		tb.Fatalf("read after the server closed: %d, %v; want EOF", n, err)
	}
}
