package reuseport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/internal/sockfd"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// A reuseport group runs at most one program, and attaching a new one
// silently replaces the old. No getsockopt reads it back, and listing the
// host's SK_REUSEPORT programs would miss classic BPF programs
// (SO_ATTACH_REUSEPORT_CBPF, which get no id) and would not say which
// group runs which. So the gate reads the group's program from the
// socket itself: a task_file iterator finds this process's descriptor of
// the socket, by its inode, and reports the program in the socket's
// sk_reuseport_cb (found through the kernel's BTF). The iterator walks
// only this process's descriptors (Linux 6.1), not those of the host;
// older kernels ignore that limit and walk them all.

// errNoListener reports a socket that is not a listener.
var errNoListener = errors.New("socket is not listening")

// groupProgram mirrors struct listener_prog in bpf/reuseport.c.
type groupProgram struct {
	Inode     uint64
	InGroup   uint32
	HasProg   uint32
	ProgID    uint32
	Listening uint32
}

func (gp groupProgram) running() bool { return gp.HasProg != 0 }

func (gp groupProgram) String() string {
	if gp.ProgID == 0 {
		return "classic BPF program"
	}
	return fmt.Sprintf("BPF program id %d", gp.ProgID)
}

type iterObjects struct {
	Prog *ebpf.Program `ebpf:"sd_reuseport_progs"`
}

func (o *iterObjects) Close() error { return o.Prog.Close() }

// loadIterObjects loads the iterator for the socket whose inode is ino.
func loadIterObjects(ino uint64) (*iterObjects, error) {
	spec, err := loadReuseport()
	if err != nil {
		return nil, fmt.Errorf("load reuseport spec: %w", err)
	}
	if err := spec.Variables["sock_ino"].Set(ino); err != nil {
		return nil, fmt.Errorf("set listener iterator's inode: %w", err)
	}
	objs := &iterObjects{}
	if err := spec.LoadAndAssign(objs, bpffs.Options()); err != nil {
		return nil, fmt.Errorf("load listener iterator: %w", bpffs.Unloadable(err))
	}
	return objs, nil
}

// readGroupProgram reports the program run by the reuseport group of
// l.Sockets[0], a descriptor this process holds.
func readGroupProgram(l gate.Listener) (groupProgram, error) {
	var st unix.Stat_t
	err := sockfd.Control(l.Sockets[0], func(fd int) error { return unix.Fstat(fd, &st) })
	if err != nil {
		return groupProgram{}, fmt.Errorf("stat listening socket of %s: %w", l.Addr, err)
	}
	objs, err := loadIterObjects(st.Ino)
	if err != nil {
		return groupProgram{}, err
	}
	defer objs.Close()
	records, err := readOwnFiles(objs.Prog)
	if err != nil {
		return groupProgram{}, err
	}
	for _, gp := range records {
		if gp.Inode == st.Ino && gp.Listening != 0 {
			return gp, nil
		}
	}
	return groupProgram{}, fmt.Errorf("find %s: %w", l.Addr, errNoListener)
}

// readOwnFiles runs the task_file iterator prog over this process's
// descriptors and decodes its records.
func readOwnFiles(prog *ebpf.Program) ([]groupProgram, error) {
	it, err := attachOwnFiles(prog)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	r, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("open listener iterator: %w", err)
	}
	defer r.Close()
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read listener iterator: %w", err)
	}
	records := make([]groupProgram, len(raw)/binary.Size(groupProgram{}))
	err = binary.Read(bytes.NewReader(raw), binary.NativeEndian, records)
	return records, err
}

// iterLinkCreate is the link_create part of union bpf_attr for an
// iterator, and iterTask the task part of union bpf_iter_link_info.
// cilium/ebpf's AttachIter passes only a map; a task_file iterator limited
// to one process needs the task part (Linux 6.1).
// iterInfo is a pointer the garbage collector knows of: 64 bits, as the
// kernel's __aligned_u64 on the 64-bit targets the programs are built for.
type iterLinkCreate struct {
	progFD, targetFD, attachType, flags uint32
	iterInfo                            unsafe.Pointer
	iterInfoLen                         uint32
	_                                   uint32
}

type iterTask struct {
	tid, pid, pidFD uint32
	_               uint32 // the union's size: its cgroup part has a __u64
}

// attachOwnFiles attaches prog, a task_file iterator, to this process's
// descriptors.
func attachOwnFiles(prog *ebpf.Program) (*link.Iter, error) {
	task := iterTask{pid: uint32(os.Getpid())}
	attr := iterLinkCreate{
		progFD:      uint32(prog.FD()),
		attachType:  uint32(ebpf.AttachTraceIter),
		iterInfo:    unsafe.Pointer(&task),
		iterInfoLen: uint32(unsafe.Sizeof(task)),
	}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_LINK_CREATE, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno == unix.E2BIG {
		// Before 6.1 the kernel knows no task part, and refuses one: walk
		// every process's descriptors instead.
		it, err := link.AttachIter(link.IterOptions{Program: prog})
		if err != nil {
			return nil, fmt.Errorf("attach listener iterator: %w", bpffs.NotSupported(err))
		}
		return it, nil
	}
	if errno != 0 {
		return nil, fmt.Errorf("attach listener iterator: %w", bpffs.NotSupported(os.NewSyscallError("bpf", errno)))
	}
	l, err := link.NewFromFD(int(fd))
	if err != nil {
		unix.Close(int(fd))
		return nil, fmt.Errorf("attach listener iterator: %w", err)
	}
	it, ok := l.(*link.Iter)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("attach listener iterator: got a %T link", l)
	}
	return it, nil
}
