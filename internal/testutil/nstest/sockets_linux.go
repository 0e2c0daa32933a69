package nstest

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/netns"
)

// Listen opens a plain TCP (not MPTCP) listener in ns, closed when tb ends. control, if not
// nil, runs on the socket before bind, as net.ListenConfig.Control. An IPv4
// address gets an IPv4 socket, one in brackets an IPv6-only socket, and one
// with no host ("":0) a dual-stack socket. (Go's "tcp" would make 0.0.0.0 a
// dual-stack IPv6 socket.)
func Listen(tb testing.TB, ns *netns.NS, addr string, control func(network, address string, c syscall.RawConn) error) *net.TCPListener {
	tb.Helper()
	var ln net.Listener
	err := ns.Do(func() (err error) {
		lc := net.ListenConfig{Control: control}
		lc.SetMultipathTCP(false)
		network := "tcp4"
		switch {
		case strings.HasPrefix(addr, "["):
			network = "tcp6"
		case strings.HasPrefix(addr, ":"):
			network = "tcp"
		}
		ln, err = lc.Listen(context.Background(), network, addr)
		return err
	})
	if err != nil {
		tb.Fatalf("listen on %s: %v", addr, err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// Dial connects to addr from inside ns, failing tb after two seconds. The
// connection is closed when tb ends.
func Dial(tb testing.TB, ns *netns.NS, addr string) *net.TCPConn {
	tb.Helper()
	c, err := DialErr(ns, addr)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// DialErr connects to addr from inside ns, giving up after two seconds.
func DialErr(ns *netns.NS, addr string) (*net.TCPConn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		d := net.Dialer{Timeout: 2 * time.Second}
		c, err = d.Dial("tcp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// WaitFor polls cond every few milliseconds until it holds or timeout
// passes, and reports whether it held.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}
