package sockdrain

import (
	"net"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// walkCounter is a lookupSource that counts the full dumps it makes.
type walkCounter struct {
	*inetDiagSource
	walks int
}

func (w *walkCounter) sockets(port uint16) ([]observe.Socket, error) {
	w.walks++
	return w.inetDiagSource.sockets(port)
}

func (w *walkCounter) withoutActivity(port uint16) ([]observe.Socket, error) {
	w.walks++
	return w.inetDiagSource.withoutActivity(port)
}

// TestNarrowPolls: once narrow, polls look up the known connections and
// walk no table while they are there; a connection to accept, and the
// last one gone, make a poll walk the table, so nothing is missed and the
// end is a full walk's.
func TestNarrowPolls(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	var clients, servers []net.Conn
	for range 3 {
		clients = append(clients, nstest.Dial(t, ns, addr.String()))
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, c)
	}
	o, err := NewObserver(Target{Addr: addr.Addr(), Port: addr.Port(), NetNS: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	src := &walkCounter{inetDiagSource: o.src.(*inetDiagSource)}
	o.src = src
	poll := func(want int) {
		t.Helper()
		ls, pending, err := o.poll(nil, true)
		if err != nil {
			t.Fatal(err)
		}
		if c := sum(ls); c.Established != want || len(pending) != want || c.AcceptQueue != 0 {
			t.Fatalf("poll: %+v with %d pending; want %d established, all pending, none queued", c, len(pending), want)
		}
	}

	poll(3)
	o.narrowPolls()
	walks := src.walks
	poll(3)
	servers[0].Close()
	clients[0].Close()
	waitGone(t, o, 2)
	if src.walks != walks {
		t.Errorf("narrow polls walked the table %d times while they knew what to look up", src.walks-walks)
	}

	// A connection that arrives through the queue is found by a walk.
	late := nstest.Dial(t, ns, addr.String())
	defer late.Close()
	nstest.WaitFor(time.Second, func() bool { ls, _ := o.lookup(); return len(ls) == 1 && ls[0].AcceptQueue == 1 })
	ls, pending, err := o.poll(nil, true)
	if c := sum(ls); err != nil || c.AcceptQueue != 1 || len(pending) != 3 {
		t.Fatalf("poll with a connection to accept: %+v, %d pending, %v; want it queued and pending", c, len(pending), err)
	}
	if src.walks == walks {
		t.Error("a poll with a connection to accept did not walk the table")
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	servers = append(servers, s)
	poll(3)

	// The last connection gone: the poll that says so walked the table.
	for i := 1; i < len(servers); i++ {
		servers[i].Close()
	}
	for _, c := range clients[1:] {
		c.Close()
	}
	late.Close()
	walks = src.walks
	waitGone(t, o, 0)
	if src.walks == walks {
		t.Error("the poll that found nothing left did not walk the table")
	}
}

// waitGone polls o until want connections are left, for up to 2s.
func waitGone(t *testing.T, o *Observer, want int) {
	t.Helper()
	var c Counts
	if !nstest.WaitFor(2*time.Second, func() bool {
		ls, _, err := o.poll(nil, true)
		c = sum(ls)
		return err == nil && c.Established == want && c.Closing == 0 && c.CloseWait == 0
	}) {
		t.Fatalf("poll: %+v; want %d established and nothing closing", c, want)
	}
}
