//go:build freebsd && freebsdkernel

package pcblist

import (
	"net"
	"net/netip"
	"os"
	"slices"
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
