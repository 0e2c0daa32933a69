package reuseport

import (
	"testing"

	"github.com/sockdrain/sockdrain/sockdrain/nstest"
)

// BenchmarkConnectAccept measures connect+accept+close on loopback with no
// gate, and with the gate's program attached but its flag clear. With
// sysctl kernel.bpf_stats_enabled=1 it also reports the program's
// kernel-measured cost per run.
func BenchmarkConnectAccept(b *testing.B) {
	for _, attached := range []bool{false, true} {
		name := map[bool]string{false: "none", true: "disarmed"}[attached]
		b.Run(name, func(b *testing.B) {
			ns := nstest.New(b)
			srv := listen(b, ns, listenOpts{network: "tcp4", addr: "127.0.0.1:0", sockets: 1, reuseport: true})
			var g *Gate
			if attached {
				g = attachDisarmed(b, srv)
			}
			b.ResetTimer()
			for b.Loop() {
				mustDial(b, ns, srv.addr).Close()
				srv.accept(b).Close()
			}
			if g != nil {
				reportRunCost(b, g)
			}
		})
	}
}

func attachDisarmed(b *testing.B, srv *server) *Gate {
	g, err := Open(srv.gl)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Disarm() })
	if err := g.Arm(); err != nil {
		b.Fatal(err)
	}
	if err := g.setFlag(0); err != nil {
		b.Fatal(err)
	}
	return g
}

func reportRunCost(b *testing.B, g *Gate) {
	st, err := g.objs.Prog.Stats()
	if err != nil {
		b.Fatal(err)
	}
	if st.RunCount > 0 {
		b.ReportMetric(float64(st.Runtime.Nanoseconds())/float64(st.RunCount), "bpf-ns/run")
	}
}
