package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// RunDir is where named namespaces are mounted, as iproute2 does.
const RunDir = "/run/netns"

// Create makes a new network namespace with loopback up, mounted at
// /run/netns/name like `ip netns add`, and opens it. Remove undoes it.
func Create(name string) (_ *NS, err error) {
	path := filepath.Join(RunDir, name)
	if err := create(path); err != nil {
		return nil, fmt.Errorf("create netns %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			unmount(path)
		}
	}()
	ns, err := Open(path)
	if err != nil {
		return nil, err
	}
	if err := ns.Do(loopbackUp); err != nil {
		ns.Close()
		return nil, fmt.Errorf("bring up lo in %s: %w", path, err)
	}
	return ns, nil
}

// Remove closes ns and deletes the namespace Create made; it lives on
// while a process or socket still uses it.
func (ns *NS) Remove() error {
	return errors.Join(ns.Close(), unmount(ns.path))
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
		return os.NewSyscallError("setns", err) // the thread stays locked and dies
	}
	runtime.UnlockOSThread()
	if mountErr != nil {
		return os.NewSyscallError("mount", mountErr)
	}
	return nil
}

func unmount(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	return errors.Join(os.NewSyscallError("umount", err), os.Remove(path))
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return os.NewSyscallError("ioctl SIOCGIFFLAGS", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return os.NewSyscallError("ioctl SIOCSIFFLAGS", unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr))
}
