package reuseport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/sockfd"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// A reuseport group runs at most one program, and attaching a new one
// silently replaces the old. No getsockopt reads it back, and listing the
// host's SK_REUSEPORT programs would miss classic BPF programs
// (SO_ATTACH_REUSEPORT_CBPF, which get no id) and would not say which
// group runs which. So the gate reads the group's program from the
// socket itself: a TCP iterator walks the listening sockets of the
// listener's namespace and reports, for each, the socket cookie and the
// program in its sk_reuseport_cb (found through the kernel's BTF). The
// gate matches the record to its socket by SO_COOKIE.

// errNoListener reports a socket that is not a listener in l.NetNS.
var errNoListener = errors.New("socket is not listening in the namespace")

// groupProgram mirrors struct listener_prog in bpf/reuseport.c.
type groupProgram struct {
	Cookie  uint64
	InGroup uint32
	HasProg uint32
	ProgID  uint32
	_       uint32
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

func loadIterObjects() (*iterObjects, error) {
	spec, err := loadReuseport()
	if err != nil {
		return nil, fmt.Errorf("load reuseport spec: %w", err)
	}
	objs := &iterObjects{}
	if err := spec.LoadAndAssign(objs, bpffs.Options()); err != nil {
		return nil, fmt.Errorf("load listener iterator: %w", bpffs.Unloadable(err))
	}
	return objs, nil
}

// readGroupProgram reports the program run by the reuseport group of
// l.Sockets[0].
func readGroupProgram(l gate.Listener) (groupProgram, error) {
	cookie, err := socketCookie(l.Sockets[0])
	if err != nil {
		return groupProgram{}, err
	}
	records, err := readListeners(l.NetNS)
	if err != nil {
		return groupProgram{}, err
	}
	for _, gp := range records {
		if gp.Cookie == cookie {
			return gp, nil
		}
	}
	return groupProgram{}, fmt.Errorf("find %s: %w", l.Addr, errNoListener)
}

// readListeners runs the iterator in ns (nil: this namespace) and
// decodes its records.
func readListeners(ns *os.File) ([]groupProgram, error) {
	objs, err := loadIterObjects()
	if err != nil {
		return nil, err
	}
	defer objs.Close()
	it, err := link.AttachIter(link.IterOptions{Program: objs.Prog})
	if err != nil {
		return nil, fmt.Errorf("attach listener iterator: %w", bpffs.NotSupported(err))
	}
	defer it.Close()
	var raw []byte
	err = inNetNS(ns, func() error {
		r, err := it.Open()
		if err != nil {
			return fmt.Errorf("open listener iterator: %w", err)
		}
		defer r.Close()
		raw, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read listeners: %w", err)
	}
	records := make([]groupProgram, len(raw)/binary.Size(groupProgram{}))
	err = binary.Read(bytes.NewReader(raw), binary.NativeEndian, records)
	return records, err
}

// inNetNS calls fn inside ns, or right here if ns is nil.
func inNetNS(ns *os.File, fn func() error) error {
	if ns == nil {
		return fn()
	}
	h, err := netns.Open(fmt.Sprintf("/proc/self/fd/%d", ns.Fd()))
	if err != nil {
		return err
	}
	defer h.Close()
	return h.Do(fn)
}

func socketCookie(f *os.File) (cookie uint64, err error) {
	err = sockfd.Control(f, func(fd int) (err error) {
		cookie, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("get socket cookie: %w", os.NewSyscallError("getsockopt", err))
	}
	return cookie, nil
}
