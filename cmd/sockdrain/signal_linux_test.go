package main

import (
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// TestSignalRollsBackUnlessKeepGate sends SIGINT or SIGTERM to a drain
// waiting on a queued client: it exits 128+signo and the port accepts
// again, with nothing of ours left; with --keep-gate the gate stays armed
// until resume.
func TestSignalRollsBackUnlessKeepGate(t *testing.T) {
	for _, backend := range gateNames {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			for _, keep := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/keep=%v", backend, sig, keep)
				t.Run(name, func(t *testing.T) { testSignal(t, backend, sig, keep) })
			}
		}
	}
}

func testSignal(t *testing.T, backend string, sig syscall.Signal, keep bool) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", reusePort)
	addr := ln.Addr().String()
	before := snapshot(t, ns)
	nstest.Dial(t, ns, addr) // queued, nobody accepting: the drain waits on it
	args := []string{"drain", "--listen", addr, "--netns", ns.Path(), "--backend", backend, "--json", "--timeout", "20s"}
	if keep {
		args = append(args, "--keep-gate")
	}
	p := startCLI(t, args...)
	p.waitPhase(t, "gated")
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if code := p.wait().ExitCode(); code != 128+int(sig) {
		t.Fatalf("exit %d after %s, want %d; stderr %q", code, sig, 128+int(sig), p.stderr.String())
	}
	if keep {
		requireRefused(t, ns, addr)
		if got := statusGates(t, ns, addr); !slices.Equal(got, []string{backend}) {
			t.Errorf("--keep-gate: status shows gates %q, want [%s]", got, backend)
		}
		resume(t, ns, addr, backend)
	}
	serveEcho(ln)
	requireServed(t, ns, addr)
	requireSnapshot(t, ns, before)
}
