// Package gatetest is test support for the gate packages, as nstest is for
// network namespaces: listeners and clients in a test netns, the checks of
// the gate promise, and a look at the kernel state a gate leaves behind.
package gatetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// dialTimeout bounds every connect, so a gate that drops SYNs instead of
// refusing them fails the test rather than passing it.
const dialTimeout = 2 * time.Second

// ListenOpts shapes a test listener.
type ListenOpts struct {
	Network   string // tcp4 or tcp6
	Addr      string // host:port to bind; port 0 picks one
	Sockets   int    // sockets in the group (1 without reuseport)
	ReusePort bool
	MPTCP     bool
}

// Server is a test listener: one socket or one reuseport group.
type Server struct {
	// Sockets are the group's listening sockets, closed when the test ends.
	Sockets []*net.TCPListener
	// Addr is the address all of Sockets are bound to.
	Addr netip.AddrPort
	// Listener describes the server to a gate, with duplicates of Sockets.
	Listener gate.Listener
	// Before is the kernel state of the package's objects when the server
	// was made: what other tests, tools or killed runs left on the host.
	Before KernelState
}

// Objects names what one gate package puts in the kernel, so a test can
// find it and tell it from other packages' objects.
type Objects struct {
	// Names are the package's program and map names, whole (from BTF)
	// and cut to the kernel's 15 characters. Other packages' tests may
	// load programs at the same time; their names differ.
	Names []string
	// PinKey names a listener's pin directory in bpffs.
	PinKey func(gate.Listener) string
}

// Listen opens a test listener in ns, closed when t ends, and removes at
// cleanup the pins a failed test left for it.
func (o Objects) Listen(t testing.TB, ns *netns.NS, opts ListenOpts) *Server {
	t.Helper()
	s := &Server{}
	addr := opts.Addr
	for range max(opts.Sockets, 1) {
		ln := listenOne(t, ns, opts, addr)
		s.Sockets = append(s.Sockets, ln)
		s.Addr = ln.Addr().(*net.TCPAddr).AddrPort()
		addr = s.Addr.String()
	}
	s.Listener = ListenerOf(t, ns, s)
	t.Cleanup(func() { bpffs.Remove(o.PinKey(s.Listener)) }) // pins a failed test left
	s.Before = o.Snapshot(t, s.Listener)
	return s
}

func listenOne(t testing.TB, ns *netns.NS, o ListenOpts, addr string) *net.TCPListener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) {
			if o.ReusePort {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		return err
	}}
	lc.SetMultipathTCP(o.MPTCP)
	var ln net.Listener
	err := ns.Do(func() (err error) {
		ln, err = lc.Listen(t.Context(), o.Network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// ListenerOf describes s as a gate.Listener with duplicates of its sockets.
func ListenerOf(t testing.TB, ns *netns.NS, s *Server) gate.Listener {
	t.Helper()
	nsf, err := os.Open(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsf.Close() })
	st, err := nsf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	gl := gate.Listener{NetNS: nsf, NetNSInode: st.Sys().(*syscall.Stat_t).Ino, Addr: s.Addr}
	for _, ln := range s.Sockets {
		f, err := ln.File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		gl.Sockets = append(gl.Sockets, f)
	}
	return gl
}

// Dial connects to addr from inside ns, within 2s. The connection is
// closed when t ends.
func Dial(t testing.TB, ns *netns.NS, addr netip.AddrPort) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), dialTimeout)
	defer cancel()
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr.String())
		return err
	})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// MustDial is Dial, failing t on an error.
func MustDial(t testing.TB, ns *netns.NS, addr netip.AddrPort) net.Conn {
	t.Helper()
	c, err := Dial(t, ns, addr)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	return c
}

// RequireRefused fails t unless a connect to addr from inside ns gets
// ECONNREFUSED.
func RequireRefused(t *testing.T, ns *netns.NS, addr netip.AddrPort) {
	t.Helper()
	c, err := Dial(t, ns, addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to %s while armed = %v, %v; want ECONNREFUSED", addr, c, err)
	}
}

// Accept takes the next connection from any socket of s, within 5s.
func (s *Server) Accept(t testing.TB) net.Conn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, ln := range s.Sockets {
			ln.SetDeadline(time.Now().Add(20 * time.Millisecond))
			c, err := ln.Accept()
			if err == nil {
				t.Cleanup(func() { c.Close() })
				return c
			}
		}
	}
	t.Fatalf("accept on %s: nothing queued", s.Addr)
	return nil
}

// ExchangeWaiting accepts one connection per client in waiting, which
// queued before the gate armed, and checks that each pair exchanges data.
func (s *Server) ExchangeWaiting(t *testing.T, waiting []net.Conn) {
	t.Helper()
	accepted := map[string]net.Conn{}
	for range waiting {
		c := s.Accept(t)
		accepted[c.RemoteAddr().String()] = c
	}
	for _, c := range waiting {
		Exchange(t, c, accepted[c.LocalAddr().String()])
	}
}

// Exchange sends ping from client to server and pong back.
func Exchange(t *testing.T, client, srv net.Conn) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	client.SetDeadline(deadline)
	srv.SetDeadline(deadline)
	for _, p := range []struct {
		from, to net.Conn
		msg      string
	}{{client, srv, "ping"}, {srv, client, "pong"}} {
		if _, err := p.from.Write([]byte(p.msg)); err != nil {
			t.Fatalf("write %s: %v", p.msg, err)
		}
		buf := make([]byte, len(p.msg))
		if _, err := io.ReadFull(p.to, buf); err != nil || string(buf) != p.msg {
			t.Fatalf("read %s: got %q, %v", p.msg, buf, err)
		}
	}
}

// ArmTwice arms g twice, as Arm is idempotent, and fails t unless g then
// says it is armed.
func ArmTwice(t *testing.T, g gate.Gate) {
	t.Helper()
	for range 2 {
		if err := g.Arm(); err != nil {
			t.Fatalf("arm: %v", err)
		}
	}
	if armed, err := g.Armed(); err != nil || !armed {
		t.Fatalf("Armed() after Arm = %v, %v", armed, err)
	}
}

// DisarmTwice disarms g twice, as Disarm is idempotent, and fails t unless
// g then says it is not armed.
func DisarmTwice(t *testing.T, g gate.Gate) {
	t.Helper()
	for range 2 {
		if err := g.Disarm(); err != nil {
			t.Fatalf("disarm: %v", err)
		}
	}
	if armed, err := g.Armed(); err != nil || armed {
		t.Fatalf("Armed() after Disarm = %v, %v", armed, err)
	}
}

// CheckDrain checks the gate promise on srv: it arms g with clients
// queued on dst and one connection established there, and wants every
// connect to refused refused, while a new listener on dst's address
// serves, the queued clients served and the established connection
// working. Disarmed, dst serves a new client again.
func (o Objects) CheckDrain(t *testing.T, ns *netns.NS, srv *Server, g gate.Gate, dst netip.AddrPort, refused []netip.AddrPort) {
	t.Helper()
	est := MustDial(t, ns, dst)
	estSrv := srv.Accept(t)
	var waiting []net.Conn
	for range 4 {
		waiting = append(waiting, MustDial(t, ns, dst))
	}
	other := o.Listen(t, ns, ListenOpts{Network: "tcp", Addr: netip.AddrPortFrom(dst.Addr(), 0).String()})

	ArmTwice(t, g)
	for _, a := range refused {
		RequireRefused(t, ns, a)
	}
	MustDial(t, ns, other.Addr)
	other.Accept(t)
	srv.ExchangeWaiting(t, waiting)
	Exchange(t, est, estSrv)

	DisarmTwice(t, g)
	MustDial(t, ns, dst)
	srv.Accept(t)
}

// KernelState is what a gate leaves in the kernel: ids of programs, maps
// and links named like ours, and whether the listener's pin dir exists.
type KernelState struct {
	Progs, Maps, Links []uint32
	Pinned             bool
}

// Snapshot reads the kernel state of o's objects and of l's pins.
func (o Objects) Snapshot(t testing.TB, l gate.Listener) KernelState {
	t.Helper()
	var ks KernelState
	ours := map[uint32]bool{}
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		id = next
		if p, err := ebpf.NewProgramFromID(id); err == nil {
			if info, err := p.Info(); err == nil && slices.Contains(o.Names, info.Name) {
				ks.Progs, ours[uint32(id)] = append(ks.Progs, uint32(id)), true
			}
			p.Close()
		}
	}
	for id := ebpf.MapID(0); ; {
		next, err := ebpf.MapGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		id = next
		if m, err := ebpf.NewMapFromID(id); err == nil {
			if info, err := m.Info(); err == nil && slices.Contains(o.Names, info.Name) {
				ks.Maps = append(ks.Maps, uint32(id))
			}
			m.Close()
		}
	}
	it := new(link.Iterator)
	for it.Next() {
		if info, err := it.Link.Info(); err == nil && ours[uint32(info.Program)] {
			ks.Links = append(ks.Links, uint32(it.ID))
		}
	}
	it.Close()
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	pinned, err := bpffs.Exists(o.PinKey(l))
	if err != nil {
		t.Fatal(err)
	}
	ks.Pinned = pinned
	return ks
}

// Since is what ks holds that before did not: the objects made since.
func (ks KernelState) Since(before KernelState) KernelState {
	added := func(now, then []uint32) []uint32 {
		return slices.DeleteFunc(slices.Clone(now), func(id uint32) bool { return slices.Contains(then, id) })
	}
	return KernelState{Progs: added(ks.Progs, before.Progs), Maps: added(ks.Maps, before.Maps),
		Links: added(ks.Links, before.Links), Pinned: ks.Pinned}
}

// RequireState waits up to 2s for the objects made since srv was, and
// srv's pins, to be want: the kernel frees a detached program's maps after
// an RCU grace period. Objects that were there before srv do not count,
// so the check holds on a host that runs other BPF programs, or keeps
// gates pinned by earlier runs.
func (o Objects) RequireState(t *testing.T, srv *Server, want KernelState) {
	t.Helper()
	var got KernelState
	for range 100 {
		got = o.Snapshot(t, srv.Listener).Since(srv.Before)
		if got.equal(want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("kernel state since the test began = %s, want %s", o.describe(got), o.describe(want))
}

// describe names ks's objects by id and, where the kernel still has them,
// by name.
func (o Objects) describe(ks KernelState) string {
	var parts []string
	for _, id := range ks.Progs {
		name := ""
		if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id)); err == nil {
			if info, err := p.Info(); err == nil {
				name = " " + info.Name
			}
			p.Close()
		}
		parts = append(parts, fmt.Sprintf("prog %d%s", id, name))
	}
	for _, id := range ks.Maps {
		name := ""
		if m, err := ebpf.NewMapFromID(ebpf.MapID(id)); err == nil {
			if info, err := m.Info(); err == nil {
				name = " " + info.Name
			}
			m.Close()
		}
		parts = append(parts, fmt.Sprintf("map %d%s", id, name))
	}
	for _, id := range ks.Links {
		parts = append(parts, fmt.Sprintf("link %d", id))
	}
	if ks.Pinned {
		parts = append(parts, "the listener's pin directory")
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (ks KernelState) equal(o KernelState) bool {
	return slices.Equal(ks.Progs, o.Progs) && slices.Equal(ks.Maps, o.Maps) &&
		slices.Equal(ks.Links, o.Links) && ks.Pinned == o.Pinned
}

// RequireClean waits for the kernel to hold nothing of o's gates that was
// not there when srv was made: anything left is the test's leak.
func (o Objects) RequireClean(t *testing.T, srv *Server) {
	t.Helper()
	o.RequireState(t, srv, KernelState{})
}

// BenchConnectAccept measures connect+accept+close on loopback to a
// listener made with opts: with no gate ("none"), and with the program
// that attach leaves in place but passing everything ("disarmed"). With
// sysctl kernel.bpf_stats_enabled=1 it also reports that program's
// kernel-measured cost per run.
func (o Objects) BenchConnectAccept(b *testing.B, opts ListenOpts, attach func(*testing.B, *Server) *ebpf.Program) {
	for _, attached := range []bool{false, true} {
		name := map[bool]string{false: "none", true: "disarmed"}[attached]
		b.Run(name, func(b *testing.B) {
			ns := nstest.New(b)
			srv := o.Listen(b, ns, opts)
			var prog *ebpf.Program
			if attached {
				prog = attach(b, srv)
			}
			b.ResetTimer()
			for b.Loop() {
				MustDial(b, ns, srv.Addr).Close()
				srv.Accept(b).Close()
			}
			if prog != nil {
				reportRunCost(b, prog)
			}
		})
	}
}

func reportRunCost(b *testing.B, prog *ebpf.Program) {
	st, err := prog.Stats()
	if err != nil {
		b.Fatal(err)
	}
	if st.RunCount > 0 {
		b.ReportMetric(float64(st.Runtime.Nanoseconds())/float64(st.RunCount), "bpf-ns/run")
	}
}

// CheckPersistence checks the gate contract's persistence on a listener
// made with opts: a gate armed and closed keeps refusing, a second Open
// finds its pinned state and arming again adds nothing, and Disarm leaves
// no object behind.
func (o Objects) CheckPersistence(t *testing.T, opts ListenOpts, open func(gate.Listener) (gate.Gate, error)) {
	ns := nstest.New(t)
	srv := o.Listen(t, ns, opts)
	g, err := open(srv.Listener)
	if err != nil {
		t.Fatal(err)
	}
	ArmTwice(t, g)
	armedState := o.Snapshot(t, srv.Listener).Since(srv.Before)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	RequireRefused(t, ns, srv.Addr)

	g2, err := open(srv.Listener)
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	ArmTwice(t, g2) // finds the pinned state: attaches nothing new
	o.RequireState(t, srv, armedState)
	DisarmTwice(t, g2)
	o.RequireClean(t, srv)
	MustDial(t, ns, srv.Addr)
}

// ArmedThenCleared opens a gate on srv with open, arms it, then lets
// connections through again with clear, which leaves its program in the
// path: what a benchmark of the program's cost wants. It is disarmed when
// tb ends.
func ArmedThenCleared[G gate.Gate](tb testing.TB, srv *Server, open func(gate.Listener) (G, error), clear func(G) error) G {
	tb.Helper()
	g, err := open(srv.Listener)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Disarm() })
	if err := g.Arm(); err != nil {
		tb.Fatal(err)
	}
	if err := clear(g); err != nil {
		tb.Fatal(err)
	}
	return g
}
