package sockdrain_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// fill makes n connections to fresh listeners in ns, left unaccepted so the
// server half costs no file descriptor: 2n sockets for n descriptors.
func fill(b *testing.B, ns *netns.NS, n int) {
	const perListener = 2000 // below somaxconn (4096)
	for n > 0 {
		ln := nstest.Listen(b, ns, "127.0.0.1:0", nil)
		for range min(n, perListener) {
			nstest.Dial(b, ns, ln.Addr().String())
			n--
		}
	}
}

// BenchmarkObserverPoll measures one poll of a listener's state while the
// namespace holds many other sockets, the cost a drain pays per tick.
func BenchmarkObserverPoll(b *testing.B) {
	for _, sockets := range []int{2_000, 20_000} {
		b.Run(fmt.Sprintf("sockets=%d", sockets), func(b *testing.B) {
			ns := nstest.New(b)
			target := nstest.Listen(b, ns, "127.0.0.1:0", nil)
			for range 10 {
				nstest.Dial(b, ns, target.Addr().String())
			}
			fill(b, ns, sockets/2)
			o, err := sockdrain.NewObserver(sockdrain.Target{
				Addr: netip.MustParseAddr("127.0.0.1"), Port: uint16(target.Addr().(*net.TCPAddr).Port), NetNS: ns.Path()})
			if err != nil {
				b.Fatal(err)
			}
			defer o.Close()
			b.Run("listeners", func(b *testing.B) {
				for b.Loop() {
					if ls, err := o.Listeners(); err != nil || ls[0].AcceptQueue != 10 {
						b.Fatalf("%+v, %v", ls, err)
					}
				}
			})
			b.Run("with-pids", func(b *testing.B) {
				for b.Loop() {
					if _, err := o.Status(); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
