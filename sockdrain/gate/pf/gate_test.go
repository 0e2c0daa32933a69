package pf

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// fakePfctl keeps anchors' rules as pfctl would, normalizing nothing.
type fakePfctl struct {
	main    string
	anchors map[string]string
	calls   []string
}

func (f *fakePfctl) run(stdin string, args ...string) (string, error) {
	f.calls = append(f.calls, strings.Join(args, " "))
	switch {
	case len(args) == 2 && args[0] == "-s" && args[1] == "rules":
		return f.main, nil
	case len(args) == 4 && args[0] == "-a" && args[2] == "-s":
		return f.anchors[args[1]], nil
	case len(args) == 4 && args[0] == "-a" && args[2] == "-f" && args[3] == "-":
		f.anchors[args[1]] = stdin
		return "", nil
	case len(args) == 4 && args[0] == "-a" && args[2] == "-F" && args[3] == "rules":
		delete(f.anchors, args[1])
		return "", nil
	}
	return "", errors.New("fake pfctl: unexpected " + strings.Join(args, " "))
}

func listener() gate.Listener {
	return gate.Listener{Addr: netip.MustParseAddrPort("10.0.0.1:8080")}
}

func TestGateArmDisarm(t *testing.T) {
	f := &fakePfctl{main: "anchor \"sockdrain/*\" all\n", anchors: map[string]string{}}
	g, err := newGate(listener(), f.run)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := g.Arm(); err != nil {
			t.Fatal(err)
		}
	}
	if armed, err := g.Armed(); err != nil || !armed {
		t.Fatalf("Armed after Arm = %v, %v", armed, err)
	}
	want := `pass out quick on lo0 proto tcp from any to 10.0.0.1 port 8080 flags S/SA no state label "sockdrain"
block return-rst in quick proto tcp from any to 10.0.0.1 port 8080 flags S/SA label "sockdrain"
`
	if got := f.anchors[g.Anchor()]; got != want {
		t.Errorf("anchor holds\n%s\nwant\n%s", got, want)
	}
	for range 2 {
		if err := g.Disarm(); err != nil {
			t.Fatal(err)
		}
	}
	if armed, err := g.Armed(); err != nil || armed {
		t.Fatalf("Armed after Disarm = %v, %v", armed, err)
	}
	if len(f.anchors) != 0 {
		t.Errorf("Disarm left anchors %v", f.anchors)
	}
}

func TestOpenRefusesUnreferencedAnchor(t *testing.T) {
	f := &fakePfctl{main: "pass in all\n", anchors: map[string]string{}}
	_, err := newGate(listener(), f.run)
	if !errors.Is(err, gate.ErrNotEligible) || !strings.Contains(err.Error(), AnchorLine) {
		t.Fatalf("newGate = %v, want ErrNotEligible naming %s", err, AnchorLine)
	}
	for _, c := range f.calls {
		if strings.Contains(c, "-f") || strings.Contains(c, "-F") {
			t.Errorf("a refused Open changed pf: %s", c)
		}
	}
}

func TestArmFailsWhenRuleDoesNotShow(t *testing.T) {
	f := &fakePfctl{main: "anchor \"sockdrain/*\" all\n", anchors: map[string]string{}}
	g, err := newGate(listener(), func(stdin string, args ...string) (string, error) {
		if len(args) == 4 && args[2] == "-f" {
			return "", nil // pfctl claims success but loads nothing
		}
		return f.run(stdin, args...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Arm(); err == nil {
		t.Fatal("Arm succeeded though the anchor stayed empty")
	}
}

// TestArmFailsWithoutLoopbackRule: a gate whose anchor lost the stateless
// pass rule would break loopback clients under a stateful ruleset, so it
// does not count as armed.
func TestArmFailsWithoutLoopbackRule(t *testing.T) {
	f := &fakePfctl{main: "anchor \"sockdrain/*\" all\n", anchors: map[string]string{}}
	g, err := newGate(listener(), func(stdin string, args ...string) (string, error) {
		if len(args) == 4 && args[2] == "-f" {
			_, block, _ := strings.Cut(stdin, "\n") // pfctl drops the pass rule
			stdin = block
		}
		return f.run(stdin, args...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Arm(); err == nil {
		t.Fatal("Arm succeeded though the anchor lacks the loopback pass rule")
	}
	// The block rule alone still refuses, as an older sockdrain's gate
	// did: Armed says so, and resume and busy checks see it.
	if armed, err := g.Armed(); err != nil || !armed {
		t.Errorf("Armed with the block rule alone = %v, %v; want true", armed, err)
	}
}

func TestCompanionArmDisarm(t *testing.T) {
	f := &fakePfctl{main: "anchor \"sockdrain/*\" all\npass all flags S/SA keep state\n", anchors: map[string]string{}}
	l := gate.Listener{Addr: netip.MustParseAddrPort("0.0.0.0:8080")}
	c, err := newCompanion(l, f.run)
	if err != nil {
		t.Fatal(err)
	}
	if c.Anchor() == AnchorPath(l.Key()) || !strings.HasPrefix(c.Anchor(), Anchor+"/") {
		t.Errorf("companion anchor %q: want its own, under %s/", c.Anchor(), Anchor)
	}
	if err := c.Arm(); err != nil {
		t.Fatal(err)
	}
	want := `pass out quick on lo0 inet proto tcp from any to any port 8080 flags S/SA no state label "sockdrain"
pass in quick inet proto tcp from any to any port 8080 flags S/SA no state label "sockdrain"
`
	if got := f.anchors[c.Anchor()]; got != want {
		t.Errorf("companion anchor holds\n%s\nwant\n%s", got, want)
	}
	if HasRule(f.anchors[c.Anchor()]) {
		t.Error("the companion holds a block rule: it must refuse nothing")
	}
	if err := c.Disarm(); err != nil {
		t.Fatal(err)
	}
	if armed, err := c.Armed(); err != nil || armed || len(f.anchors) != 0 {
		t.Errorf("after Disarm: armed %v, %v, anchors %v", armed, err, f.anchors)
	}
	f.main = "pass all\n"
	if _, err := newCompanion(l, f.run); !errors.Is(err, gate.ErrNotEligible) {
		t.Errorf("companion without the anchor line = %v, want ErrNotEligible", err)
	}
}
