package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// A busy host: many TCP sockets held by other processes, in a namespace of
// their own. They cost sockdrain through what every namespace shares: the
// kernel's established hash (every inet_diag dump walks it) and /proc (a
// walk of every process's descriptors).

// busyPairsPerListener keeps each listener's connections within the
// namespace's ephemeral ports (1024–65535).
const busyPairsPerListener = 25_000

// busyHost is n sockets, n/2 connected pairs over loopback, held by child
// processes in a netns of its own.
type busyHost struct {
	ns   *netns.NS
	lns  []int
	held []*heldPairs
}

func newBusyHost(n int) (_ *busyHost, err error) {
	b := &busyHost{}
	if n == 0 {
		return b, nil
	}
	if b.ns, err = newNS(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	for left := n / 2; left > 0; left -= busyPairsPerListener {
		var ln int
		var addr netip.AddrPort
		if err := b.ns.Do(func() (err error) { ln, addr, err = rawListen(); return err }); err != nil {
			return nil, err
		}
		b.lns = append(b.lns, ln)
		h, err := holdPairs(b.ns, ln, addr, min(left, busyPairsPerListener))
		if err != nil {
			return nil, fmt.Errorf("hold %d sockets: %w", n, err)
		}
		b.held = append(b.held, h)
	}
	return b, nil
}

// close ends the holders and removes the namespace.
func (b *busyHost) close() error {
	var errs []error
	for _, h := range b.held {
		errs = append(errs, h.close())
	}
	for _, ln := range b.lns {
		unix.Close(ln)
	}
	if b.ns != nil {
		errs = append(errs, b.ns.Remove())
	}
	b.held, b.lns, b.ns = nil, nil, nil
	return errors.Join(errs...)
}

// holdBusy makes a busy host of n sockets and keeps it until SIGINT,
// SIGTERM or limit, for measuring by hand (-hold).
func holdBusy(ctx context.Context, n int, limit time.Duration) error {
	start := time.Now()
	b, err := newBusyHost(n)
	if err != nil {
		return err
	}
	defer b.close()
	path := "none"
	if b.ns != nil {
		path = b.ns.Path()
	}
	progress("holding %d sockets in %s (made in %s); interrupt to end (at most %s)", n, path, time.Since(start).Round(time.Millisecond), limit)
	select {
	case <-ctx.Done():
	case <-time.After(limit):
	}
	return nil
}

// timeStatus is the wall time of one `sockdrain status` of a listener in
// ns, from exec to exit.
func timeStatus(cli string, ns *netns.NS, addr netip.AddrPort) (time.Duration, error) {
	cmd := exec.Command(cli, "status", "--listen", addr.String(), "--netns", ns.Path(), "--json")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("sockdrain status: %w: %s", err, out)
	}
	if !strings.Contains(string(out), `"pids": [`) {
		return d, fmt.Errorf("sockdrain status found no pids: %s", out)
	}
	return d, nil
}

// idleConns is the shape of the waiting drain whose CPU is measured: it
// waits on busyIdleConns keep-alive connections, each idle after one
// request and its answer, for busyIdleWait.
const (
	busyIdleConns = 50
	busyIdleWait  = 2500 * time.Millisecond
)

// waitingDrainCPU runs `sockdrain drain` on a listener in a fresh netns
// with busyIdleConns idle keep-alive connections, closes them after
// busyIdleWait, and returns the CPU the drain used (utime+stime).
func waitingDrainCPU(ctx context.Context, cli string) (time.Duration, error) {
	ns, err := newNS()
	if err != nil {
		return 0, err
	}
	defer ns.Remove()
	var ln int
	var addr netip.AddrPort
	if err := ns.Do(func() (err error) { ln, addr, err = rawListen(); return err }); err != nil {
		return 0, err
	}
	defer unix.Close(ln)
	p, err := connectPairs(ns, ln, addr, busyIdleConns)
	if err != nil {
		return 0, err
	}
	defer p.close()
	if err := p.exchange(); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, cli, "drain", "--listen", addr.String(), "--netns", ns.Path(),
		"--backend", gate.SKLookup, "--timeout", "30s", "--json")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	time.Sleep(busyIdleWait)
	p.close()
	err = cmd.Wait()
	var cpu time.Duration
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if err != nil {
		return cpu, fmt.Errorf("sockdrain drain: %w: %s", err, out.String())
	}
	_, err = sockdrain.Resume(ctx, sockdrain.Target{Addr: addr.Addr(), Port: addr.Port(), NetNS: ns.Path()})
	return cpu, err
}

// exchange makes each pair a keep-alive connection at rest: the client
// sends a request byte, the server reads it and answers with one.
func (p *pairs) exchange() error {
	buf := make([]byte, 1)
	for i := range p.clients {
		if _, err := unix.Write(p.clients[i], []byte{'q'}); err != nil {
			return os.NewSyscallError("write", err)
		}
		if _, err := unix.Read(p.servers[i], buf); err != nil {
			return os.NewSyscallError("read", err)
		}
		if _, err := unix.Write(p.servers[i], []byte{'a'}); err != nil {
			return os.NewSyscallError("write", err)
		}
		if _, err := unix.Read(p.clients[i], buf); err != nil {
			return os.NewSyscallError("read", err)
		}
	}
	return nil
}

// statusListener is a listener in a fresh namespace for `status` to find.
func statusListener() (*netns.NS, int, netip.AddrPort, error) {
	ns, err := newNS()
	if err != nil {
		return nil, -1, netip.AddrPort{}, err
	}
	var ln int
	var addr netip.AddrPort
	if err := ns.Do(func() (err error) { ln, addr, err = rawListen(); return err }); err != nil {
		ns.Remove()
		return nil, -1, netip.AddrPort{}, err
	}
	return ns, ln, addr, nil
}
