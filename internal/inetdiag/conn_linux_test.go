package inetdiag

import (
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
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
