package arrivals

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

func TestMain(m *testing.M) { os.Exit(nstest.CheckLeaks(m)) }

// TestCountsArrivalsOnItsPortOnly: a connection accepted on the port
// counts, one queued but not yet accepted too (the kernel made its socket);
// a connection to another port, or to the same port in another namespace,
// does not.
func TestCountsArrivalsOnItsPortOnly(t *testing.T) {
	ns, other := nstest.New(t), nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	port := ln.Addr().(*net.TCPAddr).Port
	elsewhere := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	sameInOther := nstest.Listen(t, other, ln.Addr().String(), nil)
	ino, err := ns.Inode()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Watch(ino, uint16(port))
	if err != nil {
		t.Skipf("cannot watch arrivals on this kernel: %v", err)
	}
	defer c.Close()
	count := func(want uint64) {
		t.Helper()
		var n uint64
		if !nstest.WaitFor(time.Second, func() bool { n, err = c.Count(); return err == nil && n == want }) {
			t.Fatalf("Count() = %d, %v; want %d", n, err, want)
		}
	}
	count(0)
	nstest.Dial(t, ns, elsewhere.Addr().String())
	nstest.Dial(t, other, sameInOther.Addr().String())
	count(0)
	nstest.Dial(t, ns, ln.Addr().String())
	nstest.Dial(t, ns, ln.Addr().String())
	count(2)
}
