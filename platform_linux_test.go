package sockdrain

import (
	"errors"
	"testing"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

func TestWithKernelChecksTheTableFirst(t *testing.T) {
	v, err := gate.RunningKernel()
	if err != nil {
		t.Fatal(err)
	}
	own := errors.New("the gate's own probe ran")
	probe := func() error { return own }
	if err := withKernel("nosuchgate", probe)(); err == nil || errors.Is(err, own) {
		t.Errorf("unknown gate: %v, want an error before the gate's probe", err)
	}
	for _, m := range gate.Minimums {
		err := withKernel(m.Gate, probe)()
		if below := v.Less(m.Version); below != errors.Is(err, gate.ErrNotSupported) || below == errors.Is(err, own) {
			t.Errorf("%s on %s (minimum %s): %v", m.Gate, v, m.Version, err)
		}
	}
}
