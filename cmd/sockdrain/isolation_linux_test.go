package main

import (
	"net"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/gate/sklookup"
)

// TestDrainRefusesOnlyItsListener runs a drain of 127.0.0.1:P in each gate,
// held in phase gated by a queued client, and checks that every other
// listener keeps serving: another port, other addresses on P (IPv4 and
// IPv6), and 127.0.0.1:P in another namespace.
func TestDrainRefusesOnlyItsListener(t *testing.T) {
	for _, backend := range gateNames {
		t.Run(backend, func(t *testing.T) { testIsolation(t, backend) })
	}
}

func testIsolation(t *testing.T, backend string) {
	ns, other := nstest.New(t), nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", reusePort)
	addr, port := ln.Addr().String(), itoa(ln.Addr())
	before := snapshot(t, ns)
	nstest.Dial(t, ns, addr) // queued: the drain waits on it
	neighbours := map[string]*net.TCPListener{
		"another port":                 nstest.Listen(t, ns, "127.0.0.1:0", reusePort),
		"another IPv4 address, port P": nstest.Listen(t, ns, "127.0.0.2:"+port, reusePort),
		"IPv6 loopback, port P":        nstest.Listen(t, ns, "[::1]:"+port, reusePort),
	}
	for _, l := range neighbours {
		serveEcho(l)
	}
	elsewhere := nstest.Listen(t, other, addr, reusePort)
	serveEcho(elsewhere)

	p := startCLI(t, "drain", "--listen", addr, "--netns", ns.Path(), "--backend", backend, "--json", "--timeout", "20s")
	p.waitPhase(t, "gated")
	requireRefused(t, ns, addr)
	for name, l := range neighbours {
		t.Run(name, func(t *testing.T) { requireServed(t, ns, l.Addr().String()) })
	}
	t.Run("same address in another netns", func(t *testing.T) { requireServed(t, other, addr) })
	if st := p.kill(t); !killedBySIGKILL(st) {
		t.Fatalf("the drain ended %v before the checks were done; stderr %q", st, p.stderr.String())
	}
	resume(t, ns, addr, backend)
	requireSnapshot(t, ns, before)
}

// TestServerRestartedAfterDrain drains a listener, closes it as a server
// that stops would, and opens a new one on the same address: the restarted
// server's fate under the gate left armed, then after resume.
//
// reuseport and sklookup die with the drained socket, and the nftables
// rule is tied to the drained socket's mark, so the new listener accepts
// at once. An untied nftables rule (no socket, or a socket with a mark of
// its own) would refuse it until resume; the drain warns when it is so.
func TestServerRestartedAfterDrain(t *testing.T) {
	for backend, refusedUntilResume := range map[string]bool{"reuseport": false, "sklookup": false, "nftables": false} {
		t.Run(backend, func(t *testing.T) { testRestart(t, backend, refusedUntilResume) })
	}
}

func testRestart(t *testing.T, backend string, refusedUntilResume bool) {
	ns := nstest.New(t)
	old := nstest.Listen(t, ns, "127.0.0.1:0", reusePort)
	addr := old.Addr().String()
	before := snapshot(t, ns)
	code, _, stderr := runCLI(t, "drain", "--listen", addr, "--netns", ns.Path(), "--backend", backend, "--timeout", "5s")
	if code != exitOK {
		t.Fatalf("drain: exit %d: %s", code, stderr)
	}
	requireRefused(t, ns, addr)
	old.Close()

	restarted := nstest.Listen(t, ns, addr, reusePort)
	serveEcho(restarted)
	if backend == "sklookup" {
		time.Sleep(sklookup.CloseGrace) // it refuses that long after the listener closed
	}
	if refusedUntilResume {
		requireRefused(t, ns, addr)
	} else {
		requireServed(t, ns, addr)
	}
	if got := statusGates(t, ns, addr); (len(got) > 0) != refusedUntilResume {
		t.Errorf("status of the restarted server shows gates %q; want them shown exactly when it is refused (%v)", got, refusedUntilResume)
	}
	code, _, stderr = runCLI(t, "resume", "--listen", addr, "--netns", ns.Path())
	if code != exitOK {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	requireServed(t, ns, addr)
	requireSnapshot(t, ns, before)
}
