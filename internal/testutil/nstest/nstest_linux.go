// Package nstest gives each kernel test a fresh network namespace with
// loopback up, reachable by path like one made with `ip netns add`.
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/internal/netns"
)

// RequireAdmin skips tb unless the process can create network namespaces
// and configure them, naming the missing capability.
func RequireAdmin(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces")
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		tb.Fatalf("capget: %v", err)
	}
	for _, c := range []struct {
		bit  uint
		name string
	}{{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}, {unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"}} {
		if data[0].Effective&(1<<c.bit) == 0 {
			tb.Skipf("needs %s to create and configure network namespaces", c.name)
		}
	}
}

// New creates a network namespace with loopback up, mounted at
// /run/netns/sdtest-XXXX, and removes it when tb ends.
func New(tb testing.TB) *netns.NS {
	tb.Helper()
	RequireAdmin(tb)
	var b [6]byte
	rand.Read(b[:])
	ns, err := netns.Create("sdtest-" + hex.EncodeToString(b[:]))
	if err != nil {
		tb.Fatal(err)
	}
	ino, err := ns.Inode()
	if err != nil {
		ns.Remove()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		// A test that stops between a drain and its resume leaves the gate
		// pinned, and later tests would take it for theirs.
		removed, err := bpffs.RemoveNetNS(ino)
		if err != nil {
			tb.Errorf("remove the pins of netns %s: %v", ns.Path(), err)
		} else if len(removed) > 0 && !tb.Failed() {
			tb.Errorf("the test left gates pinned for its netns: %q (removed)", removed)
		}
		if err := ns.Remove(); err != nil {
			tb.Errorf("remove netns %s: %v", ns.Path(), err)
		}
	})
	return ns
}
