// Package sockfd finds the processes that hold a socket open, and duplicates
// a socket out of another process with pidfd_getfd.
package sockfd

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Holder is one file descriptor that refers to a socket.
type Holder struct {
	PID int
	FD  int
}

// Holders maps each inode in inodes to the descriptors that refer to it, by
// reading the links under /proc/PID/fd. Processes that exit or deny access
// while it reads are skipped.
func Holders(inodes []uint64) (map[uint64][]Holder, error) {
	want := make(map[string]uint64, len(inodes))
	for _, ino := range inodes {
		want["socket:["+strconv.FormatUint(ino, 10)+"]"] = ino
	}
	found := map[uint64][]Holder{}
	if len(want) == 0 {
		return found, nil
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, p := range procs {
		if pid, err := strconv.Atoi(p.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	found, _ = holdersIn(pids, want)
	return found, nil
}

// HoldersIn is Holders, looking only at the processes pids. It also
// returns why it could not read the descriptors of any of them, such as
// EACCES without ptrace access to a process.
func HoldersIn(pids []int, inodes []uint64) (map[uint64][]Holder, error) {
	want := make(map[string]uint64, len(inodes))
	for _, ino := range inodes {
		want["socket:["+strconv.FormatUint(ino, 10)+"]"] = ino
	}
	return holdersIn(pids, want)
}

func holdersIn(pids []int, want map[string]uint64) (map[uint64][]Holder, error) {
	found := map[uint64][]Holder{}
	var errs []error
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
		fds, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(dir + fd.Name())
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if ino, ok := want[link]; ok {
				n, _ := strconv.Atoi(fd.Name())
				found[ino] = append(found[ino], Holder{PID: pid, FD: n})
			}
		}
	}
	return found, errors.Join(errs...)
}

// PIDs returns the sorted, distinct processes holding any of inodes.
func PIDs(inodes []uint64) ([]int, error) {
	holders, err := Holders(inodes)
	if err != nil {
		return nil, err
	}
	pids := []int{}
	for _, hs := range holders {
		for _, h := range hs {
			pids = append(pids, h.PID)
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// Dup duplicates descriptor fd of process pid into this process.
func Dup(pid, fd int) (*os.File, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("open pidfd of %d: %w", pid, os.NewSyscallError("pidfd_open", err))
	}
	defer unix.Close(pidfd)
	nfd, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return nil, fmt.Errorf("get fd %d of pid %d: %w", fd, pid, os.NewSyscallError("pidfd_getfd", err))
	}
	return os.NewFile(uintptr(nfd), fmt.Sprintf("pid%d-fd%d", pid, fd)), nil
}

// With calls fn with a duplicate of descriptor fd of process pid, as a raw
// descriptor that it closes afterwards. The duplicate shares its open file
// description, blocking mode included, with the process's descriptor, so fn
// must not change that mode.
func With(pid, fd int, fn func(fd int) error) error {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("open pidfd of %d: %w", pid, os.NewSyscallError("pidfd_open", err))
	}
	defer unix.Close(pidfd)
	nfd, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return fmt.Errorf("get fd %d of pid %d: %w", fd, pid, os.NewSyscallError("pidfd_getfd", err))
	}
	defer unix.Close(nfd)
	return fn(nfd)
}
