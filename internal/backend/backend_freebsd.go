package backend

import (
	"github.com/sockdrain/sockdrain/sockdrain/gate"
	"github.com/sockdrain/sockdrain/sockdrain/gate/ipfw"
	"github.com/sockdrain/sockdrain/sockdrain/gate/pf"
	"github.com/sockdrain/sockdrain/sockdrain/gate/shutdown"
)

// All are the FreeBSD gates, in the order --backend auto tries them. pf
// and ipfw refuse only SYNs and need no socket; shutdown needs a socket
// sockdrain holds, which only `sockdrain run` gives it, and FreeBSD 10 or
// older.
var All = []Backend{
	{
		Name: gate.PF, Probe: pf.Probe,
		Open: func(l gate.Listener) (gate.Gate, error) { return pf.Open(l) },
		Note: "refuses only SYNs (flags S/SA); needs anchor \"sockdrain/*\" before pf.conf's pass rules; loopback bypasses it under 'set skip on lo0'",
		Why:  "pf is enabled and its main ruleset loads the sockdrain anchor",
	},
	{
		Name: gate.IPFW, Probe: ipfw.Probe, Open: openIpfw,
		Note: "refuses only SYNs (setup); with pf enabled, it also loads pf rules that keep no state for those SYNs, which need pf's sockdrain anchor",
		Why:  "ipfw is loaded",
	},
	{
		Name: gate.Shutdown, Probe: shutdown.Probe, NeedsSockets: true,
		Open: func(l gate.Listener) (gate.Gate, error) { return shutdown.Open(l) },
		Note: "FreeBSD 10 and older only; one-way: the socket stays refusing until closed",
		Why:  "this kernel still refuses SYNs on a listener after shutdown()",
	},
}
