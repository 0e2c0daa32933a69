package sockdrain_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// stalledTarget is a listener in a fresh netns that never accepts, with
// queued clients: a drain of it stays in phase gated.
func stalledTarget(t *testing.T, queued int) (*netns.NS, *net.TCPListener, sockdrain.Target) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	for range queued {
		nstest.Dial(t, ns, ln.Addr().String())
	}
	return ns, ln, targetOf(ns, ln)
}

func targetOf(ns *netns.NS, ln *net.TCPListener) sockdrain.Target {
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	return sockdrain.Target{Addr: ap.Addr(), Port: ap.Port(), NetNS: ns.Path()}
}

// drainUntilGated starts a drain and returns once it is gated and has
// counted the queues once, with a channel that yields its error when it
// ends.
func drainUntilGated(t *testing.T, ctx context.Context, target sockdrain.Target, opts sockdrain.Options) <-chan error {
	t.Helper()
	gated, done := make(chan struct{}), make(chan error, 1)
	var once sync.Once
	opts.OnReport = func(r sockdrain.Report) {
		if r.Phase == sockdrain.Gated && r.Event == sockdrain.EventProgress {
			once.Do(func() { close(gated) })
		}
	}
	go func() { _, err := sockdrain.Drain(ctx, target, opts); done <- err }()
	select {
	case <-gated:
	case err := <-done:
		t.Fatalf("drain ended before it was gated: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("drain not gated after 10s")
	}
	return done
}

func requireRefused(t *testing.T, ns *netns.NS, target sockdrain.Target, want bool) {
	t.Helper()
	c, err := nstest.DialErr(ns, fmt.Sprintf("%s:%d", target.Addr, target.Port))
	if c != nil {
		c.Close()
	}
	if refused := err != nil; refused != want {
		t.Errorf("dial %s: %v; want refused %v", target, err, want)
	}
}

// A second drain of a port that a drain holds is refused, and changes
// nothing: the first one's gate stays armed, whatever backend is asked.
func TestSecondDrainOfAPortIsRefused(t *testing.T) {
	nstest.RequireAdmin(t)
	ns, _, target := stalledTarget(t, 2)
	ctx, cancel := context.WithCancel(t.Context())
	first := drainUntilGated(t, ctx, target, sockdrain.Options{Backend: "nftables", Timeout: 20 * time.Second})
	for _, backend := range []string{"auto", "nftables", "sklookup"} {
		_, err := sockdrain.Drain(t.Context(), target, sockdrain.Options{Backend: backend, Timeout: time.Second})
		if !errors.Is(err, sockdrain.ErrBusy) || !strings.Contains(err.Error(), "being drained") {
			t.Errorf("second drain (%s): %v, want ErrBusy naming the running drain", backend, err)
		}
		requireRefused(t, ns, target, true)
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first drain: %v, want cancelled", err)
	}
	requireRefused(t, ns, target, false)
	checkNothingLeft(t, ns)
}

// A drain that finds the gate of an earlier drain still armed joins it: it
// never arms a second backend, and never disarms the gate it found.
func TestDrainJoinsAGateLeftArmed(t *testing.T) {
	nstest.RequireAdmin(t)
	ns, ln, target := stalledTarget(t, 1)
	_, err := sockdrain.Drain(t.Context(), target, sockdrain.Options{Backend: "nftables", Timeout: 300 * time.Millisecond, KeepGate: true})
	if !errors.Is(err, sockdrain.ErrTimeout) {
		t.Fatalf("first drain: %v, want a timeout", err)
	}
	_, err = sockdrain.Drain(t.Context(), target, sockdrain.Options{Backend: "sklookup", Timeout: time.Second})
	if !errors.Is(err, sockdrain.ErrBusy) || !strings.Contains(err.Error(), "--backend nftables") {
		t.Errorf("drain with another backend: %v, want ErrBusy naming nftables", err)
	}
	rep, err := sockdrain.Drain(t.Context(), target, sockdrain.Options{Timeout: 300 * time.Millisecond})
	if !errors.Is(err, sockdrain.ErrTimeout) || rep.Backend != "nftables" {
		t.Errorf("joining drain: backend %q, %v; want nftables, timed out", rep.Backend, err)
	}
	requireRefused(t, ns, target, true) // the joined gate was left armed
	if c, err := ln.Accept(); err == nil {
		c.Close() // serve the queued client, and the next drain completes
	}
	rep, err = sockdrain.Drain(t.Context(), target, sockdrain.Options{Timeout: 5 * time.Second})
	if err != nil || rep.Phase != sockdrain.Drained || rep.Backend != "nftables" {
		t.Errorf("joining drain of an empty queue: %+v, %v; want drained by nftables", rep, err)
	}
	if _, err := sockdrain.Resume(t.Context(), target); err != nil {
		t.Fatal(err)
	}
	requireRefused(t, ns, target, false)
	checkNothingLeft(t, ns)
}

// A server that dies mid-drain is told apart from one that closes its
// listener and keeps running.
func TestDrainReportsTheServerExiting(t *testing.T) {
	nstest.RequireAdmin(t)
	for _, backend := range []string{"reuseport", "sklookup", "nftables"} {
		t.Run(backend, func(t *testing.T) {
			ns := nstest.New(t)
			ln := nstest.Listen(t, ns, "127.0.0.1:0", reusePort)
			target := targetOf(ns, ln)
			server := nstest.HoldInChild(t, ln)
			for range 3 {
				nstest.Dial(t, ns, ln.Addr().String())
			}
			done := drainUntilGated(t, t.Context(), target, sockdrain.Options{Backend: backend, Timeout: 20 * time.Second})
			server.Process.Kill()
			err := <-done
			if !errors.Is(err, sockdrain.ErrServerExited) || errors.Is(err, sockdrain.ErrListenerClosed) {
				t.Errorf("drain: %v, want ErrServerExited", err)
			}
			if err != nil && !strings.Contains(err.Error(), "3 queued") {
				t.Errorf("drain error %q does not say what was lost", err)
			}
			server.Wait()
			if _, err := sockdrain.Resume(t.Context(), target); err != nil {
				t.Error(err)
			}
			checkNothingLeft(t, ns)
		})
	}
}

// A kernel that lacks a gate's features, as its probe says, refuses that
// gate before anything is loaded; auto passes over it and says why.
func TestDrainWithAGateTheKernelLacks(t *testing.T) {
	nstest.RequireAdmin(t)
	lacks := fmt.Errorf("kernel 5.10 lacks bpf_loop: %w", sockdrain.ErrNotSupported)
	defer sockdrain.FailProbe("sklookup", lacks)()
	for _, s := range sockdrain.Probe() {
		if (s.Name == "sklookup") == s.Available {
			t.Errorf("probe %+v: want only sklookup unavailable", s)
		}
	}
	ns, ln, target := stalledTarget(t, 0)
	_, err := sockdrain.Drain(t.Context(), target, sockdrain.Options{Backend: "sklookup", Timeout: time.Second})
	if !errors.Is(err, sockdrain.ErrNotSupported) || !strings.Contains(err.Error(), "bpf_loop") {
		t.Errorf("drain --backend sklookup: %v, want ErrNotSupported with the probe's reason", err)
	}
	checkNothingLeft(t, ns)
	requireRefused(t, ns, target, false)
	if c, err := ln.Accept(); err == nil {
		c.Close() // the test's own client, left in the queue
	}
	var gated string
	rep, err := sockdrain.Drain(t.Context(), target, sockdrain.Options{Timeout: 5 * time.Second,
		OnReport: func(r sockdrain.Report) {
			if r.Phase == sockdrain.Gated && gated == "" {
				gated = r.Message
			}
		}})
	if err != nil || rep.Backend != "nftables" || !strings.Contains(gated, "not sklookup: not supported: kernel 5.10 lacks bpf_loop") {
		t.Errorf("auto: backend %q, %v, gated message %q; want nftables, saying why not sklookup", rep.Backend, err, gated)
	}
	if _, err := sockdrain.Resume(t.Context(), target); err != nil {
		t.Error(err)
	}
	checkNothingLeft(t, ns)
}
