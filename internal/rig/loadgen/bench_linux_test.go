package loadgen_test

import (
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/demoserver"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// BenchmarkLoadDemoServer drives 32 workers at a zero-delay demo server in
// a test netns for 3s and reports new connections per second. The worker
// variant pins each worker's thread in the netns (Config.Do); the socket
// variant enters the netns only to create each socket (Config.Dial).
func BenchmarkLoadDemoServer(b *testing.B) {
	b.Run("worker-in-netns", func(b *testing.B) {
		benchLoad(b, func(ns *netns.NS, cfg *loadgen.Config) { cfg.Do = ns.Do })
	})
	b.Run("socket-in-netns", func(b *testing.B) {
		benchLoad(b, func(ns *netns.NS, cfg *loadgen.Config) { cfg.Dial = loadgen.DialIn(ns) })
	})
}

func benchLoad(b *testing.B, place func(*netns.NS, *loadgen.Config)) {
	ns := nstest.New(b)
	srv, err := demoserver.Start(demoserver.Config{Do: ns.Do, Listeners: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	cfg := loadgen.Config{Addr: srv.Addr().String(), Workers: 32, Duration: 3 * time.Second}
	place(ns, &cfg)
	var total, bad int64
	var elapsed time.Duration
	var lastSamples []loadgen.Sample
	for b.Loop() {
		res, err := loadgen.Run(b.Context(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		lastSamples = res.Samples
		total, bad, elapsed = total+res.Total, bad+res.Counts.Bad()+res.Counts.Refused, elapsed+res.Duration
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "conns/s")
	b.ReportMetric(float64(bad), "bad")
	if bad > 0 {
		b.Logf("%+v", lastSamples)
	}
}
