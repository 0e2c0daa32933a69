package sklookup

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// TestChecksBesideOtherPrograms runs this package's gate tests while the
// host holds what an earlier, killed run or another tool leaves: a gate of
// ours armed and pinned for a listener in another namespace, and an
// unrelated sk_lookup program attached there and pinned. The "nothing
// changed" checks compare with the state before each test, so these must
// not fail them.
func TestChecksBesideOtherPrograms(t *testing.T) {
	gatetest.RequireKernel(t, "sklookup")
	other := nstest.New(t)
	srv := ours.Listen(t, other, gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0"})
	g, err := Open(srv.Listener)
	if err != nil {
		t.Fatal(err)
	}
	gatetest.ArmTwice(t, g)
	g.Close() // left pinned, as by a drain killed with kill -9
	t.Cleanup(func() {
		if g, err := Open(srv.Listener); err == nil {
			g.Disarm()
			g.Close()
		}
	})

	lk, detach := attachForeign(t, srv.Listener.NetNS)
	defer detach()
	dir, err := bpffs.Create("test_foreign_" + srv.Listener.Key())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bpffs.Remove("test_foreign_" + srv.Listener.Key()) })
	if err := lk.Pin(filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	t.Run("drain", TestDrain)
	t.Run("restarted server", TestRestartedServer)
	t.Run("persistence", TestPersistence)
	t.Run("failed arm", TestFailedArm)
}

// attachForeign attaches to netns an sk_lookup program that is not ours,
// named "foreign", which passes every lookup; detach removes it.
func attachForeign(t *testing.T, netns *os.File) (_ link.Link, detach func()) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "foreign",
		Type:         ebpf.SkLookup,
		AttachType:   ebpf.AttachSkLookup,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()},
		License:      "MIT",
	})
	if err != nil {
		t.Fatal(err)
	}
	lk, err := link.AttachNetNs(int(netns.Fd()), prog)
	if err != nil {
		prog.Close()
		t.Fatal(err)
	}
	return lk, func() { lk.Close(); prog.Close() }
}
