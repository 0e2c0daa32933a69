//go:build !linux

package nftgate

import (
	"fmt"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

var errNotLinux = fmt.Errorf("nftables needs Linux: %w", gate.ErrNotSupported)

// Gate is one listener's nftables rule. On this OS it can't be made.
type Gate struct{}

var _ gate.Gate = (*Gate)(nil)

// Probe reports that nftables needs Linux.
func Probe() error { return fmt.Errorf("probe nftables: %w", errNotLinux) }

// Open reports that nftables needs Linux.
func Open(l gate.Listener) (*Gate, error) {
	return nil, fmt.Errorf("open nftables gate %s: %w", l.Addr, errNotLinux)
}

// OpenV6Only reports that nftables needs Linux.
func OpenV6Only(l gate.Listener) (*Gate, error) { return Open(l) }

// Arm reports that nftables needs Linux.
func (*Gate) Arm() error { return errNotLinux }

// Disarm reports that nftables needs Linux.
func (*Gate) Disarm() error { return errNotLinux }

// Armed reports that nftables needs Linux.
func (*Gate) Armed() (bool, error) { return false, errNotLinux }

// Close does nothing.
func (*Gate) Close() error { return nil }

// Tied reports false: there is no gate on this OS.
func (*Gate) Tied() bool { return false }

// WhyUntied reports that nftables needs Linux.
func (*Gate) WhyUntied() error { return errNotLinux }
