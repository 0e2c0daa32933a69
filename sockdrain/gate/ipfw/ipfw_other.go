//go:build !freebsd

package ipfw

import (
	"fmt"
	"runtime"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Probe reports that ipfw gates need FreeBSD.
func Probe() error {
	return fmt.Errorf("probe ipfw on %s: ipfw gates need FreeBSD: %w", runtime.GOOS, gate.ErrNotSupported)
}

// Open fails: ipfw gates need FreeBSD.
func Open(gate.Listener) (*Gate, error) { return nil, Probe() }
