// Package sockfd finds the processes that hold a socket open, and duplicates
// a socket out of another process with pidfd_getfd.
package sockfd

import (
	"errors"
	"fmt"
	"maps"
	"math"
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

// Holders maps each inode in inodes to the descriptors that refer to it.
// On a host with many open files the kernel finds them with a BPF iterator
// where it can (Linux 5.8, root, the initial pid namespace); otherwise
// Holders reads the links under /proc/PID/fd, skipping processes that exit
// or deny access meanwhile.
func Holders(inodes []uint64) (map[uint64][]Holder, error) {
	if len(inodes) == 0 {
		return map[uint64][]Holder{}, nil
	}
	if openFiles() >= iterMinFiles {
		if found, err := iterHolders(inodes); err == nil {
			return found, nil
		}
	}
	return procHolders(inodes)
}

// iterMinFiles is where the iterator starts to pay: it costs about 40 ms
// to load (parsing the kernel's BTF, the verifier) and 0.5 µs per
// descriptor, the /proc walk about 5-9 µs per descriptor.
const iterMinFiles = 5000

// openFiles is the number of open files on the host (fs.file-nr), or
// the most an int holds when it cannot be read.
func openFiles() int {
	b, err := os.ReadFile("/proc/sys/fs/file-nr")
	if err != nil {
		return math.MaxInt
	}
	n, err := strconv.Atoi(strings.Fields(string(b) + " x")[0])
	if err != nil {
		return math.MaxInt
	}
	return n
}

// procHolders is Holders by reading every /proc/PID/fd/* link.
func procHolders(inodes []uint64) (map[uint64][]Holder, error) {
	want := make(map[string]uint64, len(inodes))
	for _, ino := range inodes {
		want[socketLink(ino)] = ino
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
	found, _ := holdersIn(pids, want)
	return found, nil
}

// HoldersIn is Holders, looking only at the processes pids. It also
// returns why it could not read the descriptors of any of them, such as
// EACCES without ptrace access to a process.
func HoldersIn(pids []int, inodes []uint64) (map[uint64][]Holder, error) {
	want := make(map[string]uint64, len(inodes))
	for _, ino := range inodes {
		want[socketLink(ino)] = ino
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

// socketLink is what /proc/PID/fd/N links to for socket inode ino.
func socketLink(ino uint64) string { return "socket:[" + strconv.FormatUint(ino, 10) + "]" }

// firstWalkBudget is how many descriptors FirstHolders reads through /proc
// before it hands the search to Holders.
const firstWalkBudget = 2000

// FirstHolders finds one descriptor of each socket in inodes, enough to
// duplicate it, and stops as soon as it has them. It reads /proc, the
// processes with the fewest descriptors first, for up to firstWalkBudget
// descriptors; then Holders finds the rest (the iterator, on a busy host).
// An inode no process holds is missing from the answer.
func FirstHolders(inodes []uint64) (map[uint64]Holder, error) {
	first := map[uint64]Holder{}
	if len(inodes) == 0 {
		return first, nil
	}
	want := make(map[string]uint64, len(inodes))
	for _, ino := range inodes {
		want[socketLink(ino)] = ino
	}
	procs, err := byDescriptors()
	if err != nil {
		return nil, err
	}
	read := 0
	for _, p := range procs {
		if read+p.fds > firstWalkBudget && p.fds > 0 {
			break
		}
		read += max(p.fds, 1)
		found, _ := holdersIn([]int{p.pid}, want)
		for ino, hs := range found {
			first[ino] = hs[0]
			delete(want, socketLink(ino))
		}
		if len(want) == 0 {
			return first, nil
		}
	}
	rest := slices.Collect(maps.Values(want))
	found, err := Holders(rest)
	if err != nil {
		return nil, err
	}
	for _, ino := range rest {
		if hs := found[ino]; len(hs) > 0 {
			first[ino] = hs[0]
		}
	}
	return first, nil
}

// proc is a process and how many descriptors it has open.
type proc struct{ pid, fds int }

// byDescriptors lists the processes, those with the fewest descriptors
// first. The size of /proc/PID/fd is that count since Linux 6.2; where it
// is 0, the process goes first and costs its own walk.
func byDescriptors() ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var procs []proc
	var st unix.Stat_t
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if unix.Stat("/proc/"+e.Name()+"/fd", &st) != nil {
			continue
		}
		procs = append(procs, proc{pid: pid, fds: int(st.Size)})
	}
	slices.SortStableFunc(procs, func(a, b proc) int { return a.fds - b.fds })
	return procs, nil
}
