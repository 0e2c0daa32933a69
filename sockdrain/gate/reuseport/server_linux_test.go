package reuseport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/bpffs"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
	"github.com/sockdrain/sockdrain/sockdrain/netns"
)

// dialTimeout bounds every connect, so a gate that drops SYNs instead of
// refusing them fails the test rather than passing it.
const dialTimeout = 2 * time.Second

// listenOpts shapes a test listener.
type listenOpts struct {
	network   string // tcp4 or tcp6
	addr      string // host:port to bind; port 0 picks one
	sockets   int    // sockets in the group (1 without reuseport)
	reuseport bool
	mptcp     bool
}

// server is a test listener: one socket or one reuseport group.
type server struct {
	lns  []*net.TCPListener
	addr netip.AddrPort
	gl   gate.Listener
}

func listen(t testing.TB, ns *netns.NS, o listenOpts) *server {
	t.Helper()
	s := &server{}
	addr := o.addr
	for range max(o.sockets, 1) {
		ln := listenOne(t, ns, o, addr)
		s.lns = append(s.lns, ln)
		s.addr = ln.Addr().(*net.TCPAddr).AddrPort()
		addr = s.addr.String()
	}
	s.gl = listenerOf(t, ns, s)
	t.Cleanup(func() { bpffs.Remove(pinKey(s.gl)) }) // pins a failed test left
	return s
}

func listenOne(t testing.TB, ns *netns.NS, o listenOpts, addr string) *net.TCPListener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) {
			if o.reuseport {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		return err
	}}
	lc.SetMultipathTCP(o.mptcp)
	var ln net.Listener
	err := ns.Do(func() (err error) {
		ln, err = lc.Listen(t.Context(), o.network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// listenerOf describes s as a gate.Listener with duplicates of its sockets.
func listenerOf(t testing.TB, ns *netns.NS, s *server) gate.Listener {
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
	gl := gate.Listener{NetNS: nsf, NetNSInode: st.Sys().(*syscall.Stat_t).Ino, Addr: s.addr}
	for _, ln := range s.lns {
		f, err := ln.File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		gl.Sockets = append(gl.Sockets, f)
	}
	return gl
}

// dial connects to addr from inside ns.
func dial(t testing.TB, ns *netns.NS, addr netip.AddrPort) (net.Conn, error) {
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

func mustDial(t testing.TB, ns *netns.NS, addr netip.AddrPort) net.Conn {
	t.Helper()
	c, err := dial(t, ns, addr)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	return c
}

func requireRefused(t *testing.T, ns *netns.NS, addr netip.AddrPort) {
	t.Helper()
	c, err := dial(t, ns, addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to %s while armed = %v, %v; want ECONNREFUSED", addr, c, err)
	}
}

// accept takes the next connection from any socket of s, within 5s.
func (s *server) accept(t testing.TB) net.Conn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, ln := range s.lns {
			ln.SetDeadline(time.Now().Add(20 * time.Millisecond))
			c, err := ln.Accept()
			if err == nil {
				t.Cleanup(func() { c.Close() })
				return c
			}
		}
	}
	t.Fatalf("accept on %s: nothing queued", s.addr)
	return nil
}

// exchange sends ping from client to server and pong back.
func exchange(t *testing.T, client, srv net.Conn) {
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

// kernelState is what a gate leaves in the kernel: ids of programs, maps
// and links named like ours, and whether the listener's pin dir exists.
type kernelState struct {
	progs, maps, links []uint32
	pinned             bool
}

// ourNames are this package's program and map names, whole (from BTF)
// and cut to the kernel's 15 characters. Other packages' tests may load
// programs at the same time; their names differ.
var ourNames = []string{"sd_refuse_syn", "sd_reuseport_progs", "sd_reuseport_pr", "sd_armed"}

func snapshot(t *testing.T, l gate.Listener) kernelState {
	t.Helper()
	var ks kernelState
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
			if info, err := p.Info(); err == nil && slices.Contains(ourNames, info.Name) {
				ks.progs, ours[uint32(id)] = append(ks.progs, uint32(id)), true
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
			if info, err := m.Info(); err == nil && slices.Contains(ourNames, info.Name) {
				ks.maps = append(ks.maps, uint32(id))
			}
			m.Close()
		}
	}
	it := new(link.Iterator)
	for it.Next() {
		if info, err := it.Link.Info(); err == nil && ours[uint32(info.Program)] {
			ks.links = append(ks.links, uint32(it.ID))
		}
	}
	it.Close()
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	pinned, err := bpffs.Exists(pinKey(l))
	if err != nil {
		t.Fatal(err)
	}
	ks.pinned = pinned
	return ks
}

// requireState waits up to 2s for the kernel state to become want: the
// kernel frees a detached program's maps after an RCU grace period.
func requireState(t *testing.T, l gate.Listener, want kernelState) {
	t.Helper()
	var got kernelState
	for range 100 {
		got = snapshot(t, l)
		if got.equal(want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("kernel state = %+v, want %+v", got, want)
}

func (ks kernelState) equal(o kernelState) bool {
	return slices.Equal(ks.progs, o.progs) && slices.Equal(ks.maps, o.maps) &&
		slices.Equal(ks.links, o.links) && ks.pinned == o.pinned
}

// requireClean waits for the kernel to hold nothing of this package's
// gates: tests in a package run one at a time, so anything left is a leak.
func requireClean(t *testing.T, l gate.Listener) {
	t.Helper()
	requireState(t, l, kernelState{})
}
