package gatetest

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/sockfd"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// RequireMPTCP skips tb when the kernel did not make srv's listener an
// MPTCP socket, as with net.mptcp.enabled=0.
func RequireMPTCP(tb testing.TB, srv *Server) {
	tb.Helper()
	var proto int
	sockfd.Control(srv.Listener.Sockets[0], func(fd int) (err error) {
		proto, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		return err
	})
	if proto != unix.IPPROTO_MPTCP {
		tb.Skipf("kernel made protocol %d, not MPTCP (net.mptcp.enabled=0?)", proto)
	}
}

// RequireKernel skips tb when the running kernel is older than the
// minimum of the gate called name, naming the minimum, the feature and the
// running kernel. It fails tb for a gate without a minimum, so a typo
// cannot turn the check off.
func RequireKernel(tb testing.TB, name string) {
	tb.Helper()
	if _, ok := gate.MinimumOf(name); !ok {
		tb.Fatalf("no minimum kernel for gate %q in gate.Minimums", name)
	}
	if err := gate.CheckKernel(name); errors.Is(err, gate.ErrNotSupported) {
		tb.Skip(err)
	} else if err != nil {
		tb.Fatal(err)
	}
}
