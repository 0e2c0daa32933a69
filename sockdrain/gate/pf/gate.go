package pf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// pfctl runs pfctl with args, feeding it stdin, and returns its standard
// output. It is exec on FreeBSD and a fake in tests.
type pfctl func(stdin string, args ...string) (string, error)

// Gate is one listener's pf gate: the anchor sockdrain/KEY.
type Gate struct {
	anchor string
	rule   string
	addr   netip.AddrPort
	run    pfctl
}

var _ gate.Gate = (*Gate)(nil)

// newGate checks that pf can gate l and builds its Gate.
func newGate(l gate.Listener, run pfctl) (*Gate, error) {
	rule, err := Rule(l.Addr)
	if err != nil {
		return nil, err
	}
	g := &Gate{anchor: AnchorPath(l.Key()), rule: rule, addr: l.Addr, run: run}
	if err := g.checkMain(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Gate) checkMain() error {
	main, err := g.run("", "-s", "rules")
	if err != nil {
		return fmt.Errorf("read pf main ruleset: %w", err)
	}
	sub, err := g.run("", "-a", Anchor, "-s", "rules")
	if err != nil {
		return fmt.Errorf("read pf anchor %s: %w", Anchor, err)
	}
	return CheckMainRuleset(main, sub)
}

// Arm loads the block rule into the listener's anchor, replacing whatever
// the anchor held.
func (g *Gate) Arm() error {
	if _, err := g.run(g.rule+"\n", "-a", g.anchor, "-f", "-"); err != nil {
		return fmt.Errorf("load pf rule into anchor %s: %w", g.anchor, err)
	}
	armed, err := g.Armed()
	if err == nil && !armed {
		err = errors.New("pfctl accepted the rule but the anchor does not list it")
	}
	if err != nil {
		return fmt.Errorf("arm pf gate %s: %w", g.anchor, err)
	}
	return nil
}

// Disarm flushes the rules of the listener's anchor.
func (g *Gate) Disarm() error {
	if _, err := g.run("", "-a", g.anchor, "-F", "rules"); err != nil {
		return fmt.Errorf("flush pf anchor %s: %w", g.anchor, err)
	}
	return nil
}

// Armed reports whether the listener's anchor holds sockdrain's rule.
func (g *Gate) Armed() (bool, error) {
	out, err := g.run("", "-a", g.anchor, "-s", "rules")
	if err != nil {
		return false, fmt.Errorf("read pf anchor %s: %w", g.anchor, err)
	}
	return HasRule(out), nil
}

// Warnings reports how clients can bypass this gate, such as pf skipping
// loopback.
func (g *Gate) Warnings() ([]string, error) {
	out, err := g.run("", "-s", "Interfaces", "-v")
	if err != nil {
		return nil, fmt.Errorf("read pf interfaces: %w", err)
	}
	return Warnings(g.addr, SkippedInterfaces(out)), nil
}

// Anchor is the pf anchor that holds this gate's rule.
func (g *Gate) Anchor() string { return g.anchor }

// Close does nothing: the gate is pf state, and holds no handle.
func (g *Gate) Close() error { return nil }
