// Package pf gates a listener with a pf(4) rule on FreeBSD:
//
//	block return-rst in quick proto tcp from any to ADDR port PORT flags S/SA label "sockdrain"
//
// loaded into its own anchor, sockdrain/KEY, so that each listener's gate
// is armed and disarmed alone. "flags S/SA" matches only a SYN without ACK,
// so handshakes already under way, and established connections, pass.
//
// pf evaluates an anchor only where the main ruleset names it. pf.conf
// must therefore hold the line
//
//	anchor "sockdrain/*"
//
// before any rule that passes the listener's traffic with quick; Open
// refuses to work without it. pf.conf's usual `set skip on lo0` makes pf
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
	return fmt.Sprintf("block return-rst in quick %sproto tcp from any to %s port %d flags S/SA %s",
		family, to, addr.Port(), label), nil
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
