// Package netns opens Linux network namespaces by path and runs code in them.
package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// ErrNotNetNS reports a path that is not a network namespace.
var ErrNotNetNS = errors.New("not a network namespace")

// NS is an open network namespace.
type NS struct {
	f    *os.File
	path string
}

// Open opens the network namespace at path, such as /run/netns/NAME or
// /proc/PID/ns/net. An empty path opens the caller's own namespace.
func Open(path string) (*NS, error) {
	name := path
	if name == "" {
		name = "/proc/thread-self/ns/net"
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, errors.Unwrap(err))
	}
	typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil || typ != unix.CLONE_NEWNET {
		f.Close()
		return nil, fmt.Errorf("open netns %s: %w", name, ErrNotNetNS)
	}
	return &NS{f: f, path: path}, nil
}

// FD returns the namespace's file descriptor, valid until Close.
func (ns *NS) FD() int { return int(ns.f.Fd()) }

// File returns the namespace's nsfs file, valid until Close.
func (ns *NS) File() *os.File { return ns.f }

// Inode identifies the namespace: two paths name the same namespace when
// their inodes are equal.
func (ns *NS) Inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(ns.FD(), &st); err != nil {
		return 0, os.NewSyscallError("fstat", err)
	}
	return st.Ino, nil
}

// own is the namespace the process started in, read before any thread
// could enter another: /proc/self/ns/net later names the namespace of the
// main thread, which ns.Do may have moved for a while.
var own = func() (st unix.Stat_t) {
	if unix.Stat("/proc/thread-self/ns/net", &st) != nil {
		st.Ino = 0 // unknown: no namespace is taken for our own
	}
	return st
}()

// Own reports whether ns is the namespace the process runs in. Entering
// it would change nothing, yet setns(2) would need CAP_SYS_ADMIN.
func (ns *NS) Own() bool {
	if ns.path == "" {
		return true
	}
	var st unix.Stat_t
	if own.Ino == 0 || unix.Fstat(ns.FD(), &st) != nil {
		return false
	}
	return own.Dev == st.Dev && own.Ino == st.Ino
}

// Path is the path ns was opened from; empty for the caller's namespace.
func (ns *NS) Path() string { return ns.path }

// Close releases the namespace.
func (ns *NS) Close() error { return ns.f.Close() }

// Do calls fn on an OS thread that has entered ns. Sockets fn creates belong
// to ns for their whole life. fn must not start goroutines that expect to be
// in ns.
func (ns *NS) Do(fn func() error) error {
	if ns.Own() {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current netns: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(ns.FD(), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", ns.path, os.NewSyscallError("setns", err))
	}
	fnErr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime ends it with this goroutine
		// rather than reuse a thread in the wrong namespace.
		return fmt.Errorf("leave netns %s: %w", ns.path, os.NewSyscallError("setns", err))
	}
	runtime.UnlockOSThread()
	return fnErr
}
