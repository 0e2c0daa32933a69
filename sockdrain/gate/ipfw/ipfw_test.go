package ipfw

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

func TestAddArgs(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want []string
	}{
		{"10.0.0.1:8080", []string{"-q add 42 set 17 reset tcp from any to 10.0.0.1 8080 in setup // sockdrain:K"}},
		{"0.0.0.0:80", []string{"-q add 42 set 17 reset tcp from any to me 80 in setup // sockdrain:K"}},
		{"[::]:80", []string{
			"-q add 42 set 17 reset tcp from any to me 80 in setup // sockdrain:K",
			"-q add 42 set 17 reset tcp from any to me6 80 in setup // sockdrain:K"}},
		{"[2001:db8::1]:443", []string{"-q add 42 set 17 reset tcp from any to 2001:db8::1 443 in setup // sockdrain:K"}},
	} {
		cmds, err := AddArgs(42, "K", netip.MustParseAddrPort(tc.addr))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range cmds {
			got = append(got, strings.Join(c, " "))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("AddArgs(%s) = %q\nwant %q", tc.addr, got, tc.want)
		}
	}
	if _, err := AddArgs(42, "K", netip.MustParseAddrPort("[fe80::1%em0]:80")); !errors.Is(err, gate.ErrNotEligible) {
		t.Errorf("AddArgs(scoped) = %v, want ErrNotEligible", err)
	}
}

const listing = `00020 set 17 reset tcp from any to 10.0.0.1 dst-port 8080 in setup // sockdrain:0_10.0.0.1_8080
00021 set 3 allow tcp from any to any dst-port 22
00100 set 0 allow ip from any to any via lo0
00200 set 0 deny ip from any to 127.0.0.0/8
65535 set 31 deny ip from any to any
`

func TestParseList(t *testing.T) {
	rs, err := ParseList(listing)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 5 {
		t.Fatalf("got %d rules, want 5", len(rs))
	}
	want := Rule{Num: 20, Set: 17, Body: "reset tcp from any to 10.0.0.1 dst-port 8080 in setup", Comment: "sockdrain:0_10.0.0.1_8080"}
	if rs[0] != want {
		t.Errorf("rule 0 = %+v\nwant %+v", rs[0], want)
	}
	if _, err := ParseList("00100 allow ip from any to any\n"); err == nil {
		t.Error("ParseList took a listing without sets (ipfw list without -S)")
	}
}

func TestPickNumber(t *testing.T) {
	rs, _ := ParseList(listing)
	if n, err := PickNumber(rs, "0_10.0.0.1_8080"); err != nil || n != 20 {
		t.Errorf("PickNumber(armed key) = %d, %v; want its rule 20", n, err)
	}
	n, err := PickNumber(rs, "0_10.0.0.2_8080")
	if err != nil || n < RuleMin || n > RuleMax || n == 20 || n == 21 {
		t.Errorf("PickNumber(new key) = %d, %v; want a free number in %d..%d", n, err, RuleMin, RuleMax)
	}
	if again, _ := PickNumber(rs, "0_10.0.0.2_8080"); again != n {
		t.Errorf("PickNumber is not stable: %d then %d", n, again)
	}
	var full []Rule
	for i := RuleMin; i <= RuleMax; i++ {
		full = append(full, Rule{Num: i, Set: 0})
	}
	if _, err := PickNumber(full, "k"); err == nil {
		t.Error("PickNumber found a number in a full range")
	}
}

// fakeIpfw keeps rules the way ipfw -S list shows them.
type fakeIpfw struct{ rules []string }

func (f *fakeIpfw) run(args ...string) (string, error) {
	switch {
	case slices.Equal(args, []string{"-S", "list"}):
		return strings.Join(f.rules, "\n"), nil
	case len(args) > 4 && args[1] == "add":
		body := strings.Join(args[5:len(args)-2], " ")
		f.rules = append(f.rules, fmt.Sprintf("%05s set %s %s // %s", args[2], args[4], body, args[len(args)-1]))
		return "", nil
	case len(args) == 3 && args[1] == "delete":
		f.rules = slices.DeleteFunc(f.rules, func(r string) bool { return strings.HasPrefix(r, fmt.Sprintf("%05s ", args[2])) })
		return "", nil
	}
	return "", errors.New("fake ipfw: unexpected " + strings.Join(args, " "))
}

func TestGateArmDisarm(t *testing.T) {
	f := &fakeIpfw{rules: []string{"00100 set 0 allow ip from any to any via lo0"}}
	g, err := newGate(gate.Listener{Addr: netip.MustParseAddrPort("[::]:8080")}, f.run)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := g.Arm(); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.rules) != 3 {
		t.Errorf("after Arm twice: rules %q, want lo0 and two (me, me6)", f.rules)
	}
	if armed, err := g.Armed(); err != nil || !armed {
		t.Fatalf("Armed = %v, %v", armed, err)
	}
	for range 2 {
		if err := g.Disarm(); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.rules) != 1 || !strings.Contains(f.rules[0], "via lo0") {
		t.Errorf("after Disarm: rules %q, want only lo0's", f.rules)
	}
}

func TestArmFailureLeavesNoRule(t *testing.T) {
	f := &fakeIpfw{}
	adds := 0
	g, err := newGate(gate.Listener{Addr: netip.MustParseAddrPort("[::]:8080")}, func(args ...string) (string, error) {
		if len(args) > 1 && args[1] == "add" {
			if adds++; adds == 2 {
				return "", errors.New("ipfw: rule me6: Invalid argument")
			}
		}
		return f.run(args...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Arm(); err == nil {
		t.Fatal("Arm succeeded though the second rule failed")
	}
	if len(f.rules) != 0 {
		t.Errorf("a failed Arm left rules %q", f.rules)
	}
}
