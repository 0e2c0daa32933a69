//go:build freebsd && freebsdkernel

package pf

import (
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// TestKernelArmRefusesAndDisarmRestores needs root, pf enabled and
// `anchor "sockdrain/*"` in the main ruleset, and pf not skipping lo0: the
// Vagrant box sets that up.
func TestKernelArmRefusesAndDisarmRestores(t *testing.T) {
	addr := gatetest.LoopbackListener(t, "pfctl", Probe)
	g, err := Open(gate.Listener{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	if ws, _ := g.Warnings(); len(ws) > 0 {
		t.Skipf("pf skips loopback here: %v", ws)
	}
	gatetest.ArmRefusesDisarmRestores(t, g, addr, func() {
		if armed, err := g.Armed(); err != nil || armed {
			t.Errorf("Armed after Disarm = %v, %v", armed, err)
		}
	})
}
