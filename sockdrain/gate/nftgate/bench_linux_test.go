package nftgate

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// BenchmarkArmDisarm times one Arm and one Disarm over netlink, each with
// its lookups: alone, where they make and delete the table, and next to
// another listener's rule, where only the rule changes; and tied, where it
// also marks and unmarks the listener's socket. It compares them
// with the same rule added and removed by exec'ing nft twice.
//
//	go test -run '^$' -bench ArmDisarm ./sockdrain/gate/nftgate/
func BenchmarkArmDisarm(b *testing.B) {
	ap := netip.MustParseAddrPort("127.0.0.1:8080")
	b.Run("netlink", func(b *testing.B) {
		ns := newTestNS(b)
		g := openGate(b, gate.Listener{NetNS: ns.file, NetNSInode: ns.inode, Addr: ap})
		for b.Loop() {
			mustArm(b, g)
			mustDisarm(b, g)
		}
	})
	b.Run("netlink tied", func(b *testing.B) {
		ns := newTestNS(b)
		g := openGate(b, ns.listener(b, ns.listen(b, "tcp4", ap.String())))
		if !g.Tied() {
			b.Fatalf("gate not tied: %v", g.WhyUntied())
		}
		for b.Loop() {
			mustArm(b, g)
			mustDisarm(b, g)
		}
	})
	b.Run("netlink table kept", func(b *testing.B) {
		ns := newTestNS(b)
		other := openGate(b, gate.Listener{NetNS: ns.file, NetNSInode: ns.inode, Addr: netip.AddrPortFrom(ap.Addr(), 9)})
		mustArm(b, other)
		g := openGate(b, gate.Listener{NetNS: ns.file, NetNSInode: ns.inode, Addr: ap})
		for b.Loop() {
			mustArm(b, g)
			mustDisarm(b, g)
		}
	})
	b.Run("nft", func(b *testing.B) {
		if _, err := exec.LookPath("nft"); err != nil {
			b.Skip("nft not installed")
		}
		ns := newTestNS(b)
		arm := fmt.Sprintf(`add table inet %[1]s
add chain inet %[1]s %[2]s { type filter hook input priority %[3]d; policy accept; }
add rule inet %[1]s %[2]s ip daddr %[4]s tcp dport %[5]d tcp flags & (syn|ack) == syn reject with tcp reset comment "bench"
`, TableName, ChainName, ChainPriority, ap.Addr(), ap.Port())
		nft(b, ns, arm, "-f", "-")
		if keys := ns.ourRules(b); len(keys) != 1 {
			b.Fatalf("nft did not add the rule in the test namespace: rules %q", keys)
		}
		nft(b, ns, "", "delete", "table", "inet", TableName)
		for b.Loop() {
			nft(b, ns, arm, "-f", "-")
			nft(b, ns, "", "delete", "table", "inet", TableName)
		}
	})
}

// nft runs the nft command inside ns: the child is forked from a thread
// that has entered ns, so it starts there.
func nft(b *testing.B, ns *testNS, stdin string, args ...string) {
	b.Helper()
	err := ns.Do(func() error {
		cmd := exec.Command("nft", args...)
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nft %q: %w: %s", args, err, out)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
