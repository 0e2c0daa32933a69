package nftgate

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// ioTimeout bounds every dial, accept, read and write in the tests, so a
// gate that drops SYNs instead of refusing them fails instead of hanging.
const ioTimeout = 2 * time.Second

// testNS is a fresh namespace and the file a gate.Listener carries.
type testNS struct {
	*netns.NS
	file  *os.File
	inode uint64
}

func newTestNS(tb testing.TB) *testNS {
	tb.Helper()
	ns := nstest.New(tb)
	f, err := os.Open(ns.Path())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		tb.Fatal(err)
	}
	return &testNS{NS: ns, file: f, inode: st.Ino}
}

// listen opens a listener on network ("tcp", "tcp4", "tcp6") and addr
// inside ns, closed when tb ends.
func (ns *testNS) listen(tb testing.TB, network, addr string) *net.TCPListener {
	tb.Helper()
	var ln net.Listener
	err := ns.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		tb.Fatalf("listen %s %s: %v", network, addr, err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// listener describes ln as a gate.Listener, with its socket.
func (ns *testNS) listener(tb testing.TB, ln *net.TCPListener) gate.Listener {
	tb.Helper()
	f, err := ln.File()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return gate.Listener{
		NetNS:      ns.file,
		NetNSInode: ns.inode,
		Addr:       ln.Addr().(*net.TCPAddr).AddrPort(),
		Sockets:    []*os.File{f},
	}
}

// dial connects to addr from inside ns.
func (ns *testNS) dial(addr netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", addr.String(), ioTimeout)
		return err
	})
	if err == nil {
		c.SetDeadline(time.Now().Add(ioTimeout))
	}
	return c, err
}

// mustRefuse fails tb unless a connect to addr gets ECONNREFUSED.
func (ns *testNS) mustRefuse(tb testing.TB, addr netip.AddrPort) {
	tb.Helper()
	c, err := ns.dial(addr)
	if err == nil {
		c.Close()
		tb.Fatalf("connect to %s succeeded, want ECONNREFUSED", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		tb.Fatalf("connect to %s: %v, want ECONNREFUSED", addr, err)
	}
}

// mustServe fails tb unless a new client on addr is accepted by ln and
// gets an answer.
func (ns *testNS) mustServe(tb testing.TB, ln *net.TCPListener, addr netip.AddrPort) {
	tb.Helper()
	c, err := ns.dial(addr)
	if err != nil {
		tb.Fatalf("connect to %s: %v", addr, err)
	}
	defer c.Close()
	s := accept(tb, ln)
	defer s.Close()
	exchange(tb, c, s, "new")
}

func accept(tb testing.TB, ln *net.TCPListener) net.Conn {
	tb.Helper()
	ln.SetDeadline(time.Now().Add(ioTimeout))
	s, err := ln.Accept()
	if err != nil {
		tb.Fatalf("accept on %s: %v", ln.Addr(), err)
	}
	s.SetDeadline(time.Now().Add(ioTimeout))
	return s
}

// exchange sends msg from client to server and the reply back.
func exchange(tb testing.TB, client, server net.Conn, msg string) {
	tb.Helper()
	if _, err := io.WriteString(client, msg); err != nil {
		tb.Fatalf("client write: %v", err)
	}
	expect(tb, server, msg)
	if _, err := io.WriteString(server, "re:"+msg); err != nil {
		tb.Fatalf("server write: %v", err)
	}
	expect(tb, client, "re:"+msg)
}

func expect(tb testing.TB, c net.Conn, want string) {
	tb.Helper()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil {
		tb.Fatalf("read %q: %v", want, err)
	}
	if string(buf) != want {
		tb.Fatalf("read %q, want %q", buf, want)
	}
}

// queue connects n clients to addr that ln does not accept yet; each has
// sent "queued-i" already.
func (ns *testNS) queue(tb testing.TB, addr netip.AddrPort, n int) []net.Conn {
	tb.Helper()
	var cs []net.Conn
	for i := range n {
		c, err := ns.dial(addr)
		if err != nil {
			tb.Fatalf("connect queued client %d: %v", i, err)
		}
		tb.Cleanup(func() { c.Close() })
		if _, err := fmt.Fprintf(c, "queued-%d", i); err != nil {
			tb.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// serveQueued accepts every queued client, reads its greeting and answers.
func serveQueued(tb testing.TB, ln *net.TCPListener, cs []net.Conn) {
	tb.Helper()
	byMsg := map[string]net.Conn{}
	for i, c := range cs {
		byMsg[fmt.Sprintf("queued-%d", i)] = c
	}
	for range cs {
		s := accept(tb, ln)
		buf := make([]byte, len("queued-0"))
		if _, err := io.ReadFull(s, buf); err != nil {
			tb.Fatalf("read queued greeting: %v", err)
		}
		c, ok := byMsg[string(buf)]
		if !ok {
			tb.Fatalf("unexpected greeting %q", buf)
		}
		delete(byMsg, string(buf))
		exchange(tb, c, s, "after-"+string(buf))
		s.Close()
	}
}

// conn is an nftables client in ns, for looking at its ruleset.
func (ns *testNS) conn(tb testing.TB) *nftables.Conn {
	tb.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(ns.FD()))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// tables lists every table in ns as "family name".
func (ns *testNS) tables(tb testing.TB) []string {
	tb.Helper()
	ts, err := ns.conn(tb).ListTables()
	if err != nil {
		tb.Fatalf("list tables: %v", err)
	}
	var names []string
	for _, t := range ts {
		names = append(names, fmt.Sprintf("%d %s", t.Family, t.Name))
	}
	return names
}

// mustHaveNoTable fails tb if ns holds a table named TableName.
func (ns *testNS) mustHaveNoTable(tb testing.TB) {
	tb.Helper()
	for _, name := range ns.tables(tb) {
		if name == fmt.Sprintf("%d %s", nftables.TableFamilyINet, TableName) {
			tb.Fatalf("table inet %s left behind: tables %q", TableName, ns.tables(tb))
		}
	}
}

// ourRules lists the comments of the rules in our chain.
func (ns *testNS) ourRules(tb testing.TB) []string {
	tb.Helper()
	t := table()
	rules, err := ns.conn(tb).GetRules(t, chain(t))
	if err != nil {
		tb.Fatalf("list rules: %v", err)
	}
	var keys []string
	for _, r := range rules {
		keys = append(keys, commentOf(r.UserData))
	}
	return keys
}

func openGate(tb testing.TB, l gate.Listener) *Gate {
	tb.Helper()
	g, err := Open(l)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

// openOnLoopback listens on 127.0.0.1 in ns, at a port the kernel picks,
// and opens a gate on that listener.
func (ns *testNS) openOnLoopback(tb testing.TB) (*net.TCPListener, *Gate) {
	tb.Helper()
	ln := ns.listen(tb, "tcp4", "127.0.0.1:0")
	return ln, openGate(tb, ns.listener(tb, ln))
}

// mustArm arms g, failing tb on an error.
func mustArm(tb testing.TB, g *Gate) {
	tb.Helper()
	if err := g.Arm(); err != nil {
		tb.Fatal(err)
	}
}

// mustDisarm disarms g, failing tb on an error.
func mustDisarm(tb testing.TB, g *Gate) {
	tb.Helper()
	if err := g.Disarm(); err != nil {
		tb.Fatal(err)
	}
}

// mustArmed fails tb unless g says it is armed as want.
func mustArmed(tb testing.TB, g *Gate, want bool) {
	tb.Helper()
	got, err := g.Armed()
	if err != nil {
		tb.Fatal(err)
	}
	if got != want {
		tb.Fatalf("Armed() = %v, want %v", got, want)
	}
}
