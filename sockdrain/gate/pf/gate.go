package pf

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// pfctl runs pfctl with args, feeding it stdin, and returns its standard
// output. It is exec on FreeBSD and a fake in tests.
type pfctl func(stdin string, args ...string) (string, error)

// Gate is one listener's pf gate: the anchor sockdrain/KEY. A companion
// (see NewCompanion) is a Gate too, in its own anchor, that refuses
// nothing.
type Gate struct {
	anchor string
	rules  []string
	addr   netip.AddrPort
	run    pfctl
	// armed and loaded read pfctl -s rules output of the anchor: armed,
	// whether it holds the rule that makes the gate what it is (Armed);
	// loaded, whether it holds every rule Arm loads.
	armed, loaded func(rules string) bool
}

var _ gate.Gate = (*Gate)(nil)

// newGate checks that pf can gate l and builds its Gate.
func newGate(l gate.Listener, run pfctl) (*Gate, error) {
	rules, err := Rules(l.Addr)
	if err != nil {
		return nil, err
	}
	g := &Gate{anchor: AnchorPath(l.Key()), rules: rules, addr: l.Addr, run: run, armed: HasRule,
		loaded: func(out string) bool { return HasRule(out) && HasStateless(out, "out") }}
	if err := g.checkMain(); err != nil {
		return nil, err
	}
	return g, nil
}

// CompanionAnchorPath is the anchor of the companion rules of the
// listener with key. No listener's own anchor ends this way: keys end in
// a port number.
func CompanionAnchorPath(key string) string { return AnchorPath(key) + "-nostate" }

// newCompanion checks that pf evaluates sockdrain's anchors and builds the
// companion of another gate of l: CompanionRules in their own anchor.
func newCompanion(l gate.Listener, run pfctl) (*Gate, error) {
	rules, err := CompanionRules(l.Addr)
	if err != nil {
		return nil, err
	}
	both := func(out string) bool { return HasStateless(out, "out") && HasStateless(out, "in") }
	g := &Gate{anchor: CompanionAnchorPath(l.Key()), rules: rules, addr: l.Addr, run: run, armed: both, loaded: both}
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

// Arm loads the gate's rules into its anchor, replacing whatever the
// anchor held.
func (g *Gate) Arm() error {
	if _, err := g.run(strings.Join(g.rules, "\n")+"\n", "-a", g.anchor, "-f", "-"); err != nil {
		return fmt.Errorf("load pf rules into anchor %s: %w", g.anchor, err)
	}
	out, err := g.run("", "-a", g.anchor, "-s", "rules")
	if err == nil && !g.loaded(out) {
		err = errors.New("pfctl accepted the rules but the anchor does not list them")
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

// Armed reports whether the anchor holds the gate's block rule (a
// companion's: its pass rules), also as an older sockdrain left it.
func (g *Gate) Armed() (bool, error) {
	out, err := g.run("", "-a", g.anchor, "-s", "rules")
	if err != nil {
		return false, fmt.Errorf("read pf anchor %s: %w", g.anchor, err)
	}
	return g.armed(out), nil
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
