package main

import (
	"net"
	"slices"
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// gateNames are the Linux gates, each tested on its own.
var gateNames = []string{"reuseport", "sklookup", "nftables"}

// TestKillNineLeavesGateClosedUntilResume kills the drain with SIGKILL in
// each phase it can wait in, for each gate. Every gate's state lives in
// the kernel, pinned in bpffs or as an nftables table, and the drain lets
// go of its handles once the gate is armed, so a dead sockdrain leaves the
// gate closed: new connects are refused, queued and accepted connections
// are still served, status shows the gate, and resume opens it and
// removes everything of ours.
//
// After "drained" the CLI only closes fds and exits, so a kill there races
// a normal exit; the outcome is the same either way.
func TestKillNineLeavesGateClosedUntilResume(t *testing.T) {
	for _, backend := range gateNames {
		for _, phase := range []string{"gated", "backlog_empty", "drained"} {
			t.Run(backend+"/"+phase, func(t *testing.T) { testKillNine(t, backend, phase) })
		}
	}
}

func testKillNine(t *testing.T, backend, phase string) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", reusePort)
	addr := ln.Addr().String()
	before := snapshot(t, ns)
	var held []*net.TCPConn
	switch phase {
	case "gated": // one client queued, nobody accepting: the drain waits on it
		held = append(held, nstest.Dial(t, ns, addr))
	case "backlog_empty": // one client accepted and open: the drain waits on it
		serveEcho(ln)
		held = append(held, nstest.Dial(t, ns, addr))
		if err := exchange(held[0]); err != nil {
			t.Fatal(err)
		}
	case "drained":
		serveEcho(ln)
	}
	p := startCLI(t, "drain", "--listen", addr, "--netns", ns.Path(), "--backend", backend, "--json", "--timeout", "20s")
	p.waitPhase(t, phase)
	if st := p.kill(t); !killedBySIGKILL(st) && !(phase == "drained" && st.Success()) {
		t.Fatalf("the drain ended %v, stderr %q; want killed by SIGKILL", st, p.stderr.String())
	} else {
		t.Logf("the drain in phase %s: %v", phase, st)
	}

	requireRefused(t, ns, addr)
	if got := statusGates(t, ns, addr); !slices.Equal(got, []string{backend}) {
		t.Errorf("after kill -9, status shows gates %q, want [%s]", got, backend)
	}
	if phase == "gated" {
		serveEcho(ln) // the server starts accepting: the queued client is served
	}
	for _, c := range held {
		if err := exchange(c); err != nil {
			t.Errorf("after kill -9, a client the drain waited on was not served: %v", err)
		}
	}
	resume(t, ns, addr, backend)
	requireServed(t, ns, addr)
	if got := statusGates(t, ns, addr); len(got) != 0 {
		t.Errorf("after resume, status shows gates %q, want none", got)
	}
	requireSnapshot(t, ns, before)
}
