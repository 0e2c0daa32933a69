package pf

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Probe reports whether pf is loaded, enabled and usable by this process.
func Probe() error {
	info, err := execPfctl("", "-s", "info")
	if err != nil {
		return fmt.Errorf("probe pf: %w: %w", err, gate.ErrNotSupported)
	}
	on, err := Enabled(info)
	if err != nil {
		return fmt.Errorf("probe pf: %w: %w", err, gate.ErrNotSupported)
	}
	if !on {
		return fmt.Errorf("probe pf: pf is disabled (pfctl -e enables it): %w", gate.ErrNotSupported)
	}
	return nil
}

// Open returns the pf gate of l. It fails when the main ruleset does not
// evaluate sockdrain's anchors.
func Open(l gate.Listener) (*Gate, error) {
	if err := Probe(); err != nil {
		return nil, err
	}
	return newGate(l, execPfctl)
}

// NewCompanion returns the pf rules that keep pf stateless for the SYNs
// that another gate of l refuses (see CompanionRules). It fails, with
// gate.ErrNotSupported or gate.ErrNotEligible, when pf is disabled or does
// not evaluate sockdrain's anchors.
func NewCompanion(l gate.Listener) (*Gate, error) {
	if err := Probe(); err != nil {
		return nil, err
	}
	return newCompanion(l, execPfctl)
}

func execPfctl(stdin string, args ...string) (string, error) {
	cmd := exec.Command("pfctl", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("pfctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
