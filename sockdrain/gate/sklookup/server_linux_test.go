package sklookup

import (
	"os"
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
)

// ours names this package's programs and maps, for the shared test harness.
var ours = gatetest.Objects{
	Names:  []string{"sd_refuse_lookup", "sd_refuse_looku", "sd_config", "sd_listeners"},
	PinKey: pinKey,
}

func osFile(t *testing.T, fd int) *os.File {
	t.Helper()
	f := os.NewFile(uintptr(fd), "test-socket")
	t.Cleanup(func() { f.Close() })
	return f
}
