package sklookup

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// TestDeadNamespacePins: a gate left armed in a namespace that then died
// leaves pins whose link the kernel detached. A namespace made later may
// get the dead one's inode, and so the same pin key: its gate must not
// take those pins for an armed gate, and must arm afresh over them.
func TestDeadNamespacePins(t *testing.T) {
	gatetest.RequireKernel(t, "sklookup")
	nstest.RequireAdmin(t)
	dead, err := netns.Create(fmt.Sprintf("sdtest-dead-%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	ino, err := dead.Inode()
	if err != nil {
		dead.Remove()
		t.Fatal(err)
	}
	t.Cleanup(func() { bpffs.RemoveNetNS(ino) })
	var ln net.Listener
	if err := dead.Do(func() (err error) { ln, err = net.Listen("tcp4", "127.0.0.1:0"); return err }); err != nil {
		dead.Remove()
		t.Fatal(err)
	}
	old := gate.Listener{NetNS: dead.File(), NetNSInode: ino, Addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	g, err := Open(old)
	if err == nil {
		err = g.Arm()
		g.Close()
	}
	ln.Close()
	dead.Remove()
	if err != nil {
		t.Fatal(err)
	}
	pin := filepath.Join(bpffs.Path(pinKey(old)), linkPin)
	detached := nstest.WaitFor(10*time.Second, func() bool {
		l, err := link.LoadPinnedLink(pin, nil)
		if err != nil {
			return false
		}
		defer l.Close()
		attached, err := linkAttached(l)
		return err == nil && !attached
	})
	if !detached {
		t.Fatalf("the kernel did not detach %s within 10s of the namespace's removal", pin)
	}

	ns := nstest.New(t)
	srv := ours.Listen(t, ns, gatetest.ListenOpts{Network: "tcp4", Addr: old.Addr.String()})
	l := srv.Listener
	l.NetNSInode = ino // as if the kernel had given the new namespace the dead one's inode
	g, err = Open(l)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if armed, err := g.Armed(); err != nil || armed {
		t.Fatalf("Armed() = %v, %v over a dead namespace's pins; want false", armed, err)
	}
	if err := g.Arm(); err != nil {
		t.Fatal(err)
	}
	gatetest.RequireRefused(t, ns, srv.Addr)
	if armed, err := g.Armed(); err != nil || !armed {
		t.Fatalf("Armed() = %v, %v after Arm; want true", armed, err)
	}
	if err := g.Disarm(); err != nil {
		t.Fatal(err)
	}
	gatetest.MustDial(t, ns, srv.Addr)
}
