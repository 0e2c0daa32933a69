//go:build !freebsd

package pf

import (
	"fmt"
	"runtime"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Probe reports that pf gates need FreeBSD.
func Probe() error {
	return fmt.Errorf("probe pf on %s: pf gates need FreeBSD: %w", runtime.GOOS, gate.ErrNotSupported)
}

// Open fails: pf gates need FreeBSD.
func Open(gate.Listener) (*Gate, error) { return nil, Probe() }

// NewCompanion fails: pf needs FreeBSD.
func NewCompanion(gate.Listener) (*Gate, error) { return nil, Probe() }
