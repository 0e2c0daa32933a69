package nftgate

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// addUserTable makes a table of someone else's with a counter rule in an
// input base chain, and returns a description of it to compare later.
func addUserTable(tb testing.TB, ns *testNS, t *nftables.Table) {
	tb.Helper()
	c := ns.conn(tb)
	c.AddTable(t)
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{&expr.Counter{}}})
	if err := c.Flush(); err != nil {
		tb.Fatalf("add user table %s: %v", t.Name, err)
	}
}

func userRules(tb testing.TB, ns *testNS, t *nftables.Table) int {
	tb.Helper()
	rules, err := ns.conn(tb).GetRules(t, &nftables.Chain{Name: "input", Table: t})
	if err != nil {
		tb.Fatalf("list rules of %s: %v", t.Name, err)
	}
	return len(rules)
}

// TestOtherTablesUntouched arms and disarms next to a user's inet table
// and a user's "ip sockdrain" table (same name, other family).
func TestOtherTablesUntouched(t *testing.T) {
	gatetest.RequireKernel(t, "nftables")
	ns := newTestNS(t)
	users := []*nftables.Table{
		{Name: "mine", Family: nftables.TableFamilyINet},
		{Name: TableName, Family: nftables.TableFamilyIPv4},
	}
	for _, u := range users {
		addUserTable(t, ns, u)
	}
	before := ns.tables(t)
	_, g := ns.openOnLoopback(t)
	mustArm(t, g)
	mustDisarm(t, g)
	if after := ns.tables(t); !slices.Equal(before, after) {
		t.Errorf("tables before arm %q, after disarm %q", before, after)
	}
	for _, u := range users {
		if n := userRules(t, ns, u); n != 1 {
			t.Errorf("table %d %s holds %d rules, want its 1", u.Family, u.Name, n)
		}
	}
}

// TestForeignRuleInOurChain: a rule someone added to our chain survives
// Disarm, and so does the table that holds it.
func TestForeignRuleInOurChain(t *testing.T) {
	gatetest.RequireKernel(t, "nftables")
	ns := newTestNS(t)
	_, g := ns.openOnLoopback(t)
	mustArm(t, g)
	c := ns.conn(t)
	tb := table()
	c.AddRule(&nftables.Rule{Table: tb, Chain: chain(tb), Exprs: []expr.Any{&expr.Counter{}}, UserData: comment("someone else")})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	mustDisarm(t, g)
	if keys := ns.ourRules(t); !slices.Equal(keys, []string{"someone else"}) {
		t.Fatalf("rules after disarm: %q, want only the foreign one", keys)
	}
	mustArmed(t, g, false)
}

// TestArmFailureLeavesNothing: when our chain name is taken by a regular
// chain, Arm's batch fails as a whole and adds no rule.
func TestArmFailureLeavesNothing(t *testing.T) {
	gatetest.RequireKernel(t, "nftables")
	ns := newTestNS(t)
	c := ns.conn(t)
	tb := c.AddTable(table())
	c.AddChain(&nftables.Chain{Name: ChainName, Table: tb})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	ln, g := ns.openOnLoopback(t)
	if err := g.Arm(); err == nil {
		t.Fatal("Arm over a regular chain named input succeeded")
	}
	if keys := ns.ourRules(t); len(keys) != 0 {
		t.Fatalf("rules after failed Arm: %q", keys)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	if len(chains) != 1 || chains[0].Hooknum != nil {
		t.Fatalf("chains after failed Arm: %d, first %+v; want the one regular chain", len(chains), chains[0])
	}
	ns.mustServe(t, ln, ln.Addr().(*net.TCPAddr).AddrPort())
}

func TestProbe(t *testing.T) {
	gatetest.RequireKernel(t, "nftables")
	ns := newTestNS(t)
	if err := probe(ns.FD()); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if ts := ns.tables(t); len(ts) != 0 {
		t.Fatalf("probe left tables %q", ts)
	}
}

func TestOpenRejectsNoPort(t *testing.T) {
	gatetest.RequireKernel(t, "nftables")
	for _, ap := range []netip.AddrPort{{}, netip.MustParseAddrPort("127.0.0.1:0")} {
		if g, err := Open(gate.Listener{Addr: ap}); err == nil {
			g.Close()
			t.Errorf("Open(%v) succeeded", ap)
		}
	}
}

// TestDisarmRace: Disarm read the table when only its rule was there, and
// another process added a rule before Disarm's batch. The kernel refuses
// to drop the table; Disarm deletes its own rule and keeps the other.
func TestDisarmRace(t *testing.T) {
	gatetest.RequireKernel(t, "nftables")
	ns := newTestNS(t)
	_, g := ns.openOnLoopback(t)
	mustArm(t, g)
	stale, err := g.state()
	if err != nil {
		t.Fatal(err)
	}
	if !stale.onlyOurs() {
		t.Fatalf("state %+v, want only our rule", stale)
	}
	c := ns.conn(t)
	tb := table()
	c.AddRule(&nftables.Rule{Table: tb, Chain: chain(tb), Exprs: []expr.Any{&expr.Counter{}}, UserData: comment("late")})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := g.remove(stale); err != nil {
		t.Fatal(err)
	}
	if keys := ns.ourRules(t); !slices.Equal(keys, []string{"late"}) {
		t.Fatalf("rules after racing disarm: %q, want only the late one", keys)
	}
}
