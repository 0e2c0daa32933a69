package sockdrain

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pidfds watch processes through pidfds, which cannot be fooled by a pid
// reused after the exit, and report a zombie as exited.
type pidfds []int

// watchServers opens a pidfd on each of pids. A process already gone gets
// -1: it has exited.
func watchServers(pids []int) (servers, error) {
	fds := make(pidfds, 0, len(pids))
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, unix.ESRCH) {
			fd = -1
		} else if err != nil {
			fds.Close()
			return nil, os.NewSyscallError("pidfd_open", err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func (p pidfds) exited(wait time.Duration) bool {
	if len(p) == 0 {
		return false // nobody known to watch
	}
	deadline := time.Now().Add(wait)
	for {
		polls := make([]unix.PollFd, 0, len(p))
		for _, fd := range p {
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

func (p pidfds) Close() error {
	for _, fd := range p {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	return nil
}
