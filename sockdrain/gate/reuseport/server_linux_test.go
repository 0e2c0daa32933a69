package reuseport

import "github.com/sockdrain/sockdrain/internal/testutil/gatetest"

// ours names this package's programs and maps, for the shared test harness.
var ours = gatetest.Objects{
	Names:  []string{"sd_refuse_syn", "sd_reuseport_progs", "sd_reuseport_pr", "sd_armed"},
	PinKey: pinKey,
}
