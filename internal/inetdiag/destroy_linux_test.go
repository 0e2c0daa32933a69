package inetdiag

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// receiveAll reads destroy events until want sockets arrived or the
// deadline passes.
func receiveAll(t *testing.T, d *Destroyed, want int) []observe.Socket {
	t.Helper()
	d.nl.SetReadDeadline(time.Now().Add(2 * time.Second))
	var got []observe.Socket
	for len(got) < want {
		ss, err := d.Receive()
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(got), want, err)
		}
		got = append(got, ss...)
	}
	return got
}

func acceptOne(t *testing.T, ln *net.TCPListener) *net.TCPConn {
	t.Helper()
	ln.SetDeadline(time.Now().Add(2 * time.Second))
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDestroyedReportsOnlyThePort(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	other := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	d, err := SubscribeDestroyed(ns.FD(), port)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	// A connection to another port ends first: its events must not come.
	oc := nstest.Dial(t, ns, other.Addr().String())
	osrv := acceptOne(t, other)
	oc.Close()
	osrv.Close()

	c := nstest.Dial(t, ns, ln.Addr().String())
	s := acceptOne(t, ln)
	c.Close() // the client closes first: the server side waits in CLOSE_WAIT
	s.Close() // LAST_ACK, then freed when the client's ACK arrives
	got := receiveAll(t, d, 1)
	if len(got) != 1 || got[0].Local.Port() != port || got[0].Remote != c.LocalAddr().(*net.TCPAddr).AddrPort() {
		t.Fatalf("destroyed %+v; want the server side of %s", got, c.LocalAddr())
	}

	// The server closes first: its socket is freed as it passes to
	// TIME_WAIT, while the client still holds its end open.
	c = nstest.Dial(t, ns, ln.Addr().String())
	s = acceptOne(t, ln)
	s.Close()
	if got := receiveAll(t, d, 1); got[0].Remote != c.LocalAddr().(*net.TCPAddr).AddrPort() {
		t.Fatalf("after an active close got %+v; want the server side of %s", got, c.LocalAddr())
	}

	ln.Close()
	if got := receiveAll(t, d, 1); got[0].Remote.Port() != 0 {
		t.Errorf("after closing the listener got %+v; want the listener", got)
	}
}

func TestDestroyedOverrun(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	d, err := SubscribeDestroyed(ns.FD(), uint16(ln.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.nl.SetReadBuffer(0); err != nil { // the kernel's minimum: a few events
		t.Fatal(err)
	}
	for range 64 {
		c := nstest.Dial(t, ns, ln.Addr().String())
		s := acceptOne(t, ln)
		s.Close()
		c.Close()
	}
	d.nl.SetReadDeadline(time.Now().Add(2 * time.Second))
	for i := 0; ; i++ {
		_, err := d.Receive()
		if errors.Is(err, ErrOverrun) {
			return
		}
		if err != nil {
			t.Fatalf("after %d receives: %v; want ErrOverrun", i, err)
		}
	}
}

func TestSubscribeDestroyedBadNetNS(t *testing.T) {
	nstest.RequireAdmin(t)
	if d, err := SubscribeDestroyed(1<<20, 80); err == nil {
		d.Close()
		t.Fatal("subscribed through a descriptor that is not open")
	}
}
