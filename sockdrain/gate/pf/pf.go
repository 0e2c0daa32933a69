// Package pf gates a listener with pf(4) rules on FreeBSD:
//
//	pass out quick on lo0 proto tcp from any to ADDR port PORT flags S/SA no state label "sockdrain"
//	block return-rst in quick proto tcp from any to ADDR port PORT flags S/SA label "sockdrain"
//
// loaded into their own anchor, sockdrain/KEY, so that each listener's gate
// is armed and disarmed alone. "flags S/SA" matches only a SYN without ACK,
// so handshakes already under way, and established connections, pass.
//
// # Why the pass rule: pf state and loopback clients
//
// A client on the same host sends its SYN out through lo0, and pf tests it
// there first. Under a stateful ruleset (`pass all` keeps state) that
// creates a state for the client's side: SYN_SENT, peer CLOSED. The SYN then
// comes in on lo0 and the block rule answers it. pf_return builds the RST
// with M_SKIP_FIREWALL and pf_intr, seeing it is for a local address, hands
// it straight to ip_input: pf never sees it, so the client's state is never
// closed and lives out tcp.first. When the client later reuses that source
// port, its new SYN carries a new ISN, outside the stale state's window:
// pf_tcp_track_full calls it a BAD state (the state-mismatch counter) and
// drops it on the way out, ip_output returns EACCES, and connect(2) fails
// with "permission denied" instead of ECONNREFUSED. FreeBSD 15.1 showed
// 16–53 such clients per drain. The pass rule lets those SYNs out on lo0
// without state, quick so that it wins over the ruleset's later pass rules;
// it touches nothing while the gate is disarmed.
//
// The ipfw gate has the same problem with pf enabled, on the way in: pf
// keeps state for the SYN that ipfw resets, and ipfw's RST skips pf too.
// CompanionRules are the pf rules that keep pf stateless for those SYNs.
//
// pf evaluates an anchor only where the main ruleset names it. pf.conf
// must therefore hold the line
//
//	anchor "sockdrain/*"
//
// before the rules that pass the listener's traffic, so that the gate's
// quick rules come first; Open refuses to work without it. pf.conf's usual `set skip on lo0` makes pf
// ignore loopback, so clients on the same host bypass the gate; Warnings
// says so.
//
// The rules here are built and pfctl's output parsed by plain functions,
// tested on any OS; only Probe and Open run pfctl, on FreeBSD.
package pf

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Anchor is the pf anchor every sockdrain rule lives under.
const Anchor = "sockdrain"

// label marks sockdrain's rules, so Armed does not mistake another rule.
const label = `label "sockdrain"`

// AnchorLine is the line pf.conf needs for sockdrain's anchors to count.
const AnchorLine = `anchor "sockdrain/*"`

// AnchorPath is the anchor that holds the gate of the listener with key.
// Characters pf might read as syntax become '-'.
func AnchorPath(key string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, key)
	return Anchor + "/" + clean
}

// Rule is the pf rule that refuses new connections to addr. An unspecified
// IPv4 address refuses them on every IPv4 address; an unspecified IPv6
// address on every address of both families, since a dual-stack listener
// takes both.
func Rule(addr netip.AddrPort) (string, error) {
	m, err := match(addr)
	if err != nil {
		return "", err
	}
	return "block return-rst in quick " + m + " " + label, nil
}

// Rules are the rules of addr's gate, in the order its anchor holds them:
// the loopback pass rule (see the package documentation), then Rule.
func Rules(addr netip.AddrPort) ([]string, error) {
	block, err := Rule(addr)
	if err != nil {
		return nil, err
	}
	m, _ := match(addr)
	return []string{loopbackOut + m + noState, block}, nil
}

// CompanionRules keep pf from keeping state for the SYNs to addr that
// another gate (ipfw) refuses: they pass those SYNs without state, out on
// lo0 (from clients on this host) and in (from anyone), quick.
func CompanionRules(addr netip.AddrPort) ([]string, error) {
	m, err := match(addr)
	if err != nil {
		return nil, err
	}
	return []string{loopbackOut + m + noState, "pass in quick " + m + noState}, nil
}

const (
	// loopbackOut starts the rule that lets this host's clients' SYNs out
	// on lo0.
	loopbackOut = "pass out quick on lo0 "
	noState     = " no state " + label
)

// match is what every rule matches: the SYNs to addr.
func match(addr netip.AddrPort) (string, error) {
	a := addr.Addr().Unmap()
	if a.Zone() != "" {
		return "", fmt.Errorf("build pf rule for %s: scoped addresses are not supported: %w", addr, gate.ErrNotEligible)
	}
	if !a.IsValid() || addr.Port() == 0 {
		return "", fmt.Errorf("build pf rule for %s: need an address and a port: %w", addr, gate.ErrNotEligible)
	}
	family, to := "", a.String()
	switch {
	case a == netip.IPv4Unspecified():
		family, to = "inet ", "any"
	case a.IsUnspecified():
		to = "any"
	}
	return fmt.Sprintf("%sproto tcp from any to %s port %d flags S/SA", family, to, addr.Port()), nil
}

// HasStateless reports whether pfctl -a ANCHOR -s rules output lists a
// sockdrain pass rule of the given direction ("in" or "out") that keeps no
// state. pfctl prints such a rule with "no state", as it was loaded.
func HasStateless(rules, dir string) bool {
	for _, line := range lines(rules) {
		if strings.HasPrefix(line, "pass "+dir+" quick ") && strings.Contains(line, " no state") && strings.Contains(line, label) {
			return true
		}
	}
	return false
}

// HasRule reports whether pfctl -a ANCHOR -s rules output lists a
// sockdrain block rule.
func HasRule(rules string) bool {
	for _, line := range lines(rules) {
		if strings.HasPrefix(line, "block return-rst ") && strings.Contains(line, label) {
			return true
		}
	}
	return false
}

// CheckMainRuleset returns an error, saying which line to add to pf.conf,
// unless the main ruleset (pfctl -s rules) evaluates sockdrain's anchors.
// anchorRules is the output of pfctl -a sockdrain -s rules: a main ruleset
// that names only "sockdrain" reaches the per-listener anchors when that
// anchor itself holds `anchor "*"`.
func CheckMainRuleset(mainRules, anchorRules string) error {
	names := anchorNames(mainRules)
	if names[Anchor+"/*"] || names[Anchor] && anchorNames(anchorRules)["*"] {
		return nil
	}
	return fmt.Errorf("check pf main ruleset: it does not evaluate anchor %q; add the line '%s' to /etc/pf.conf before your pass rules and reload it with 'pfctl -f /etc/pf.conf': %w",
		Anchor+"/*", AnchorLine, gate.ErrNotEligible)
}

// anchorNames returns the names of the anchors a ruleset calls.
func anchorNames(rules string) map[string]bool {
	names := map[string]bool{}
	for _, line := range lines(rules) {
		rest, ok := strings.CutPrefix(line, "anchor ")
		if !ok || !strings.HasPrefix(rest, `"`) {
			continue
		}
		if name, _, ok := strings.Cut(rest[1:], `"`); ok {
			names[name] = true
		}
	}
	return names
}

// Enabled reports whether pfctl -s info output says pf is enabled.
func Enabled(info string) (bool, error) {
	for _, line := range lines(info) {
		if rest, ok := strings.CutPrefix(line, "Status: "); ok {
			return strings.HasPrefix(rest, "Enabled"), nil
		}
	}
	return false, fmt.Errorf("parse pfctl -s info: no Status line")
}

// SkippedInterfaces returns the interfaces pf skips, from the output of
// pfctl -s Interfaces -v, where each is marked "(skip)".
func SkippedInterfaces(ifaces string) []string {
	var skipped []string
	for _, line := range lines(ifaces) {
		if name, _, ok := strings.Cut(line, " "); ok && strings.Contains(line, "(skip)") {
			skipped = append(skipped, name)
		}
	}
	return skipped
}

// Warnings explains how clients of addr can bypass a pf gate, given the
// interfaces pf skips.
func Warnings(addr netip.AddrPort, skipped []string) []string {
	a := addr.Addr().Unmap()
	if !a.IsLoopback() && !a.IsUnspecified() {
		return nil
	}
	var ws []string
	for _, name := range skipped {
		if strings.HasPrefix(name, "lo") {
			ws = append(ws, fmt.Sprintf("pf skips %s (set skip on %s): clients connecting over loopback bypass the gate on %s", name, name, addr))
		}
	}
	return ws
}

func lines(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}
