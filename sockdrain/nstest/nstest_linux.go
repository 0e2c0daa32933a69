// Package nstest gives each kernel test a fresh network namespace with
// loopback up, reachable by path like one made with `ip netns add`.
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/netns"
)

// RunDir is where namespaces are mounted, as iproute2 does.
const RunDir = "/run/netns"

// RequireAdmin skips tb unless the process can create network namespaces
// and configure them, naming the missing capability.
func RequireAdmin(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces")
	}
	var caps unix.CapUserData
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		tb.Fatalf("capget: %v", err)
	}
	caps = data[0]
	for _, c := range []struct {
		bit  uint
		name string
	}{{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}, {unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"}} {
		if caps.Effective&(1<<c.bit) == 0 {
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
	path := filepath.Join(RunDir, "sdtest-"+hex.EncodeToString(b[:]))
	if err := create(path); err != nil {
		tb.Fatalf("create netns: %v", err)
	}
	ns, err := netns.Open(path)
	if err != nil {
		remove(path)
		tb.Fatalf("open netns: %v", err)
	}
	tb.Cleanup(func() {
		ns.Close()
		if err := remove(path); err != nil {
			tb.Errorf("remove netns %s: %v", path, err)
		}
	})
	if err := ns.Do(loopbackUp); err != nil {
		tb.Fatalf("bring up lo in %s: %v", path, err)
	}
	return ns
}

// create makes a new network namespace on a locked thread and bind-mounts
// it at path; the thread then returns to its own namespace.
func create(path string) (err error) {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()

	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return os.NewSyscallError("unshare", err)
	}
	mountErr := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return os.NewSyscallError("setns", err) // thread stays locked and dies
	}
	runtime.UnlockOSThread()
	if mountErr != nil {
		return os.NewSyscallError("mount", mountErr)
	}
	return nil
}

func remove(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	return errors.Join(err, os.Remove(path))
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
