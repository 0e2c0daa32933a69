package sockdrain

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// walkCounter is a lookupSource that counts the full dumps it makes, and
// counts arrivals only if asked to.
type walkCounter struct {
	*inetDiagSource
	walks    int
	arrivals bool
}

func (w *walkCounter) sockets(port uint16) ([]observe.Socket, error) {
	w.walks++
	return w.inetDiagSource.sockets(port)
}

func (w *walkCounter) withoutActivity(port uint16) ([]observe.Socket, error) {
	w.walks++
	return w.inetDiagSource.withoutActivity(port)
}

func (w *walkCounter) watchArrivals(port uint16) (counter, error) {
	if !w.arrivals {
		return nil, errors.ErrUnsupported
	}
	return w.inetDiagSource.watchArrivals(port)
}

// TestNarrowPolls: once narrow, polls look up the known connections and
// walk no table while they are there. A connection that arrives makes a
// poll walk, whether it waits in the queue or was accepted between two
// polls (which only the arrivals count tells). The poll that finds the
// last connection gone walks the table unless the count says nothing
// arrived.
func TestNarrowPolls(t *testing.T) {
	for _, counting := range []bool{true, false} {
		t.Run(map[bool]string{true: "counting arrivals", false: "without a count"}[counting], func(t *testing.T) {
			ns := nstest.New(t)
			ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
			addr := ln.Addr().(*net.TCPAddr).AddrPort()
			var clients, servers []net.Conn
			connect := func() {
				t.Helper()
				clients = append(clients, nstest.Dial(t, ns, addr.String()))
				c, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				servers = append(servers, c)
			}
			for range 3 {
				connect()
			}
			o, err := NewObserver(Target{Addr: addr.Addr(), Port: addr.Port(), NetNS: ns.Path()})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			src := &walkCounter{inetDiagSource: o.src.(*inetDiagSource), arrivals: counting}
			o.src = src
			poll := func(want int) {
				t.Helper()
				ls, pending, err := o.poll(nil, true)
				if err != nil {
					t.Fatal(err)
				}
				if c := sum(ls); c.Established != want || len(pending) != want {
					t.Fatalf("poll: %+v with %d pending; want %d established, all pending", c, len(pending), want)
				}
			}

			poll(3)
			o.narrowPolls()
			if counting && o.arrivals == nil {
				t.Skip("this kernel cannot count arrivals (package arrivals)")
			}
			poll(3) // with a count, the walk it starts from
			walks := src.walks
			poll(3)
			servers[0].Close()
			clients[0].Close()
			waitGone(t, o, 2)
			if src.walks != walks {
				t.Errorf("narrow polls walked the table %d times while they knew what to look up", src.walks-walks)
			}

			// Connections that arrive are found by a walk: one left in
			// the queue, one accepted between two polls.
			late := nstest.Dial(t, ns, addr.String())
			defer late.Close()
			nstest.WaitFor(time.Second, func() bool { ls, _ := o.lookup(); return len(ls) == 1 && ls[0].AcceptQueue == 1 })
			ls, pending, err := o.poll(nil, true)
			if c := sum(ls); err != nil || c.AcceptQueue != 1 || len(pending) != 3 {
				t.Fatalf("poll with a connection to accept: %+v, %d pending, %v; want it queued and pending", c, len(pending), err)
			}
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			clients, servers = append(clients, late), append(servers, s)
			poll(3)
			if counting {
				connect()
				poll(4)
			}

			// The last connection gone.
			for _, c := range append(servers[1:], clients[1:]...) {
				c.Close()
			}
			walks = src.walks
			waitGone(t, o, 0)
			if walked := src.walks > walks; walked == counting {
				t.Errorf("the poll that found nothing left walked the table: %v; want %v (counting arrivals: %v)", walked, !counting, counting)
			}
		})
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
