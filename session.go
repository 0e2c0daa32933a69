package sockdrain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sockdrain/sockdrain/internal/backend"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// namespace is where a target's listeners live: a Linux network namespace,
// or the host's one stack elsewhere.
type namespace interface {
	// Do runs fn where sockets it creates belong to the namespace.
	Do(fn func() error) error
	// File is the namespace as a gate.Listener carries it; nil for the host.
	File() *os.File
	// Inode tells namespaces apart in the names of pins and rules.
	Inode() (uint64, error)
	Close() error
}

// session is what a drain or a resume holds open: the target's namespace,
// its observer, and duplicates of its listening sockets.
type session struct {
	ns        namespace
	obs       *Observer
	listeners []Listener
	gls       []gate.Listener
}

// openSession finds the listeners serving t and takes their sockets with
// grab. With allowNone, a target without listeners is not an error. It
// looks only at the listening sockets.
func openSession(t Target, grab func(Listener) ([]*os.File, error), allowNone bool) (_ *session, err error) {
	s := &session{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.ns, err = openNamespace(t.NetNS); err != nil {
		return nil, err
	}
	if s.obs, err = NewObserver(t); err != nil {
		return nil, err
	}
	s.listeners, err = s.obs.lookup()
	if errors.Is(err, ErrNoListener) && allowNone {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	ino, err := s.ns.Inode()
	if err != nil {
		return nil, err
	}
	for _, l := range s.listeners {
		socks, err := grab(l)
		s.gls = append(s.gls, gate.Listener{NetNS: s.ns.File(), NetNSInode: ino, Addr: l.Listen, Sockets: socks})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// releaseSockets closes the session's duplicates of the listening sockets.
func (s *session) releaseSockets() {
	for i := range s.gls {
		for _, f := range s.gls[i].Sockets {
			f.Close()
		}
		s.gls[i].Sockets = nil
	}
}

func (s *session) close() {
	s.releaseSockets()
	if s.obs != nil {
		s.obs.Close()
	}
	if s.ns != nil {
		s.ns.Close()
	}
}

func newEngine(t Target, opts Options) (_ *engine, _ func(), err error) {
	var first []int // the owners found before arming
	s, err := openSession(t, grabFrom(opts.PID, &first), false)
	if err != nil {
		return nil, nil, err
	}
	var cleanup []func()
	done := func() {
		for _, f := range slices.Backward(cleanup) {
			f()
		}
	}
	defer func() {
		if err != nil {
			done()
		}
	}()
	cleanup = append(cleanup, s.close)
	if err := s.hold(opts.Sockets); err != nil {
		return nil, nil, err
	}
	lock, err := s.lock(t.Port)
	if err != nil {
		return nil, nil, err
	}
	cleanup = append(cleanup, lock.unlock)
	want, joined, err := joinArmed(s.gls, opts.Backend)
	if err != nil {
		return nil, nil, err
	}
	gs, b, why, err := choose(backend.AutoOrder(syncookies(s.ns)), want, s.gls)
	if err != nil {
		return nil, nil, err
	}
	cleanup = append(cleanup, func() { gs.close() })
	if joined {
		why = "already armed when this drain began; it stays armed whatever happens"
	}
	s.obs.idle = opts.Idle
	e := &engine{opts: opts, watch: s.obs, gates: gs, backend: b.Name, reason: why, clock: realClock{},
		joined:   joined,
		release:  func() { gs.close(); s.releaseSockets() },
		rollback: func() error { _, err := Resume(context.Background(), t); return err },
	}
	// What can wait until the gate refuses: every owner of the listeners,
	// and the warnings. --close-idle needs the owners to check that it
	// may take their sockets, which must fail before anything changes.
	var owners []int
	e.settle = func() (err error) {
		if e.servers != nil {
			return nil
		}
		if owners, err = ownerPIDs(s, opts.PID); err != nil {
			return err
		}
		// A server that died since the gate was armed is found by no
		// walk now, but must count as exited: keep the owners found before.
		owners = slices.Compact(slices.Sorted(slices.Values(append(owners, first...))))
		srv, err := watchServers(owners)
		if err != nil {
			return err
		}
		cleanup = append(cleanup, func() { srv.Close() })
		e.servers = srv
		e.warnings = backend.Warnings(b, s.ns.File(), syncookies(s.ns), gs)
		return nil
	}
	if opts.CloseIdle {
		if err := e.settle(); err != nil {
			return nil, nil, err
		}
		if e.closer, err = newIdleCloser(owners, s.listeners); err != nil {
			return nil, nil, err
		}
	}
	if !opts.NoVerify {
		e.verify = func() error { return verifyRefused(s.ns, s.listeners) }
	}
	return e, done, nil
}

// lock takes the lock of port in the session's namespace.
func (s *session) lock(port uint16) (*portLock, error) {
	ino, err := s.ns.Inode()
	if err != nil {
		return nil, err
	}
	return lockPort(ino, port)
}

// joinArmed finds a gate of ours left armed on ls by an earlier drain. A
// drain joins it rather than arm a second gate: it returns that backend,
// and whether there was one. It refuses to arm a different backend.
func joinArmed(ls []gate.Listener, want string) (string, bool, error) {
	var armed []string
	for _, gl := range ls {
		for _, name := range armedOn(gl) {
			if !slices.Contains(armed, name) {
				armed = append(armed, name)
			}
		}
	}
	switch {
	case len(armed) == 0:
		return want, false, nil
	case len(armed) == 1 && (want == "auto" || want == armed[0]):
		return armed[0], true, nil
	}
	return "", false, fmt.Errorf("%w: the %s gate of an earlier drain is still armed; run resume first, or drain with --backend %s to join it",
		ErrBusy, strings.Join(armed, " and "), armed[0])
}

// verifyRefused checks the gate: a probe connection to each listener must
// be refused at once. A probe that gets through is closed at once; the
// server sees a client that connected and left.
func verifyRefused(ns namespace, ls []Listener) error {
	for _, l := range ls {
		addr := probeAddr(l.Listen)
		err := ns.Do(func() error {
			d := net.Dialer{Timeout: time.Second}
			c, err := d.Dial("tcp", addr.String())
			if err == nil {
				c.Close()
				return fmt.Errorf("a probe connection to %s was accepted", addr)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("probe %s: want connection refused, got %w", addr, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// probeAddr is where to send a probe for a listener: its own address, or
// loopback for a wildcard listener.
func probeAddr(l netip.AddrPort) netip.AddrPort {
	switch a := l.Addr(); {
	case a == netip.IPv4Unspecified():
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), l.Port())
	case a == netip.IPv6Unspecified():
		return netip.AddrPortFrom(netip.IPv6Loopback(), l.Port())
	}
	return l
}

// Resume opens every gate sockdrain armed for t, whichever process armed
// it. It is idempotent, and works when the listener is gone too. It returns
// the backends it found armed. If ctx ends first, it opens no more gates
// and returns ctx's error with those it opened.
func Resume(ctx context.Context, t Target) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	s, err := openSession(t, grabFrom(0, nil), true)
	if err != nil {
		return nil, err
	}
	defer s.close()
	candidates, err := resumeCandidates(s, t)
	if err != nil {
		return nil, err
	}
	var opened []string
	var errs []error
	for _, gl := range candidates {
		for _, b := range backend.All {
			if ctx.Err() != nil {
				return opened, errors.Join(append(errs, context.Cause(ctx))...)
			}
			armed, err := disarm(b, gl)
			if armed {
				opened = append(opened, fmt.Sprintf("%s on %s", b.Name, gl.Addr))
			}
			errs = append(errs, err)
		}
	}
	return opened, errors.Join(errs...)
}

// disarm opens b's gate on gl and disarms it, reporting whether it was
// armed. A gate that cannot be opened on gl holds nothing to disarm.
func disarm(b backend.Backend, gl gate.Listener) (bool, error) {
	if b.NeedsSockets && len(gl.Sockets) == 0 {
		if b.Forget != nil {
			return false, b.Forget(gl)
		}
		return false, nil
	}
	g, err := b.Open(gl)
	if err != nil {
		return false, nil
	}
	defer g.Close()
	armed, _ := g.Armed()
	if err := g.Disarm(); err != nil {
		return armed, fmt.Errorf("disarm %s gate on %s: %w", b.Name, gl.Addr, err)
	}
	return armed, nil
}

// resumeCandidates are the listeners a gate may have been armed for: those
// serving t now; and, for gates whose listener has gone, t's own address,
// the wildcards of its port, and every listener of t's namespace and port
// that has pinned gate state.
func resumeCandidates(s *session, t Target) ([]gate.Listener, error) {
	ino, err := s.ns.Inode()
	if err != nil {
		return nil, err
	}
	cands := slices.Clone(s.gls)
	addrs := []netip.AddrPort{netip.AddrPortFrom(netip.IPv4Unspecified(), t.Port), netip.AddrPortFrom(netip.IPv6Unspecified(), t.Port)}
	if t.Addr.IsValid() {
		addrs = append(addrs, netip.AddrPortFrom(t.Addr, t.Port))
	}
	for _, b := range backend.All {
		if b.Pinned == nil {
			continue
		}
		pinned, err := b.Pinned()
		if err != nil {
			return nil, err
		}
		for _, p := range pinned {
			if p.NetNSInode == ino && p.Addr.Port() == t.Port && (!t.Addr.IsValid() || p.Addr.Addr() == t.Addr || p.Addr.Addr().IsUnspecified()) {
				addrs = append(addrs, p.Addr)
			}
		}
	}
	for _, ap := range addrs {
		if !slices.ContainsFunc(cands, func(gl gate.Listener) bool { return gl.Addr == ap }) {
			cands = append(cands, gate.Listener{NetNS: s.ns.File(), NetNSInode: ino, Addr: ap})
		}
	}
	return cands, nil
}

// grabFrom takes a listener's sockets from processes that hold them, the
// first found of each (see grabSockets); pid, if set, must hold them. It
// adds those processes to owners, if not nil.
func grabFrom(pid int, owners *[]int) func(Listener) ([]*os.File, error) {
	return func(l Listener) ([]*os.File, error) {
		socks, pids, err := grabSockets(l, pid)
		if owners != nil {
			*owners = append(*owners, pids...)
		}
		return socks, err
	}
}

// ArmedGates fills in each listener's Gates: the gates of ours armed on it
// now, whichever process armed them. It takes the sockets it needs from
// the listeners' PIDs, when Status filled them in.
func ArmedGates(t Target, ls []Listener) error {
	s, err := openSession(t, func(l Listener) ([]*os.File, error) {
		for _, known := range ls {
			if known.Listen == l.Listen && len(known.PIDs) > 0 {
				return grabIn(l, known.PIDs), nil
			}
		}
		return grabFrom(0, nil)(l)
	}, true)
	if err != nil {
		return err
	}
	defer s.close()
	for i := range ls {
		ls[i].Gates = []string{}
		for _, gl := range s.gls {
			if gl.Addr == ls[i].Listen {
				ls[i].Gates = armedOn(gl)
			}
		}
	}
	return nil
}

func armedOn(gl gate.Listener) []string {
	armed := []string{}
	for _, b := range backend.All {
		if b.NeedsSockets && len(gl.Sockets) == 0 {
			continue
		}
		g, err := b.Open(gl)
		if err != nil {
			continue
		}
		if ok, _ := g.Armed(); ok {
			armed = append(armed, b.Name)
		}
		g.Close()
	}
	return armed
}
