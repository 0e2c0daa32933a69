package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/netns"
)

// nsCount numbers the namespaces this run creates.
var nsCount atomic.Int64

// newNS creates a fresh network namespace with loopback up and the whole
// port range open to clients, so 50k connections fit on one server port.
func newNS() (*netns.NS, error) {
	name := fmt.Sprintf("sockdrain-bench-%d-%d", os.Getpid(), nsCount.Add(1))
	ns, err := netns.Create(name)
	if err != nil {
		return nil, err
	}
	if err := ns.Do(func() error { return sysctl("net/ipv4/ip_local_port_range", "1024 65535") }); err != nil {
		ns.Remove()
		return nil, err
	}
	return ns, nil
}

// sysctl writes a sysctl of the calling thread's network namespace.
func sysctl(name, value string) error {
	// /proc/sys/net shows the namespace of the thread that opens it.
	path := filepath.Join("/proc/sys", name)
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s: %w", strings.ReplaceAll(name, "/", "."), err)
	}
	return nil
}

// listenDrops reads the kernel's count of connections a listener in ns
// dropped (TcpExt ListenDrops: SYNs and final ACKs that found the queue full,
// among other causes), whose clients then wait for a retransmission.
func listenDrops(ns *netns.NS) (int64, error) {
	text, err := readNetFile(ns, "netstat")
	if err != nil {
		return 0, err
	}
	return netstatField(text, "TcpExt", "ListenDrops")
}

// readNetFile reads /proc/net/name as ns sees it.
func readNetFile(ns *netns.NS, name string) (text string, err error) {
	err = ns.Do(func() error {
		// /proc/thread-self/net shows the namespace of the calling thread.
		b, err := os.ReadFile("/proc/thread-self/net/" + name)
		text = string(b)
		return err
	})
	return text, err
}

// netstatField finds one counter in /proc/net/netstat, whose sections are
// pairs of lines: "Prefix: Name1 Name2 ..." then "Prefix: 1 2 ...".
func netstatField(text, prefix, name string) (int64, error) {
	lines := strings.Split(text, "\n")
	for i := 0; i+1 < len(lines); i++ {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != prefix+":" || len(values) != len(names) {
			continue
		}
		for j, n := range names {
			if n == name {
				var v int64
				_, err := fmt.Sscan(values[j], &v)
				return v, err
			}
		}
	}
	return 0, fmt.Errorf("no %s %s in /proc/net/netstat", prefix, name)
}

// loopbackPackets reads how many packets the loopback device of ns has
// received (/proc/net/dev): on loopback, every packet of a connection,
// either way, passes the input hook once.
func loopbackPackets(ns *netns.NS) (int64, error) {
	text, err := readNetFile(ns, "dev")
	if err != nil {
		return 0, err
	}
	return devRxPackets(text, "lo")
}

// devRxPackets finds the received-packets counter of one interface in
// /proc/net/dev: "  lo: bytes packets errs ...".
func devRxPackets(text, dev string) (int64, error) {
	for _, line := range strings.Split(text, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		var v int64
		_, err := fmt.Sscan(f[1], &v)
		return v, err
	}
	return 0, fmt.Errorf("no %s in /proc/net/dev", dev)
}

// processCPU is the CPU this process has used, user and system.
func processCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// kernelLock serializes kernel work with the other users of this machine's
// BPF and nftables state (their tests check host-wide state).
// Waiting for it ends when ctx does.
type kernelLock struct {
	ctx  context.Context
	path string
}

// hold runs fn with the lock held; with no path, just runs fn.
func (k kernelLock) hold(fn func() error) error {
	if k.path == "" {
		return fn()
	}
	f, err := os.OpenFile(k.path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return fmt.Errorf("open lock %s: %w", k.path, err)
	}
	defer f.Close()
	start := time.Now()
	if err := k.wait(f); err != nil {
		return err
	}
	if w := time.Since(start); w > time.Second {
		progress("waited %s for %s", w.Round(time.Second), k.path)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}

// wait takes the lock on f, polling, until ctx ends.
func (k kernelLock) wait(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if err != unix.EWOULDBLOCK {
			return fmt.Errorf("lock %s: %w", k.path, os.NewSyscallError("flock", err))
		}
		select {
		case <-k.ctx.Done():
			return fmt.Errorf("wait for lock %s: %w", k.path, context.Cause(k.ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// progress prints one line of progress to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// raiseFileLimit raises the soft limit on descriptors to the hard one,
// and returns it.
func raiseFileLimit() (uint64, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, os.NewSyscallError("getrlimit", err)
	}
	lim.Cur = lim.Max
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("raise RLIMIT_NOFILE to %d: %w", lim.Max, os.NewSyscallError("setrlimit", err))
	}
	return lim.Max, nil
}
