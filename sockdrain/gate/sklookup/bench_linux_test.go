package sklookup

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
)

// BenchmarkConnectAccept measures connect+accept+close on loopback with no
// gate, and with the gate's program attached but not armed. With
// sysctl kernel.bpf_stats_enabled=1 it also reports the program's
// kernel-measured cost per run.
func BenchmarkConnectAccept(b *testing.B) {
	opts := gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0", Sockets: 1}
	ours.BenchConnectAccept(b, opts, func(b *testing.B, srv *gatetest.Server) *ebpf.Program {
		return attachDisarmed(b, srv).objs.Prog
	})
}

func attachDisarmed(b *testing.B, srv *gatetest.Server) *Gate {
	return gatetest.ArmedThenCleared(b, srv, Open, func(g *Gate) error { return g.writeConfig(0) })
}
