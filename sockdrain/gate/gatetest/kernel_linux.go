package gatetest

import (
	"testing"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// RequireKernel skips tb when the running kernel is older than the
// minimum of the gate called name, naming the minimum, the feature and the
// running kernel. It fails tb for a gate without a minimum, so a typo
// cannot turn the check off.
func RequireKernel(tb testing.TB, name string) {
	tb.Helper()
	m, ok := gate.MinimumOf(name)
	if !ok {
		tb.Fatalf("no minimum kernel for gate %q in gate.Minimums", name)
	}
	v, err := gate.RunningKernel()
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Supports(v); err != nil {
		tb.Skip(err)
	}
}
