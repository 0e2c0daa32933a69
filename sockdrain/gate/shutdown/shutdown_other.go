//go:build !freebsd

package shutdown

import (
	"fmt"
	"runtime"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Probe reports that the shutdown gate exists only on FreeBSD 10 and
// older. On Linux, shutdown() on a listener resets every queued connection.
func Probe() error {
	return fmt.Errorf("probe shutdown gate on %s: only FreeBSD before 11.0 keeps the accept queue on shutdown(): %w", runtime.GOOS, gate.ErrNotSupported)
}

// Open fails: see Probe.
func Open(gate.Listener) (*Gate, error) { return nil, Probe() }
