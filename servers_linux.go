package sockdrain

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pidfds watch processes through pidfds, which cannot be fooled by a pid
// reused after the exit, and report a zombie as exited.
type pidfds struct {
	pids []int
	fds  []int // -1 for a process already gone
}

// watchServers opens a pidfd on each of pids. A process already gone gets
// -1: it has exited.
func watchServers(pids []int) (servers, error) {
	p := &pidfds{pids: pids, fds: make([]int, 0, len(pids))}
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, unix.ESRCH) {
			fd = -1
		} else if err != nil {
			p.Close()
			return nil, os.NewSyscallError("pidfd_open", err)
		}
		p.fds = append(p.fds, fd)
	}
	return p, nil
}

// signal sends sig through the pidfds of the main processes, so a pid
// reused since the drain began is never signalled.
func (p *pidfds) signal(sig syscall.Signal) error {
	ms := mains(p.pids, parentPID)
	if len(ms) == 0 {
		return fmt.Errorf("send %v: no process of the server is left", unix.SignalName(sig))
	}
	for i, pid := range p.pids {
		if !slices.Contains(ms, pid) || p.fds[i] < 0 {
			continue
		}
		if err := unix.PidfdSendSignal(p.fds[i], sig, nil, 0); err != nil {
			return fmt.Errorf("send %v to pid %d: %w", unix.SignalName(sig), pid, os.NewSyscallError("pidfd_send_signal", err))
		}
	}
	return nil
}

// parentPID reads a process's parent from /proc/PID/stat: the field after
// the state, which follows the command name's closing parenthesis.
func parentPID(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	_, rest, ok := strings.Cut(string(b[bytes.LastIndexByte(b, ')')+1:]), " ")
	f := strings.Fields(rest)
	if !ok || len(f) < 2 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strconv.Atoi(f[1])
}

func (p *pidfds) exited(wait time.Duration) bool {
	if len(p.fds) == 0 {
		return false // nobody known to watch
	}
	deadline := time.Now().Add(wait)
	for {
		polls := make([]unix.PollFd, 0, len(p.fds))
		for _, fd := range p.fds {
			if fd >= 0 {
				polls = append(polls, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
			}
		}
		if len(polls) == 0 {
			return true
		}
		left := time.Until(deadline)
		n, err := unix.Poll(polls, int(max(left, 0).Milliseconds()))
		if err == nil && n == len(polls) {
			return true
		}
		if (err != nil && !errors.Is(err, unix.EINTR)) || left <= 0 {
			return false
		}
		time.Sleep(time.Millisecond) // some, not all, have exited
	}
}

func (p *pidfds) Close() error {
	for _, fd := range p.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	return nil
}
