//go:build freebsd && freebsdkernel

package pcblist

import (
	"context"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// TestKernelCountsAcceptQueue connects clients nobody accepts and checks
// that pcblist and the listener's own SO_LISTENQLEN both count them.
func TestKernelCountsAcceptQueue(t *testing.T) {
	const queued = 7
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := netip.MustParseAddrPort(ln.Addr().String())
	for range queued {
		c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	ss, err := Query(addr.Port())
	if err != nil {
		t.Fatal(err)
	}
	ls := observe.Fold(ss, 0)
	if len(ls) != 1 || ls[0].Listen != addr || ls[0].AcceptQueue != queued {
		t.Errorf("pcblist folds to %+v, want %s with %d queued", ls, addr, queued)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	q, err := ListenQueue(int(f.Fd()))
	if err != nil || q.Len != queued || q.Limit == 0 {
		t.Errorf("ListenQueue = %+v, %v; want Len %d", q, err, queued)
	}
	pids, err := PIDs(ls[0].Inodes)
	if err != nil || !slices.Contains(pids, os.Getpid()) {
		t.Errorf("PIDs of the listener = %v, %v; want this process", pids, err)
	}
}

// TestKernelListenerNeverMissedUnderChurn reads the list many times while
// loopback clients open and close connections to the listener and are
// refused by a closed port, which makes the kernel's list change under
// every read. FreeBSD 15.1 tore 0–11 reads in 1000 this way, each without
// the listener; Query must see it, and its queue, every time.
func TestKernelListenerNeverMissedUnderChurn(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := closed.Addr().String()
	closed.Close()
	addr := netip.MustParseAddrPort(ln.Addr().String())

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() { churn(ctx, []string{addr.String(), refusing}[i%2]) })
	}
	defer wg.Wait()
	defer cancel()

	const reads = 5000
	for i := range reads {
		if ctx.Err() != nil {
			t.Logf("stopped after %d reads at the time bound", i)
			break
		}
		ss, err := Query(addr.Port())
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if ls := observe.Fold(ss, 0); len(ls) != 1 || ls[0].Listen != addr {
			t.Fatalf("read %d: listeners %+v, want %s", i, ls, addr)
		}
	}
}

// churn connects to addr and closes, again and again, until ctx ends, at
// most 100000 times.
func churn(ctx context.Context, addr string) {
	d := net.Dialer{Timeout: time.Second}
	for range 100_000 {
		if ctx.Err() != nil {
			return
		}
		if c, err := d.DialContext(ctx, "tcp4", addr); err == nil {
			c.Close()
		}
	}
}
