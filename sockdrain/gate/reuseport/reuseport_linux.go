package reuseport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/internal/sockfd"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Names of the pins in a gate's bpffs directory.
const (
	progPin = "prog"
	flagPin = "armed"
)

// gateObjects are the kernel objects of one armed gate.
type gateObjects struct {
	Prog *ebpf.Program `ebpf:"sd_refuse_syn"`
	Flag *ebpf.Map     `ebpf:"sd_armed"`
}

func (o *gateObjects) Close() error {
	return errors.Join(o.Prog.Close(), o.Flag.Close())
}

// Gate is the reuseport gate of one listener. It implements gate.Gate.
type Gate struct {
	l    gate.Listener
	objs *gateObjects // nil while no program is pinned for l
	id   ebpf.ProgramID
}

var _ gate.Gate = (*Gate)(nil)

// Probe reports whether this kernel can load the gate's programs: the
// SK_REUSEPORT program and the TCP iterator that reads a group's program.
func Probe() error {
	objs, err := loadGateObjects()
	if err != nil {
		return err
	}
	objs.Close()
	it, err := loadIterObjects(0)
	if err != nil {
		return err
	}
	return it.Close()
}

// Ready is what a caller about to arm checks instead of Probe: that the
// kernel has SK_REUSEPORT programs. Open and Arm load the programs, and
// fail with gate.ErrNotSupported where Probe would have.
func Ready() error {
	if err := features.HaveProgramType(ebpf.SkReuseport); err != nil {
		return fmt.Errorf("probe sk_reuseport: %w", bpffs.NotSupported(err))
	}
	return nil
}

// Open checks that l can take the gate and finds the gate's pinned state,
// if a process armed it before. It changes nothing in the kernel.
func Open(l gate.Listener) (_ *Gate, err error) {
	if err := checkSockets(l.Sockets); err != nil {
		return nil, err
	}
	g := &Gate{l: l}
	if err := g.loadPinned(); err != nil {
		return nil, err
	}
	defer closeOnError(&err, g.Close)
	if _, err := g.groupProgram(); err != nil {
		return nil, err
	}
	return g, nil
}

// loadPinned loads the program and flag of a gate armed before, if any.
func (g *Gate) loadPinned() (err error) {
	dir := bpffs.Path(pinKey(g.l))
	if ok, err := bpffs.Exists(pinKey(g.l)); err != nil || !ok {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, flagPin)); errors.Is(err, os.ErrNotExist) {
		// The flag is pinned last: this is what an arm killed before it
		// left, and it never attached. Disarm removes it.
		return nil
	}
	objs := &gateObjects{}
	if objs.Prog, err = ebpf.LoadPinnedProgram(filepath.Join(dir, progPin), nil); err != nil {
		return fmt.Errorf("load pinned reuseport program: %w", err)
	}
	if objs.Flag, err = ebpf.LoadPinnedMap(filepath.Join(dir, flagPin), nil); err != nil {
		objs.Prog.Close()
		return fmt.Errorf("load pinned reuseport flag: %w", err)
	}
	return g.adopt(objs)
}

// adopt makes objs the gate's objects, learning the program's id.
func (g *Gate) adopt(objs *gateObjects) error {
	info, err := objs.Prog.Info()
	if err != nil {
		objs.Close()
		return fmt.Errorf("get reuseport program info: %w", err)
	}
	id, ok := info.ID()
	if !ok {
		objs.Close()
		return fmt.Errorf("get reuseport program id: %w", gate.ErrNotSupported)
	}
	g.objs, g.id = objs, id
	return nil
}

// groupProgram reports the program the listener's group runs now, and
// refuses one the gate did not attach.
func (g *Gate) groupProgram() (groupProgram, error) {
	gp, err := readGroupProgram(g.l)
	if err != nil {
		return gp, err
	}
	if gp.InGroup == 0 {
		return gp, fmt.Errorf("%s is in no reuseport group (SO_REUSEPORT set after bind?): %w", g.l.Addr, gate.ErrNotEligible)
	}
	if gp.running() && (g.objs == nil || gp.ProgID != uint32(g.id)) {
		return gp, fmt.Errorf("reuseport group of %s runs a program sockdrain did not attach (%s): %w",
			g.l.Addr, gp, gate.ErrNotEligible)
	}
	return gp, nil
}

// Arm attaches the program to the listener's group, if it is not there
// yet, and sets the flag that makes it refuse pure SYNs.
func (g *Gate) Arm() error {
	if g.objs == nil {
		return g.build()
	}
	if err := g.setFlag(1); err != nil {
		return err
	}
	gp, err := g.groupProgram()
	if err != nil || gp.running() {
		return err
	}
	return g.attach()
}

// build loads, pins and attaches a new armed program. On failure it
// leaves no program, map or pin behind.
func (g *Gate) build() (err error) {
	objs, err := loadGateObjects()
	if err != nil {
		return err
	}
	if err := g.adopt(objs); err != nil {
		return err
	}
	defer closeOnError(&err, g.Close)
	unpin, err := bpffs.Pin(pinKey(g.l), g.pin)
	if err != nil {
		return err
	}
	defer closeOnError(&err, unpin)
	if err := g.setFlag(1); err != nil {
		return err
	}
	if _, err := g.groupProgram(); err != nil {
		return err
	}
	return g.attach()
}

// closeOnError calls undo if *err is set when the caller returns.
func closeOnError(err *error, undo func() error) {
	if *err != nil {
		undo()
	}
}

func (g *Gate) pin(dir string) error {
	if err := g.objs.Prog.Pin(filepath.Join(dir, progPin)); err != nil {
		return fmt.Errorf("pin reuseport program: %w", err)
	}
	if err := g.objs.Flag.Pin(filepath.Join(dir, flagPin)); err != nil {
		return fmt.Errorf("pin reuseport flag: %w", err)
	}
	return nil
}

func (g *Gate) setFlag(v uint32) error {
	if err := g.objs.Flag.Put(uint32(0), v); err != nil {
		return fmt.Errorf("set reuseport flag: %w", err)
	}
	return nil
}

// attach attaches the program to the group of the listener's first socket.
func (g *Gate) attach() error {
	err := sockfd.Control(g.l.Sockets[0], func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_EBPF, g.objs.Prog.FD())
	})
	if err != nil {
		return fmt.Errorf("attach reuseport program to %s: %w", g.l.Addr, os.NewSyscallError("setsockopt", err))
	}
	return nil
}

// Disarm clears the flag, detaches the gate's program from the group and
// removes the pins. A program the gate did not attach is left alone.
func (g *Gate) Disarm() error {
	if g.objs != nil {
		if err := g.setFlag(0); err != nil {
			return err
		}
		if err := g.detach(); err != nil {
			return err
		}
	}
	if err := bpffs.Remove(pinKey(g.l)); err != nil {
		return err
	}
	return g.Close()
}

func (g *Gate) detach() error {
	gp, err := readGroupProgram(g.l)
	if errors.Is(err, errNoListener) || err == nil && gp.ProgID != uint32(g.id) {
		return nil // the group is gone, or runs no program of ours
	}
	if err != nil {
		return err
	}
	err = sockfd.Control(g.l.Sockets[0], func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0)
	})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("detach reuseport program from %s: %w", g.l.Addr, os.NewSyscallError("setsockopt", err))
	}
	return nil
}

// Armed reports whether the group runs the gate's program with the flag set.
func (g *Gate) Armed() (bool, error) {
	if g.objs == nil {
		return false, nil
	}
	var flag uint32
	if err := g.objs.Flag.Lookup(uint32(0), &flag); err != nil {
		return false, fmt.Errorf("read reuseport flag: %w", err)
	}
	gp, err := g.groupProgram()
	if err != nil {
		return false, err
	}
	return flag != 0 && gp.running(), nil
}

// Close releases the process's handles; an armed gate stays armed.
func (g *Gate) Close() error {
	if g.objs == nil {
		return nil
	}
	err := g.objs.Close()
	g.objs, g.id = nil, 0
	return err
}

func loadGateObjects() (*gateObjects, error) {
	return bpffs.Load[gateObjects](gate.Reuseport, loadReuseport)
}

// pinKey names the pin directory of l's gate: one per backend and listener.
func pinKey(l gate.Listener) string { return bpffs.Key(gate.Reuseport, l) }

// Forget removes the pins of l's gate when l's sockets are gone: the
// kernel dropped the program from the group with its last socket, and only
// the pins keep the program and its flag alive. Disarm does this for a
// listener that is still open.
func Forget(l gate.Listener) error { return bpffs.Remove(pinKey(l)) }

// Pinned lists the listeners that have a reuseport gate's pins.
func Pinned() ([]gate.Listener, error) { return bpffs.Pinned(gate.Reuseport) }
