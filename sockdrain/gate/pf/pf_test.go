package pf

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

func TestRule(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"10.0.0.1:8080", "block return-rst in quick proto tcp from any to 10.0.0.1 port 8080 flags S/SA label \"sockdrain\""},
		{"0.0.0.0:80", "block return-rst in quick inet proto tcp from any to any port 80 flags S/SA label \"sockdrain\""},
		{"[::]:443", "block return-rst in quick proto tcp from any to any port 443 flags S/SA label \"sockdrain\""},
		{"[2001:db8::1]:443", "block return-rst in quick proto tcp from any to 2001:db8::1 port 443 flags S/SA label \"sockdrain\""},
		{"[::ffff:10.0.0.1]:25", "block return-rst in quick proto tcp from any to 10.0.0.1 port 25 flags S/SA label \"sockdrain\""},
	} {
		got, err := Rule(netip.MustParseAddrPort(tc.addr))
		if err != nil || got != tc.want {
			t.Errorf("Rule(%s) = %q, %v\nwant %q", tc.addr, got, err, tc.want)
		}
	}
	if _, err := Rule(netip.MustParseAddrPort("[fe80::1%em0]:80")); !errors.Is(err, gate.ErrNotEligible) {
		t.Errorf("Rule(scoped) = %v, want ErrNotEligible", err)
	}
}

// TestRules pins the text of the anchor's rules: the stateless pass rule
// for loopback SYNs must come with the block rule, quick, out on lo0, and
// only for SYNs to the gated address and port.
func TestRules(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:8080", []string{
			`pass out quick on lo0 proto tcp from any to 127.0.0.1 port 8080 flags S/SA no state label "sockdrain"`,
			`block return-rst in quick proto tcp from any to 127.0.0.1 port 8080 flags S/SA label "sockdrain"`,
		}},
		{"0.0.0.0:80", []string{
			`pass out quick on lo0 inet proto tcp from any to any port 80 flags S/SA no state label "sockdrain"`,
			`block return-rst in quick inet proto tcp from any to any port 80 flags S/SA label "sockdrain"`,
		}},
		{"[::]:443", []string{
			`pass out quick on lo0 proto tcp from any to any port 443 flags S/SA no state label "sockdrain"`,
			`block return-rst in quick proto tcp from any to any port 443 flags S/SA label "sockdrain"`,
		}},
	} {
		got, err := Rules(netip.MustParseAddrPort(tc.addr))
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Rules(%s) = %q, %v\nwant %q", tc.addr, got, err, tc.want)
		}
	}
	if _, err := Rules(netip.MustParseAddrPort("[fe80::1%em0]:80")); !errors.Is(err, gate.ErrNotEligible) {
		t.Errorf("Rules(scoped) = %v, want ErrNotEligible", err)
	}
}

func TestCompanionRules(t *testing.T) {
	got, err := CompanionRules(netip.MustParseAddrPort("[::1]:8443"))
	want := []string{
		`pass out quick on lo0 proto tcp from any to ::1 port 8443 flags S/SA no state label "sockdrain"`,
		`pass in quick proto tcp from any to ::1 port 8443 flags S/SA no state label "sockdrain"`,
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("CompanionRules = %q, %v\nwant %q", got, err, want)
	}
}

// pfctl -s rules prints a stateless rule as loaded, "port =" and all.
func TestHasStateless(t *testing.T) {
	out := `pass out quick on lo0 inet proto tcp from any to 127.0.0.1 port = 8080 flags S/SA no state label "sockdrain"
block return-rst in quick inet proto tcp from any to 127.0.0.1 port = 8080 flags S/SA label "sockdrain"
`
	if !HasStateless(out, "out") || HasStateless(out, "in") {
		t.Errorf("HasStateless(out) = %v, (in) = %v; want true, false", HasStateless(out, "out"), HasStateless(out, "in"))
	}
	if HasStateless("pass out quick on lo0 inet proto tcp from any to any port = 80 flags S/SA keep state label \"sockdrain\"\n", "out") {
		t.Error("HasStateless took a stateful rule")
	}
	if HasStateless("pass out quick on lo0 all no state\n", "out") {
		t.Error("HasStateless took an unlabelled rule")
	}
}

func TestAnchorPath(t *testing.T) {
	l := gate.Listener{Addr: netip.MustParseAddrPort("[::1]:8080")}
	got := AnchorPath(l.Key())
	if got != "sockdrain/0_00000000000000000000000000000001_8080" {
		t.Errorf("AnchorPath = %q", got)
	}
	if AnchorPath("0_10.0.0.1_80") == AnchorPath("0_10.0.0.2_80") {
		t.Error("two addresses share an anchor")
	}
}

// pfctl -s rules prints rules normalized, with the family and "port =".
const anchorWithRule = `block return-rst in quick inet proto tcp from any to 10.0.0.1 port = 8080 flags S/SA label "sockdrain"
`

func TestHasRule(t *testing.T) {
	if !HasRule(anchorWithRule) {
		t.Error("HasRule missed sockdrain's rule")
	}
	if HasRule("block return-rst in quick inet proto tcp from any to any port = 22 flags S/SA\n") {
		t.Error("HasRule took an unlabelled rule for sockdrain's")
	}
	if HasRule("") {
		t.Error("HasRule on an empty anchor")
	}
}

func TestCheckMainRuleset(t *testing.T) {
	for _, tc := range []struct {
		name, main, sub string
		ok              bool
	}{
		{"wildcard anchor", "scrub in all fragment reassemble\nanchor \"sockdrain/*\" all\npass in all flags S/SA keep state\n", "", true},
		{"parent anchor with *", "anchor \"sockdrain\" all\n", "anchor \"*\" all\n", true},
		{"parent anchor alone", "anchor \"sockdrain\" all\n", "", false},
		{"no anchor", "pass in all flags S/SA keep state\nanchor \"blacklistd/*\" in all\n", "", false},
		{"lookalike", "anchor \"sockdrainer/*\" all\n", "", false},
	} {
		err := CheckMainRuleset(tc.main, tc.sub)
		if (err == nil) != tc.ok {
			t.Errorf("%s: CheckMainRuleset = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), AnchorLine) {
			t.Errorf("%s: error %q does not say to add %s", tc.name, err, AnchorLine)
		}
	}
}

func TestEnabled(t *testing.T) {
	on, err := Enabled("Status: Enabled for 0 days 01:02:03           Debug: Urgent\n\nState Table ...")
	if err != nil || !on {
		t.Errorf("Enabled = %v, %v; want true", on, err)
	}
	on, err = Enabled("Status: Disabled for 0 days 00:00:00           Debug: Urgent\n")
	if err != nil || on {
		t.Errorf("Enabled = %v, %v; want false", on, err)
	}
	if _, err := Enabled("pfctl: /dev/pf: No such file or directory"); err == nil {
		t.Error("Enabled without a Status line: no error")
	}
}

func TestWarnings(t *testing.T) {
	skipped := SkippedInterfaces("all\nem0\nlo0 (skip)\npflog0\n")
	if !slices.Equal(skipped, []string{"lo0"}) {
		t.Fatalf("SkippedInterfaces = %v, want [lo0]", skipped)
	}
	for _, tc := range []struct {
		addr string
		n    int
	}{{"127.0.0.1:80", 1}, {"0.0.0.0:80", 1}, {"[::]:80", 1}, {"192.0.2.1:80", 0}} {
		if ws := Warnings(netip.MustParseAddrPort(tc.addr), skipped); len(ws) != tc.n {
			t.Errorf("Warnings(%s) = %q, want %d", tc.addr, ws, tc.n)
		}
	}
}
