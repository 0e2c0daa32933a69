package sockdrain_test

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// TestHeldSocketsStayNonBlocking drains a Go listener passed through
// Options.Sockets as its File(), with each gate. The File shares its open
// file description with the listener, so a drain that calls Fd on it would
// hand the caller back a blocking listener, whose Accept ignores deadlines.
// Afterwards the listener's fd must still be O_NONBLOCK and Accept must
// still go through Go's poller: it serves a client, and times out.
func TestHeldSocketsStayNonBlocking(t *testing.T) {
	for _, held := range []bool{true, false} {
		for _, backend := range []string{"reuseport", "sklookup", "nftables"} {
			name := backend
			if !held {
				name += "/taken" // the drain takes the socket from this process, as from any server
			}
			t.Run(name, func(t *testing.T) { testStaysNonBlocking(t, backend, held) })
		}
	}
}

func testStaysNonBlocking(t *testing.T, backend string, held bool) {
	{
		{
			ns := nstest.New(t)
			ln := nstest.Listen(t, ns, "127.0.0.1:0", reusePortControl)
			f, err := ln.File()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			addr := ln.Addr().(*net.TCPAddr).AddrPort()
			target := sockdrain.Target{Addr: addr.Addr(), Port: addr.Port(), NetNS: ns.Path()}
			opts := sockdrain.Options{Backend: backend, Timeout: 5 * time.Second}
			if held {
				opts.Sockets = []*os.File{f}
			}
			if _, err := sockdrain.Drain(t.Context(), target, opts); err != nil {
				t.Fatalf("drain: %v", err)
			}
			if _, err := sockdrain.Resume(t.Context(), target); err != nil {
				t.Fatalf("resume: %v", err)
			}
			if !nonBlocking(t, ln) {
				t.Fatal("after the drain, the caller's listener is blocking")
			}
			nstest.Dial(t, ns, addr.String())
			if err := acceptWithin(ln, 2*time.Second); err != nil {
				t.Fatalf("accept a queued client: %v", err)
			}
			if err := acceptWithin(ln, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("accept with nobody queued = %v; want the deadline to pass", err)
			}
		}
	}
}

func reusePortControl(_, _ string, c syscall.RawConn) error {
	var err error
	c.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
	return err
}

// nonBlocking reports whether ln's open file description is O_NONBLOCK.
func nonBlocking(t *testing.T, ln *net.TCPListener) bool {
	t.Helper()
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	if err := rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.O_NONBLOCK != 0
}

// acceptWithin accepts one connection with a deadline of d. A listener
// that went blocking would ignore the deadline, so the wait is bounded
// here too: 5s more, then the listener is closed.
func acceptWithin(ln *net.TCPListener, d time.Duration) error {
	ln.SetDeadline(time.Now().Add(d))
	defer ln.SetDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d + 5*time.Second):
		ln.Close()
		return errors.New("accept ignored its deadline: the listener is blocking")
	}
}
