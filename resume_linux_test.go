package sockdrain_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// TestResumeHonoursContext resumes a drained listener with a context that
// has ended: Resume must return its error and leave the gate armed. With a
// live context it opens the gate.
func TestResumeHonoursContext(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	target := sockdrain.Target{Addr: addr.Addr(), Port: addr.Port(), NetNS: ns.Path()}
	if _, err := sockdrain.Drain(t.Context(), target, sockdrain.Options{Backend: "sklookup", Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("drain: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	opened, err := sockdrain.Resume(ctx, target)
	if !errors.Is(err, context.Canceled) || len(opened) != 0 {
		t.Errorf("Resume with a cancelled context = %q, %v; want nothing opened and context.Canceled", opened, err)
	}
	if c, err := nstest.DialErr(ns, addr.String()); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Errorf("after Resume with a cancelled context, dial: %v; want the gate still refusing", err)
	}
	if opened, err := sockdrain.Resume(t.Context(), target); err != nil || len(opened) != 1 {
		t.Fatalf("Resume = %q, %v; want the sklookup gate opened", opened, err)
	}
	c, err := nstest.DialErr(ns, addr.String())
	if err != nil {
		t.Fatalf("after Resume, dial: %v", err)
	}
	c.Close()
}
