package sklookup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Names of the pins in a gate's bpffs directory.
const (
	linkPin      = "link"
	configPin    = "config"
	listenersPin = "listeners"
)

// maxListeners is MAX_LISTENERS in bpf/sklookup.c: the gate is tied to
// the first maxListeners sockets of a larger reuseport group.
const maxListeners = 64

// CloseGrace is how long a tied gate goes on refusing after its program
// last found the drained listener open. The kernel takes a closing socket
// out of the gate's SOCKMAP before TCP unhashes it; in the microseconds
// between, a SYN would find the listener without the gate refusing it, and
// the client would get a reset once the listener is gone. While SYNs come
// more often than CloseGrace, none lands in that window unrefused.
const CloseGrace = 100 * time.Millisecond

type gateObjects struct {
	Prog      *ebpf.Program `ebpf:"sd_refuse_lookup"`
	Config    *ebpf.Map     `ebpf:"sd_config"`
	Listeners *ebpf.Map     `ebpf:"sd_listeners"`
}

func (o *gateObjects) Close() error {
	return errors.Join(o.Prog.Close(), o.Config.Close(), o.Listeners.Close())
}

// Gate is the sk_lookup gate of one listener. It implements gate.Gate.
type Gate struct {
	l    gate.Listener
	cfg  sklookupGateConfig // what Arm refuses
	objs *gateObjects       // nil while no link is pinned for l
	link link.Link
}

var _ gate.Gate = (*Gate)(nil)

// Probe reports whether this kernel can load and attach SK_LOOKUP programs.
func Probe() error {
	if err := features.HaveProgramType(ebpf.SkLookup); err != nil {
		return fmt.Errorf("probe sk_lookup: %w", bpffs.NotSupported(err))
	}
	objs, err := loadGateObjects()
	if err != nil {
		return err
	}
	return objs.Close()
}

// Open reads what to refuse from l and finds the gate's pinned state, if
// a process armed it before. It changes nothing in the kernel.
//
// l.Sockets are optional: with them, the gate ties itself to their life
// and learns from IPV6_V6ONLY whether a [::] listener takes IPv4 too.
func Open(l gate.Listener) (_ *Gate, err error) {
	facts, err := readSockets(l.Sockets)
	if err != nil {
		return nil, err
	}
	g := &Gate{l: l, cfg: configFor(l.Addr, facts)}
	if err := g.loadPinned(); err != nil {
		return nil, err
	}
	return g, nil
}

// Tied reports whether the gate refuses only while one of the drained
// listener's sockets is open.
func (g *Gate) Tied() bool { return g.cfg.Tied != 0 }

// Warnings says when the gate is not tied to its listener.
func (g *Gate) Warnings() ([]string, error) {
	if g.Tied() {
		return nil, nil
	}
	return []string{"the sk_lookup gate is not tied to the listener (MPTCP, or its socket could not be taken): it refuses until resume, even after a restart"}, nil
}

func (g *Gate) loadPinned() (err error) {
	if ok, err := bpffs.Exists(pinKey(g.l)); err != nil || !ok {
		return err
	}
	dir := bpffs.Path(pinKey(g.l))
	if !pinned(filepath.Join(dir, linkPin)) {
		return nil // an arm killed before its last pin: nothing refuses
	}
	objs := &gateObjects{} // the pinned link holds the program
	defer closeOnError(&err, objs.Close)
	if objs.Config, err = ebpf.LoadPinnedMap(filepath.Join(dir, configPin), nil); err != nil {
		return fmt.Errorf("load pinned sk_lookup config: %w", err)
	}
	if objs.Listeners, err = ebpf.LoadPinnedMap(filepath.Join(dir, listenersPin), nil); err != nil {
		return fmt.Errorf("load pinned sk_lookup listeners: %w", err)
	}
	if g.link, err = link.LoadPinnedLink(filepath.Join(dir, linkPin), nil); err != nil {
		return fmt.Errorf("load pinned sk_lookup link: %w", err)
	}
	attached, err := linkAttached(g.link)
	if err != nil || !attached {
		// Not attached: the namespace died and the kernel detached the
		// link. The pins are a dead gate's, and a namespace made since
		// may have the same inode. Nothing refuses; Arm and Disarm
		// replace the pins.
		g.link.Close()
		g.link = nil
		if err == nil {
			objs.Close()
		}
		return err
	}
	if err := objs.Config.Lookup(uint32(0), &g.cfg); err != nil {
		g.link.Close()
		return fmt.Errorf("read sk_lookup config: %w", err)
	}
	g.objs = objs
	return nil
}

// linkAttached reports whether l is still attached to a network
// namespace: the kernel detaches a namespace's links when it dies.
func linkAttached(l link.Link) (bool, error) {
	info, err := l.Info()
	if err != nil {
		return false, fmt.Errorf("read pinned sk_lookup link: %w", err)
	}
	ns := info.NetNs()
	return ns != nil && ns.NetnsInode != 0, nil
}

// pinned reports whether path exists. Each gate pins its link last, so a
// pin directory without it holds the leftovers of an arm whose process was
// killed: what it left attached died with it, and Disarm removes the rest.
func pinned(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// closeOnError calls undo if *err is set when the caller returns.
func closeOnError(err *error, undo func() error) {
	if *err != nil {
		undo()
	}
}

// Arm attaches the program to the listener's namespace, if it is not
// there yet, and sets it refusing.
func (g *Gate) Arm() error {
	if g.objs == nil {
		return g.build()
	}
	if err := g.addSockets(); err != nil {
		return err
	}
	return g.writeConfig(1)
}

// build loads, attaches and pins a new armed gate. On failure it leaves
// no program, map, link or pin behind.
func (g *Gate) build() (err error) {
	objs, err := loadGateObjects()
	if err != nil {
		return err
	}
	g.objs = objs
	defer closeOnError(&err, g.Close)
	if err := g.addSockets(); err != nil {
		return err
	}
	if err := g.writeConfig(1); err != nil {
		return err
	}
	if err := g.attach(); err != nil {
		return err
	}
	unpin, err := bpffs.Pin(pinKey(g.l), g.pin)
	if err != nil {
		return err
	}
	defer closeOnError(&err, unpin)
	return g.requirePinned()
}

// requirePinned reads the link back from its pin, by the path a later
// process will use, and fails unless it is the gate's own: the gate then
// outlives this process.
func (g *Gate) requirePinned() error {
	ok, err := g.linkPinned()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("pin sk_lookup link: %s does not hold the gate's link, so the gate would not outlive this process",
			filepath.Join(bpffs.Path(pinKey(g.l)), linkPin))
	}
	return nil
}

// linkPinned reports whether the gate's link pin holds g's link. Only the
// pin keeps the link attached once this process exits.
func (g *Gate) linkPinned() (bool, error) {
	path := filepath.Join(bpffs.Path(pinKey(g.l)), linkPin)
	pl, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load pinned sk_lookup link %s: %w", path, err)
	}
	defer pl.Close()
	pinnedInfo, err := pl.Info()
	if err != nil {
		return false, fmt.Errorf("read pinned sk_lookup link: %w", err)
	}
	ours, err := g.link.Info()
	if err != nil {
		return false, fmt.Errorf("read sk_lookup link: %w", err)
	}
	return pinnedInfo.ID == ours.ID, nil
}

func (g *Gate) attach() (err error) {
	ns := g.l.NetNS
	if ns == nil {
		if ns, err = os.Open("/proc/self/ns/net"); err != nil {
			return fmt.Errorf("open own netns: %w", err)
		}
		defer ns.Close()
	}
	if g.link, err = link.AttachNetNs(int(ns.Fd()), g.objs.Prog); err != nil {
		return fmt.Errorf("attach sk_lookup to netns %s: %w", ns.Name(), bpffs.NotSupported(err))
	}
	return nil
}

func (g *Gate) pin(dir string) error {
	if err := g.objs.Config.Pin(filepath.Join(dir, configPin)); err != nil {
		return fmt.Errorf("pin sk_lookup config: %w", err)
	}
	if err := g.objs.Listeners.Pin(filepath.Join(dir, listenersPin)); err != nil {
		return fmt.Errorf("pin sk_lookup listeners: %w", err)
	}
	if err := g.link.Pin(filepath.Join(dir, linkPin)); err != nil {
		return fmt.Errorf("pin sk_lookup link: %w", err)
	}
	return nil
}

func (g *Gate) writeConfig(armed uint8) error {
	cfg := g.cfg
	cfg.Armed = armed
	if err := g.objs.Config.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("write sk_lookup config: %w", err)
	}
	g.cfg = cfg
	return nil
}

// Disarm detaches the program and removes the link, maps and pins.
func (g *Gate) Disarm() error {
	if g.objs != nil {
		if err := g.writeConfig(0); err != nil {
			return err
		}
	}
	if err := bpffs.Remove(pinKey(g.l)); err != nil {
		return err
	}
	return g.Close()
}

// Armed reports whether the gate refuses now and goes on refusing after
// this process exits: armed, its link pinned and, when tied, with a
// drained listener socket still open or seen open within CloseGrace.
func (g *Gate) Armed() (bool, error) {
	if g.objs == nil || g.cfg.Armed == 0 {
		return false, nil
	}
	if ok, err := g.linkPinned(); err != nil || !ok {
		return false, err
	}
	if !g.Tied() {
		return true, nil
	}
	return g.refusing()
}

// Close releases the process's handles; a pinned gate stays armed.
func (g *Gate) Close() error {
	if g.objs == nil {
		return nil
	}
	err := g.objs.Close()
	if g.link != nil {
		err = errors.Join(err, g.link.Close())
	}
	g.objs, g.link = nil, nil
	return err
}

func loadGateObjects() (*gateObjects, error) {
	return bpffs.Load[gateObjects]("sk_lookup", loadSklookup)
}

// pinKey names the pin directory of l's gate: one per backend and listener.
func pinKey(l gate.Listener) string { return bpffs.Key(gate.SKLookup, l) }

// Pinned lists the listeners that have an sk_lookup gate's pins.
func Pinned() ([]gate.Listener, error) { return bpffs.Pinned(gate.SKLookup) }
