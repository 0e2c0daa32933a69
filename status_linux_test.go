package sockdrain_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// settle polls the status of t until check accepts it, then returns it; it
// fails tb with the last status seen after two seconds.
func settle(tb testing.TB, t sockdrain.Target, check func([]sockdrain.Listener) bool) []sockdrain.Listener {
	tb.Helper()
	var ls []sockdrain.Listener
	var err error
	if !nstest.WaitFor(2*time.Second, func() bool {
		ls, err = sockdrain.Status(t)
		return err == nil && check(ls)
	}) {
		tb.Fatalf("status of %s never settled: %+v, err %v", t, ls, err)
	}
	return ls
}

func target(tb testing.TB, ns *netns.NS, addr net.Addr) sockdrain.Target {
	tb.Helper()
	t, err := sockdrain.ParseListen(addr.String())
	if err != nil {
		tb.Fatal(err)
	}
	t.NetNS = ns.Path()
	return t
}

func one(ls []sockdrain.Listener) sockdrain.Listener {
	if len(ls) != 1 {
		return sockdrain.Listener{Sockets: -1}
	}
	return ls[0]
}

func TestStatusCountsQueuedAcceptedAndCloseWait(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			ns := nstest.New(t)
			ln := nstest.Listen(t, ns, addr, nil)
			tg := target(t, ns, ln.Addr())
			clients := map[string]net.Conn{}
			for range 10 {
				c := nstest.Dial(t, ns, ln.Addr().String())
				clients[c.LocalAddr().String()] = c
			}
			var accepted []net.Conn
			for range 3 {
				c, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				accepted = append(accepted, c)
			}
			l := one(settle(t, tg, func(ls []sockdrain.Listener) bool { return one(ls).AcceptQueue == 7 }))
			if l.Established != 3 || l.CloseWait != 0 || l.SynRecv != 0 || l.Sockets != 1 || l.Backlog == 0 {
				t.Errorf("got %+v, want 3 established, 0 close_wait, 0 syn_recv, 1 socket, a backlog", l)
			}
			if !slices.Equal(l.PIDs, []int{os.Getpid()}) {
				t.Errorf("pids = %v, want [%d]", l.PIDs, os.Getpid())
			}
			if l.Listen.String() != ln.Addr().String() {
				t.Errorf("listen = %s, want %s", l.Listen, ln.Addr())
			}

			// A client closes a connection the server accepted but has not
			// closed: CLOSE_WAIT. One still queued closes too: it stays in
			// the accept queue, not in close_wait.
			clients[accepted[0].RemoteAddr().String()].Close()
			for local, c := range clients {
				if local != accepted[1].RemoteAddr().String() && local != accepted[2].RemoteAddr().String() &&
					local != accepted[0].RemoteAddr().String() {
					c.Close()
					break
				}
			}
			settle(t, tg, func(ls []sockdrain.Listener) bool {
				l := one(ls)
				return l.CloseWait == 1 && l.Established == 2 && l.AcceptQueue == 7
			})
		})
	}
}

// dropFinalACKs makes the handshakes to port in ns stay half-open: an nft
// rule drops every pure ACK the clients send to it.
func dropFinalACKs(tb testing.TB, ns *netns.NS, port uint16) {
	tb.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(ns.FD()))
	if err != nil {
		tb.Fatal(err)
	}
	tbl := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "sdtest"})
	ch := c.AddChain(&nftables.Chain{Name: "in", Table: tbl, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
	c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x10}}, // ACK alone
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		tb.Fatalf("add nft rule: %v", err)
	}
}

func TestStatusCountsHalfOpenHandshakes(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	tg := target(t, ns, ln.Addr())
	dropFinalACKs(t, ns, tg.Port)
	for range 4 {
		nstest.Dial(t, ns, ln.Addr().String()) // the client side completes
	}
	l := one(settle(t, tg, func(ls []sockdrain.Listener) bool { return one(ls).SynRecv == 4 }))
	if l.AcceptQueue != 0 || l.Established != 0 {
		t.Errorf("half-open handshakes counted elsewhere too: %+v", l)
	}
}

func TestStatusCountsClosingSocketsAndUnackedBytes(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	tg := target(t, ns, ln.Addr())
	client := nstest.Dial(t, ns, ln.Addr().String())
	client.SetReadBuffer(4096) // a small window that fills, so bytes stay unacknowledged
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	const sent = 4 << 20
	srv.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	n, _ := srv.Write(make([]byte, sent)) // blocks once both buffers are full
	srv.Close()                           // FIN_WAIT1, holding what the client has not taken
	l := one(settle(t, tg, func(ls []sockdrain.Listener) bool { return one(ls).Closing == 1 }))
	if l.UnackedBytes <= 0 || l.UnackedBytes > int64(n) {
		t.Errorf("unacked_bytes = %d, want in (0, %d]", l.UnackedBytes, n)
	}
	if l.Established != 0 {
		t.Errorf("closed connection still counted established: %+v", l)
	}
	client.Close()
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
	return errors.Join(err, serr)
}

func TestStatusReuseportGroupAndBothFamilies(t *testing.T) {
	ns := nstest.New(t)
	a := nstest.Listen(t, ns, "0.0.0.0:0", reusePort)
	port := a.Addr().(*net.TCPAddr).Port
	nstest.Listen(t, ns, netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port)).String(), reusePort)
	nstest.Listen(t, ns, netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port)).String(), nil)
	for range 6 {
		nstest.Dial(t, ns, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String())
	}
	for range 2 {
		nstest.Dial(t, ns, netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port)).String())
	}
	all := sockdrain.Target{Port: uint16(port), NetNS: ns.Path()}
	ls := settle(t, all, func(ls []sockdrain.Listener) bool {
		return len(ls) == 2 && ls[0].AcceptQueue == 6 && ls[1].AcceptQueue == 2
	})
	if ls[0].Sockets != 2 || ls[1].Sockets != 1 {
		t.Errorf("sockets per listener = %d, %d; want 2, 1", ls[0].Sockets, ls[1].Sockets)
	}
	v4 := all
	v4.Addr = netip.MustParseAddr("127.0.0.1")
	if ls, err := sockdrain.Status(v4); err != nil || len(ls) != 1 || ls[0].Listen.Addr() != netip.IPv4Unspecified() {
		t.Errorf("status of 127.0.0.1:%d = %+v, %v; want the 0.0.0.0 group alone", port, ls, err)
	}
}

func TestStatusOfMPTCPListener(t *testing.T) {
	ns := nstest.New(t)
	var ln net.Listener
	err := ns.Do(func() (err error) {
		var lc net.ListenConfig
		lc.SetMultipathTCP(true)
		ln, err = lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if protocol(t, ln.(*net.TCPListener)) != unix.IPPROTO_MPTCP {
		t.Skip("kernel gave a plain TCP socket: MPTCP disabled (net.mptcp.enabled=0)")
	}
	tg := target(t, ns, ln.Addr())
	for range 5 {
		nstest.Dial(t, ns, ln.Addr().String())
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := one(settle(t, tg, func(ls []sockdrain.Listener) bool { return one(ls).AcceptQueue == 4 }))
	if l.Established != 1 || !slices.Equal(l.PIDs, []int{os.Getpid()}) {
		t.Errorf("MPTCP listener: %+v, want 1 established and pid %d", l, os.Getpid())
	}
}

func TestStatusWithoutListener(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	port := ln.Addr().(*net.TCPAddr).Port
	var udp net.PacketConn
	if err := ns.Do(func() (err error) { udp, err = net.ListenPacket("udp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	for _, tg := range []sockdrain.Target{
		{Addr: netip.MustParseAddr("127.0.0.2"), Port: uint16(port), NetNS: ns.Path()},
		{Addr: netip.MustParseAddr("::1"), Port: uint16(port), NetNS: ns.Path()},
		{Port: uint16(port + 1), NetNS: ns.Path()},
		{Port: uint16(udp.LocalAddr().(*net.UDPAddr).Port), NetNS: ns.Path()},
	} {
		_, err := sockdrain.Status(tg)
		if !errors.Is(err, sockdrain.ErrNoListener) || !errors.Is(err, sockdrain.ErrInvalid) {
			t.Errorf("status of %s: %v, want ErrNoListener", tg, err)
		}
	}
}

func protocol(tb testing.TB, ln *net.TCPListener) int {
	rc, err := ln.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var proto int
	var serr error
	if err := rc.Control(func(fd uintptr) { proto, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL) }); err != nil || serr != nil {
		tb.Fatal(err, serr)
	}
	return proto
}

func TestStatusOfDualStackListener(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, ":0", nil)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	nstest.Dial(t, ns, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String())
	nstest.Dial(t, ns, netip.AddrPortFrom(netip.IPv6Loopback(), port).String())
	tg := sockdrain.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: port, NetNS: ns.Path()}
	l := one(settle(t, tg, func(ls []sockdrain.Listener) bool { return one(ls).AcceptQueue == 2 }))
	if l.Listen != netip.AddrPortFrom(netip.IPv6Unspecified(), port) {
		t.Errorf("127.0.0.1 served by %s, want the dual-stack [::]:%d", l.Listen, port)
	}
}
