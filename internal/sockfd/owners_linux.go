package sockfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/bpffs"
)

// ownerLen is the size of struct owner in bpf/owners.c: inode, pid, fd.
const ownerLen = 16

// maxIterInodes is sd_inodes' max_entries in bpf/owners.c.
const maxIterInodes = 1024

// errIterPIDs reports pids from the iterator that do not name the
// processes /proc shows: this process is in a pid namespace of its own.
var errIterPIDs = errors.New("iterator pids do not match /proc")

// iterFailed caches a conclusive reason the iterator cannot serve (a
// kernel without it, no permission, a pid namespace of our own), so later
// calls go straight to /proc; and, in tableScan, that sd_scan_tables
// cannot load here, so later calls go straight to sd_find_owners.
var iterFailed struct {
	sync.Mutex
	err       error
	tableScan bool
}

// iterHolders finds the holders of inodes with a BPF iterator from
// bpf/owners.c, sd_scan_tables (iter/task, Linux 5.17) or else
// sd_find_owners (iter/task_file, 5.8): the kernel walks every process's
// descriptors and reports only those of the wanted sockets, so the cost
// is one kernel walk rather than a readlink per descriptor on the host.
func iterHolders(inodes []uint64) (map[uint64][]Holder, error) {
	iterFailed.Lock()
	defer iterFailed.Unlock()
	if iterFailed.err != nil {
		return nil, iterFailed.err
	}
	if len(inodes) >= maxIterInodes { // one entry is the marker's
		return nil, fmt.Errorf("find owners of %d sockets: the iterator takes at most %d", len(inodes), maxIterInodes)
	}
	found, err := runIter(inodes)
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, errIterPIDs) || errors.Is(err, os.ErrPermission) {
		iterFailed.err = err
	}
	return found, err
}

// runIter runs the owners iterator; the caller holds iterFailed.
func runIter(inodes []uint64) (map[uint64][]Holder, error) {
	marker, err := newMarker()
	if err != nil {
		return nil, err
	}
	defer marker.Close()
	wanted := append([]uint64{marker.ino}, inodes...)
	var found map[uint64][]Holder
	if !iterFailed.tableScan {
		found, err = readOwners(ownersProgSdScanTables, wanted)
		if err != nil && !errors.Is(err, errTableTooLarge) {
			// A kernel before bpf_loop (5.17) refuses the program.
			iterFailed.tableScan = true
		}
	}
	if found == nil {
		if found, err = readOwners(ownersProgSdFindOwners, wanted); err != nil {
			return nil, err
		}
	}
	if want := (Holder{PID: os.Getpid(), FD: marker.fd}); !slices.Contains(found[marker.ino], want) {
		return nil, fmt.Errorf("find this process (%v) among %v: %w", want, found[marker.ino], errIterPIDs)
	}
	delete(found, marker.ino)
	return found, nil
}

// errTableTooLarge reports a descriptor table beyond bpf_loop's bound,
// which sd_scan_tables marks with an owner of inode 0.
var errTableTooLarge = errors.New("a descriptor table is too large to scan")

// readOwners loads the owners iterator prog, one of the programs in
// bpf/owners.c, with the inodes to find, and reads what it reports.
func readOwners(prog string, inodes []uint64) (map[uint64][]Holder, error) {
	spec, err := loadOwners()
	if err != nil {
		return nil, fmt.Errorf("load owners spec: %w", err)
	}
	maps.DeleteFunc(spec.Programs, func(name string, _ *ebpf.ProgramSpec) bool { return name != prog })
	coll, err := ebpf.NewCollectionWithOptions(spec, *bpffs.Options())
	if err != nil {
		return nil, fmt.Errorf("load owners iterator %s: %w", prog, err)
	}
	defer coll.Close()
	for _, ino := range inodes {
		if err := coll.Maps[ownersMapSdInodes].Put(ino, uint8(1)); err != nil {
			return nil, fmt.Errorf("add inode %d to owners iterator: %w", ino, err)
		}
	}
	it, err := link.AttachIter(link.IterOptions{Program: coll.Programs[prog]})
	if err != nil {
		return nil, fmt.Errorf("attach owners iterator %s: %w", prog, err)
	}
	defer it.Close()
	r, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("open owners iterator %s: %w", prog, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read owners iterator %s: %w", prog, err)
	}
	found := parseOwners(b)
	if tooLarge, ok := found[0]; ok {
		return nil, fmt.Errorf("pid %d, %d descriptors: %w", tooLarge[0].PID, tooLarge[0].FD, errTableTooLarge)
	}
	return found, nil
}

// marker is a socket of this process that the iterator must find under
// this process's pid: the kernel reports pids of the initial pid
// namespace, which are not ours in a container.
type marker struct {
	fd  int
	ino uint64
}

func newMarker() (*marker, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fstat", err)
	}
	return &marker{fd: fd, ino: st.Ino}, nil
}

func (m *marker) Close() error { return unix.Close(m.fd) }

// parseOwners decodes the iterator's records.
func parseOwners(b []byte) map[uint64][]Holder {
	found := map[uint64][]Holder{}
	for ; len(b) >= ownerLen; b = b[ownerLen:] {
		ino := binary.NativeEndian.Uint64(b[0:8])
		h := Holder{PID: int(binary.NativeEndian.Uint32(b[8:12])), FD: int(binary.NativeEndian.Uint32(b[12:16]))}
		found[ino] = append(found[ino], h)
	}
	return found
}
