package sockdrain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/sockdrain/sockdrain/internal/backend"
)

// newEngine sets up a drain of t: it opens the session, takes the port's
// lock, joins a gate already armed or chooses and opens one per listener,
// and leaves to e.settle what can wait until the gate refuses (the server
// watch, with every owner where the drain acts on them, and the warnings).
// done releases what it holds.
func newEngine(t Target, opts Options) (_ *engine, _ func(), err error) {
	var first []int // the processes found holding the listeners before the arm
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
	var looked gates // opened to see whether one is armed; closed with the release
	cleanup = append(cleanup, func() { looked.close() })
	want, joined, err := joinArmed(s.gls, opts.Backend, &looked)
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
		release:  func() { gs.close(); looked.close(); s.releaseSockets() },
		rollback: func() error { _, err := Resume(context.Background(), t); return err },
	}
	// What can wait until the gate refuses: the server watch and the
	// warnings. --close-idle needs the owners to check that it may take
	// their sockets, which must fail before anything changes.
	owners := first
	e.settle = func() (err error) {
		if e.servers != nil {
			return nil
		}
		// Every owner is looked for only where the drain acts on them:
		// the stop signal goes to the main processes among them, and
		// --close-idle takes their connections. That walks every open
		// file of the host. Otherwise the processes found holding the
		// listeners before the arm stand for the server: they all exit
		// when it does, and one that died since counts as exited.
		if opts.StopSignal != 0 || opts.CloseIdle {
			all, err := ownerPIDs(s, opts.PID)
			if err != nil {
				return err
			}
			owners = slices.Compact(slices.Sorted(slices.Values(append(all, first...))))
		}
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

// probeTimeout bounds a probe connection. A refused probe returns at once;
// the bound matters only when the SYN or its RST is lost, as on a host
// under heavy load: it lets the kernel send the SYN three times (at 0, 1
// and 3 s) before the probe counts as unanswered.
const probeTimeout = 3500 * time.Millisecond

// verifyRefused checks the gate: a probe connection to each listener must
// be refused. A probe that gets through is closed at once; the server sees
// a client that connected and left.
func verifyRefused(ns namespace, ls []Listener) error {
	for _, l := range ls {
		addr := probeAddr(l.Listen)
		err := ns.Do(func() error {
			d := net.Dialer{Timeout: probeTimeout}
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
