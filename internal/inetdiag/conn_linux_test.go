package inetdiag

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// TestAnyFamilyIsBothFamilies checks the one-walk dump against the two
// per-family dumps: the same sockets, of both families, on the port only.
func TestAnyFamilyIsBothFamilies(t *testing.T) {
	ns := nstest.New(t)
	ln4 := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	port := ln4.Addr().(*net.TCPAddr).Port
	ln6 := nstest.Listen(t, ns, fmt.Sprintf("[::1]:%d", port), nil)
	nstest.Listen(t, ns, "127.0.0.1:0", nil) // another port: never in the answer
	nstest.Dial(t, ns, ln4.Addr().String())
	nstest.Dial(t, ns, ln6.Addr().String())
	nstest.Dial(t, ns, ln6.Addr().String())

	conn, err := Dial(ns.FD())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dump := func(f Family) []string {
		t.Helper()
		ss, err := conn.Sockets(Request{Family: f, Port: uint16(port), States: DrainStates})
		if err != nil {
			t.Fatalf("family %d: %v", f, err)
		}
		var out []string
		for _, s := range ss {
			out = append(out, fmt.Sprintf("%s %s->%s", s.State, s.Local, s.Remote))
		}
		slices.Sort(out)
		return out
	}
	v4, v6, one := dump(IPv4), dump(IPv6), dump(AnyFamily)
	// Each family: its listener and its queued connections' server ends.
	if len(v4) != 2 || len(v6) != 3 {
		t.Fatalf("per-family dumps: %d IPv4 sockets %q and %d IPv6 %q, want 2 and 3", len(v4), v4, len(v6), v6)
	}
	both := slices.Sorted(slices.Values(append(slices.Clone(v4), v6...)))
	if !slices.Equal(one, both) {
		t.Errorf("AnyFamily dump\n got %q\nwant %q", one, both)
	}
}

// TestLookupFindsTheSocketUntilItIsGone: a lookup answers for the socket
// a dump saw, by its addresses and cookie, and no longer once it is closed
// (TIME_WAIT is not among the states asked for); a listener on the same
// port is not taken for it.
func TestLookupFindsTheSocketUntilItIsGone(t *testing.T) {
	ns := nstest.New(t)
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln := nstest.Listen(t, ns, addr, nil)
		port := uint16(ln.Addr().(*net.TCPAddr).Port)
		client := nstest.Dial(t, ns, ln.Addr().String())
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conn, err := Dial(ns.FD())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		all, err := conn.Sockets(Request{Family: AnyFamily, Port: port, States: DrainStates})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(all, func(s observe.Socket) bool { return s.State == observe.Established })
		if i < 0 || all[i].Cookie == 0 {
			t.Fatalf("%s: no established socket with a cookie in %+v", addr, all)
		}
		est := all[i]
		got, err := conn.Lookup([]observe.Socket{est}, DrainStates, true)
		if err != nil || len(got) != 1 || got[0].Cookie != est.Cookie || got[0].Remote != est.Remote || !got[0].Activity {
			t.Fatalf("%s: Lookup(%v) = %+v, %v; want the socket, with its tcp_info", addr, est, got, err)
		}
		stale := est
		stale.Cookie++
		if got, err := conn.Lookup([]observe.Socket{stale}, DrainStates, false); err != nil || len(got) != 0 {
			t.Errorf("%s: Lookup with another cookie = %+v, %v; want nothing: the listener is not the socket", addr, got, err)
		}
		server.Close()
		client.Close()
		if !nstest.WaitFor(2*time.Second, func() bool {
			got, err := conn.Lookup([]observe.Socket{est}, DrainStates, false)
			return err == nil && len(got) == 0
		}) {
			t.Errorf("%s: Lookup still finds the socket 2s after both ends closed", addr)
		}
	}
}
