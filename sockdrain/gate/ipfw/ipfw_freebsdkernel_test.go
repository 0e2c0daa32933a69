//go:build freebsd && freebsdkernel

package ipfw

import (
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// TestKernelArmRefusesAndDisarmRestores needs root and ipfw loaded and
// enabled: the Vagrant box sets that up.
func TestKernelArmRefusesAndDisarmRestores(t *testing.T) {
	addr := gatetest.LoopbackListener(t, "ipfw", Probe)
	g, err := Open(gate.Listener{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	gatetest.ArmRefusesDisarmRestores(t, g, addr, func() {
		if rs, err := g.list(); err != nil || len(Ours(rs, g.key)) != 0 {
			t.Errorf("Disarm left rules: %v, %v", rs, err)
		}
	})
}
