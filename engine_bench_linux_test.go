package sockdrain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// These benchmarks chose between destroy events and polling alone. Run them
// with -benchtime=1x: each does its own fixed number of trials, alternating
// the modes, and reports medians.
var (
	benchTrials = flag.Int("sockdrain.trials", 20, "drained-detection trials per mode")
	benchWait   = flag.Duration("sockdrain.wait", 60*time.Second, "how long each mode of BenchmarkDrainWaitCPU waits")
)

// pollOnly hides a watcher's destroy events from the engine.
type pollOnly struct{ watcher }

// countingWatcher counts the engine's polls.
type countingWatcher struct {
	watcher
	polls int
}

func (w *countingWatcher) poll(follow []netip.AddrPort, activity bool) ([]Listener, []observe.Socket, error) {
	w.polls++
	return w.watcher.poll(follow, activity)
}
func (w *countingWatcher) destroyed() (<-chan struct{}, func(), error) {
	return w.watcher.(notifier).destroyed()
}

// benchNetNS is a namespace with a listener and others sockets elsewhere.
type benchNetNS struct {
	ns  *netns.NS
	ln  *net.TCPListener
	obs *Observer
}

func newBenchNetNS(b *testing.B, others int) *benchNetNS {
	ns := nstest.New(b)
	ln := nstest.Listen(b, ns, "127.0.0.1:0", nil)
	for others > 0 { // unaccepted connections: two sockets per descriptor
		filler := nstest.Listen(b, ns, "127.0.0.1:0", nil)
		for range min(others/2, 2000) {
			nstest.Dial(b, ns, filler.Addr().String())
			others -= 2
		}
	}
	obs, err := NewObserver(Target{Port: uint16(ln.Addr().(*net.TCPAddr).Port), NetNS: ns.Path()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { obs.Close() })
	return &benchNetNS{ns: ns, ln: ln, obs: obs}
}

// connect opens a connection to the listener and accepts it.
func (n *benchNetNS) connect(b *testing.B) (client, server net.Conn) {
	c, err := nstest.DialErr(n.ns, n.ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	n.ln.SetDeadline(time.Now().Add(2 * time.Second))
	s, err := n.ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	return c, s
}

// benchEngine is an engine on w with a gate that does nothing: the
// benchmarks time the observing, not the gate.
func benchEngine(w watcher, onReport func(Report)) *engine {
	return &engine{opts: Options{OnReport: onReport}, watch: w, gates: gates{&fakeGate{}}, backend: "none",
		clock: realClock{}, release: func() {}, rollback: func() error { return nil }}
}

// detectDrained drains n while one connection is open, closes it after a
// quiet period, and returns the time from the server's close to the
// Drained report.
func detectDrained(b *testing.B, n *benchNetNS, w watcher, quiet time.Duration) time.Duration {
	c, s := n.connect(b)
	drained := make(chan time.Time, 1)
	e := benchEngine(w, func(r Report) {
		if r.Phase == Drained {
			drained <- time.Now()
		}
	})
	ctx, cancel := context.WithTimeout(b.Context(), quiet+10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := e.run(ctx); done <- err }()
	time.Sleep(quiet)
	c.Close()
	s.Close()
	closed := time.Now()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return (<-drained).Sub(closed)
}

func BenchmarkDrainedDetection(b *testing.B) {
	for _, others := range []int{0, 20_000} {
		b.Run(fmt.Sprintf("sockets=%d", others), func(b *testing.B) {
			n := newBenchNetNS(b, others)
			modes := map[string]watcher{"events": n.obs, "poll": pollOnly{n.obs}}
			lat := map[string][]time.Duration{}
			for b.Loop() {
				for range *benchTrials {
					quiet := 300*time.Millisecond + rand.N(1200*time.Millisecond)
					for _, m := range []string{"events", "poll"} {
						lat[m] = append(lat[m], detectDrained(b, n, modes[m], quiet))
					}
				}
			}
			for m, ds := range lat {
				p50, p90 := percentile(ds, 50), percentile(ds, 90)
				b.ReportMetric(float64(p50.Microseconds())/1e3, "ms-p50-"+m)
				b.ReportMetric(float64(p90.Microseconds())/1e3, "ms-p90-"+m)
				b.Logf("%s: p50 %s p90 %s max %s over %d trials", m, p50, p90, slices.Max(ds), len(ds))
			}
		})
	}
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	return s[(len(s)-1)*p/100]
}

// cpuTime is the CPU this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitCPU runs a drain on w for d while connections stay open, and returns
// the CPU it used and its polls.
func waitCPU(b *testing.B, w watcher, d time.Duration) (time.Duration, int) {
	cw := &countingWatcher{watcher: w}
	var e *engine
	if _, ok := w.(notifier); ok {
		e = benchEngine(cw, nil)
	} else {
		e = benchEngine(struct{ watcher }{cw}, nil)
	}
	ctx, cancel := context.WithTimeout(b.Context(), d)
	defer cancel()
	before := cpuTime(b)
	if _, err := e.run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		b.Fatalf("drain ended before its %s wait: %v", d, err)
	}
	return cpuTime(b) - before, cw.polls
}

// pollEvery polls w every interval for d, as a plain poll fast enough for
// 10 ms detection would, and returns the CPU it used.
func pollEvery(b *testing.B, w watcher, interval, d time.Duration) (time.Duration, int) {
	before, polls := cpuTime(b), 0
	for end := time.Now().Add(d); time.Now().Before(end); polls++ {
		w.poll(nil, true)
		time.Sleep(interval)
	}
	return cpuTime(b) - before, polls
}

func BenchmarkDrainWaitCPU(b *testing.B) {
	n := newBenchNetNS(b, 20_000)
	var open []net.Conn // long-lived: kept from the collector until the end
	for range 10 {
		c, s := n.connect(b)
		open = append(open, c, s)
	}
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	d := *benchWait
	for b.Loop() {
		for _, m := range []struct {
			name string
			run  func() (time.Duration, int)
		}{
			{"poll", func() (time.Duration, int) { return waitCPU(b, pollOnly{n.obs}, d) }},
			{"events", func() (time.Duration, int) { return waitCPU(b, n.obs, d) }},
			{"poll-10ms", func() (time.Duration, int) { return pollEvery(b, n.obs, 10*time.Millisecond, d/6) }},
		} {
			span := d
			if m.name == "poll-10ms" {
				span = d / 6
			}
			cpu, polls := m.run()
			pct := 100 * cpu.Seconds() / span.Seconds()
			b.ReportMetric(pct, "%cpu-"+m.name)
			b.Logf("%s: %s CPU over %s (%.3f%% of a core), %d polls", m.name, cpu, span, pct, polls)
		}
	}
}
