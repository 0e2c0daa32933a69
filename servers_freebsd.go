package sockdrain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// signalled watches processes with kill(pid, 0). FreeBSD's process
// descriptors only come from pdfork, so another process's exit is seen as
// its pid going away: a zombie not yet reaped counts as running.
type signalled []int

func watchServers(pids []int) (servers, error) { return signalled(pids), nil }

func (p signalled) exited(wait time.Duration) bool {
	if len(p) == 0 {
		return false // nobody known to watch
	}
	deadline := time.Now().Add(wait)
	for {
		if p.allGone() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p signalled) allGone() bool {
	for _, pid := range p {
		if !errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
			return false
		}
	}
	return true
}

func (signalled) Close() error { return nil }

// signal sends sig to the main processes with kill(2). A pid reused since
// the drain began could be signalled; FreeBSD offers no process descriptor
// for a process we did not fork.
func (p signalled) signal(sig syscall.Signal) error {
	ms := mains(p, parentPID)
	if len(ms) == 0 {
		return fmt.Errorf("send %v: no process of the server is left", unix.SignalName(sig))
	}
	for _, pid := range ms {
		if err := unix.Kill(pid, sig); err != nil {
			return fmt.Errorf("send %v to pid %d: %w", unix.SignalName(sig), pid, os.NewSyscallError("kill", err))
		}
	}
	return nil
}

// Offsets in FreeBSD's struct kinfo_proc on LP64 (sys/user.h), which
// kern.proc.pid.PID returns: ki_structsize, ki_pid and ki_ppid.
const (
	kinfoStructSize = 1088
	kinfoPID        = 72
	kinfoPPID       = 76
)

// parentPID reads a process's parent from the kern.proc.pid sysctl,
// checking the record's size and pid before trusting the offset.
func parentPID(pid int) (int, error) {
	b, err := unix.SysctlRaw("kern.proc.pid", pid)
	if err != nil {
		return 0, fmt.Errorf("read kern.proc.pid.%d: %w", pid, err)
	}
	if len(b) < kinfoStructSize || int(binary.NativeEndian.Uint32(b)) != kinfoStructSize ||
		int(binary.NativeEndian.Uint32(b[kinfoPID:])) != pid {
		return 0, fmt.Errorf("read kern.proc.pid.%d: unknown kinfo_proc layout", pid)
	}
	return int(binary.NativeEndian.Uint32(b[kinfoPPID:])), nil
}
