package bpffs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrNoHostBPFFS is returned when sockdrain runs in a mount namespace of
// its own, as under `ip netns exec`, and the host's mount namespace has no
// bpffs at MountPoint. A bpffs mounted in our own namespace would die with
// this process, and every pin in it.
var ErrNoHostBPFFS = errors.New("no bpffs in the host's mount namespace")

// hostMount is how this process reaches the bpffs of the host's mount
// namespace: the namespace of a process that outlives us.
type hostMount struct {
	// dir is MountPoint, or MountPoint under /proc/PID/root when our
	// mount namespace is not the host's.
	dir string
	// own: dir is in our mount namespace, which is the host's, so a bpffs
	// mounted there outlives us.
	own bool
}

// host finds the host's bpffs once: the mount namespace does not change.
var host = sync.OnceValues(findHost)

// findHost compares our mount namespace with the host's: that of PID 1,
// or, where PID 1 is hidden from us, of kthreadd (PID 2), which lives in
// the initial mount namespace. Either outlives every process of ours.
func findHost() (hostMount, error) {
	self, err := nsInode("/proc/self/ns/mnt")
	if err != nil {
		return hostMount{}, err
	}
	var errs []error
	for _, pid := range []int{1, 2} {
		ino, err := rootMountNS(pid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ino == self {
			return hostMount{dir: MountPoint, own: true}, nil
		}
		return hostMount{dir: filepath.Join("/proc", strconv.Itoa(pid), "root", MountPoint)}, nil
	}
	return hostMount{}, fmt.Errorf("find the host's mount namespace, where pins outlive sockdrain: %w", errors.Join(errs...))
}

// rootMountNS is the mount namespace inode of pid, if pid has no parent
// in our pid namespace: init, or the kernel's kthreadd.
func rootMountNS(pid int) (uint64, error) {
	ppid, err := parentOf(pid)
	if err != nil {
		return 0, err
	}
	if ppid != 0 {
		return 0, fmt.Errorf("pid %d has parent %d: not init or kthreadd", pid, ppid)
	}
	return nsInode(fmt.Sprintf("/proc/%d/ns/mnt", pid))
}

func parentOf(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read parent of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PPid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("read parent of pid %d: no PPid line", pid)
}

func nsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, os.NewSyscallError("stat", err))
	}
	return st.Ino, nil
}

// isBPFFS reports whether dir is the root of a bpffs, or in one.
func isBPFFS(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, os.NewSyscallError("statfs", err))
	}
	return st.Type == unix.BPF_FS_MAGIC, nil
}

// Mount makes sure the host's mount namespace has a bpffs at MountPoint,
// and returns the path by which this process reaches it. It mounts one
// only when our mount namespace is the host's; otherwise a missing bpffs
// is ErrNoHostBPFFS, since one mounted here would die with us.
func Mount() (string, error) {
	h, err := host()
	if err != nil {
		return "", err
	}
	ok, err := isBPFFS(h.dir)
	switch {
	case err != nil:
		return "", err
	case ok:
		return h.dir, nil
	case !h.own:
		return "", fmt.Errorf("%w: %s is not a bpffs, and one mounted in this mount namespace (ip netns exec makes one of its own) would die with sockdrain, and its gates with it; mount one on the host (mount -t bpf bpf %s), or run sockdrain from the host with --netns",
			ErrNoHostBPFFS, h.dir, MountPoint)
	}
	if err := unix.Mount("bpf", h.dir, "bpf", 0, "mode=0700"); err != nil {
		return "", fmt.Errorf("mount bpffs at %s: %w", h.dir, os.NewSyscallError("mount", err))
	}
	return h.dir, nil
}
