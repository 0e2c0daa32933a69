//go:build freebsd && freebsdkernel

package sockdrain_test

import (
	"testing"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/rig/demoserver"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/sockdrain/gate/ipfw"
)

// TestKernelDrainUnderStatefulPf drains a server under closed-loop load
// from loopback clients, with each FreeBSD gate, while pf is enabled with
// a stateful ruleset. On FreeBSD 15.1, before the pf gate's stateless
// loopback rule and the ipfw gate's pf companion, clients here got
// "permission denied" (pf gate) or timed out (ipfw gate). Every client
// must get a complete response or ECONNREFUSED, and status polled right
// after each drain must see the listener every time.
func TestKernelDrainUnderStatefulPf(t *testing.T) {
	requireStatefulPf(t)
	for _, backend := range []string{"pf", "ipfw", "auto"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "ipfw" {
				if err := ipfw.Probe(); err != nil {
					t.Skipf("needs ipfw loaded and enabled (kldload ipfw, default rule to accept): %v", err)
				}
			}
			for round := range 3 {
				drainUnderLoad(t, backend, round)
			}
		})
	}
}

// drainUnderLoad runs 32 closed-loop loopback clients at a demo server,
// drains it, polls status 40 times, stops the server, and checks what the
// clients saw. Every loop is bounded in count and time.
func drainUnderLoad(t *testing.T, backend string, round int) {
	t.Helper()
	srv, err := demoserver.Start(demoserver.Config{Addr: "127.0.0.1:0", Delay: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	addr := srv.Addr()
	mismatch := pfStateMismatch(t)
	load, err := loadgen.Start(t.Context(), loadgen.Config{
		Addr: addr.String(), Workers: 32, Duration: 20 * time.Second, MaxAttempts: 200_000,
		AttemptTimeout: 3 * time.Second, CheckBody: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer load.Stop()
	time.Sleep(time.Second)
	target := sockdrain.Target{Addr: addr.Addr(), Port: addr.Port()}
	rep, err := sockdrain.Drain(t.Context(), target, sockdrain.Options{
		Backend: backend, Timeout: 20 * time.Second,
		OnReport: func(r sockdrain.Report) {
			if r.Event == sockdrain.EventWarning {
				t.Logf("round %d: warning: %s", round, r.Message)
			}
		},
	})
	if err != nil {
		t.Fatalf("round %d: drain with %s: %v", round, backend, err)
	}
	for i := range 40 {
		if ls, err := sockdrain.Status(target); err != nil || len(ls) != 1 {
			t.Errorf("round %d: status %d right after the drain = %d listeners, %v; want the live one", round, i, len(ls), err)
		}
	}
	srv.Stop()
	time.Sleep(300 * time.Millisecond) // clients keep knocking on the closed port
	load.Stop()
	res, err := load.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sockdrain.Resume(t.Context(), target); err != nil {
		t.Errorf("round %d: resume: %v", round, err)
	}
	t.Logf("round %d: %s gate, drained in %v: %d complete, %d refused, %d bad; pf state-mismatch %s -> %s",
		round, rep.Backend, time.Duration(rep.Elapsed), res.Counts.Complete, res.Counts.Refused, res.Counts.Bad(),
		mismatch, pfStateMismatch(t))
	if res.Counts.Bad() != 0 {
		t.Errorf("round %d: %d clients got neither a response nor ECONNREFUSED: %+v\nfirst ones: %v",
			round, res.Counts.Bad(), res.Counts, res.Samples)
	}
	if res.Counts.Refused == 0 || res.Counts.Complete == 0 {
		t.Errorf("round %d: %d complete, %d refused: the load never reached the server, or the gate never refused",
			round, res.Counts.Complete, res.Counts.Refused)
	}
}
