package backend

import (
	"errors"
	"fmt"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
	"github.com/sockdrain/sockdrain/sockdrain/gate/ipfw"
	"github.com/sockdrain/sockdrain/sockdrain/gate/pf"
)

// ipfwGate is the ipfw gate, plus pf's companion rules when pf is enabled
// too (see pf.CompanionRules). pf, under a stateful ruleset, keeps state
// for each SYN that ipfw then resets; ipfw's RST skips the firewalls, so
// that state lingers, and a client that reuses its source port has its new
// SYN dropped by pf and times out. On FreeBSD 15.1 that was 6–8 clients per
// drain. The companion passes those SYNs without state.
type ipfwGate struct {
	*ipfw.Gate
	// companion is nil when pf is disabled or cannot take it.
	companion *pf.Gate
	// pfProblem, when pf is enabled but takes no companion, says so.
	pfProblem string
}

var _ gate.Gate = (*ipfwGate)(nil)

func openIpfw(l gate.Listener) (gate.Gate, error) {
	g, err := ipfw.Open(l)
	if err != nil {
		return nil, err
	}
	ig := &ipfwGate{Gate: g}
	if pf.Probe() != nil {
		return ig, nil // pf is off: nothing keeps state
	}
	if ig.companion, err = pf.NewCompanion(l); err != nil {
		ig.pfProblem = fmt.Sprintf("pf is enabled but sockdrain cannot load its stateless rules for %s (%v): "+
			"if pf keeps state for these SYNs, clients that reuse a source port while the ipfw gate is armed time out; "+
			"add '%s' before the pass rules in /etc/pf.conf, and the pf gate serves instead", l.Addr, err, pf.AnchorLine)
	}
	return ig, nil
}

// Arm loads the companion, then the ipfw rules.
func (g *ipfwGate) Arm() error {
	if g.companion != nil {
		if err := g.companion.Arm(); err != nil {
			return fmt.Errorf("arm ipfw gate: %w", err)
		}
	}
	if err := g.Gate.Arm(); err != nil {
		return errors.Join(err, g.disarmCompanion())
	}
	return nil
}

// Disarm removes the ipfw rules, then the companion.
func (g *ipfwGate) Disarm() error {
	if err := g.Gate.Disarm(); err != nil {
		return err
	}
	return g.disarmCompanion()
}

func (g *ipfwGate) disarmCompanion() error {
	if g.companion == nil {
		return nil
	}
	return g.companion.Disarm()
}

// Warnings says when pf is enabled but took no companion.
func (g *ipfwGate) Warnings() ([]string, error) {
	if g.pfProblem == "" {
		return nil, nil
	}
	return []string{g.pfProblem}, nil
}
