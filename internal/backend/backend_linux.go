package backend

import (
	"fmt"
	"os"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
	"github.com/sockdrain/sockdrain/sockdrain/gate/nftgate"
	"github.com/sockdrain/sockdrain/sockdrain/gate/reuseport"
	"github.com/sockdrain/sockdrain/sockdrain/gate/sklookup"
)

// All are the Linux gates, in the order --backend auto tries them.
var All = []Backend{
	{
		Name: gate.Reuseport, Probe: withKernel(gate.Reuseport, reuseport.Probe), Ready: withKernel(gate.Reuseport, reuseport.Ready),
		NeedsSockets: true,
		Open:         func(l gate.Listener) (gate.Gate, error) { return reuseport.Open(l) },
		Forget:       reuseport.Forget, Pinned: reuseport.Pinned, PinnedOn: pinnedOn(gate.Reuseport),
		Note: "needs SO_REUSEPORT set before bind and a non-MPTCP socket; refuses only pure SYNs, so SYN-cookie handshakes complete",
		Why:  "an SO_REUSEPORT listener: refuses only pure SYNs, and dies with the socket",
	},
	{
		Name: gate.SKLookup, Probe: withKernel(gate.SKLookup, sklookup.Probe), Pinned: sklookup.Pinned,
		PinnedOn: pinnedOn(gate.SKLookup),
		Open:     func(l gate.Listener) (gate.Gate, error) { return sklookup.Open(l) },
		Note: "works on any listener, MPTCP too; cannot see TCP flags, so with SYN cookies in use a handshake completed " +
			"after arming gets ECONNRESET; another sk_lookup program that assigns sockets overrides it",
		Why:         "works on any listener and opens by itself when the listener closes",
		CookieBlind: true, Warn: sklookupWarnings,
	},
	{
		Name: gate.NFTables, Probe: withKernel(gate.NFTables, nftgate.Probe), Ready: withKernel(gate.NFTables, openChecks),
		Open: func(l gate.Listener) (gate.Gate, error) { return nftgate.Open(l) },
		Note: "works on any listener and refuses only pure SYNs; opens by itself when the listener closes only if sockdrain could mark its socket (tied), otherwise run resume",
		Why:  "refuses only pure SYNs, needs no BPF",
	},
}

// withKernel checks the running kernel against the gate's minimum (the
// one table, gate.Minimums) before running the gate's own probe.
func withKernel(name string, probe func() error) func() error {
	return func() error {
		if err := gate.CheckKernel(name); err != nil {
			return err
		}
		return probe()
	}
}

// sklookupWarnings: other sk_lookup programs may override the gate, and
// SYN cookies make it reset handshakes completed after arming.
func sklookupWarnings(netns *os.File, syncookies string) []string {
	var w []string
	if others, err := sklookup.OtherPrograms(netns); err == nil && len(others) > 0 {
		w = append(w, fmt.Sprintf("%d other sk_lookup program(s) attached to this netns (%v): one that assigns sockets overrides the drop", len(others), others))
	}
	switch syncookies {
	case "1":
		w = append(w, "tcp_syncookies=1: if a SYN flood makes the kernel send cookies, a cookie handshake completed after arming gets a reset (--backend nftables or reuseport avoid it)")
	case "2":
		w = append(w, "tcp_syncookies=2: a handshake completed after arming gets a reset (--backend nftables or reuseport avoid it)")
	}
	return w
}

// pinnedOn reports whether a listener has pins of the gate called name.
func pinnedOn(name string) func(gate.Listener) (bool, error) {
	return func(l gate.Listener) (bool, error) { return bpffs.Exists(bpffs.Key(name, l)) }
}

// openChecks is the Ready of a gate whose Open checks what a drain needs
// (nftgate.Open reads its chains). Probe's batch deletes the table it
// adds, and the kernel destroys it an RCU grace period later; until then
// any close of a netfilter socket waits, holding the lock every nftables
// commit takes, so a drain opens none it would close before the arm.
func openChecks() error { return nil }
