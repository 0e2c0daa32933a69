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
	if got := f.anchors[g.Anchor()]; !strings.HasPrefix(got, "block return-rst in quick proto tcp from any to 10.0.0.1 port 8080 flags S/SA") {
		t.Errorf("anchor holds %q", got)
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
