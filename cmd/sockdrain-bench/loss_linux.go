package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/benchmark"
	"github.com/sockdrain/sockdrain/internal/rig/demoserver"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/rig/stoploss"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Load shape for every loss stop.
const (
	lossWorkers = 64
	lossWarmup  = 300 * time.Millisecond
	lossAfter   = 100 * time.Millisecond // clients keep knocking after the stop
	lossAttempt = time.Second            // an attempt's deadline: a timeout is a hang this long
)

// strategy is one way to stop a server: how to start it, and which
// sockdrain gate, if any, drains it first. The control does not stop the
// server until the load has ended: what its clients lose, the load alone
// costs.
type strategy struct {
	name    string
	gate    string
	control bool
	start   func(*netns.NS) (server, error)
}

var strategies = []strategy{
	{name: "no stop (control)", control: true, start: startClose},
	{name: "close() on the listener", start: startClose},
	{name: "shutdown(SHUT_RD), then close()", start: startShutdown},
	{name: "Go http.Server.Shutdown", start: startHTTP},
	{name: "nginx -s quit", start: startNginx},
	{name: "sockdrain.Drain (reuseport), then close()", gate: gate.Reuseport, start: startClose},
	{name: "sockdrain.Drain (sklookup), then close()", gate: gate.SKLookup, start: startClose},
	{name: "sockdrain.Drain (nftables), then close()", gate: gate.NFTables, start: startClose},
}

// level is one load level: a cap on new connections per second, 0 for as
// fast as the clients go.
type level struct {
	name string
	rate float64
}

// stopResult is what one stop's clients saw: the attempts that ended at or
// after the stop began, those the stop could touch.
type stopResult struct {
	counts loadgen.Counts
	rate   float64 // conn/s before the stop
	drops  int64   // the kernel's ListenDrops from the stop to the end
	sample string  // one bad outcome, if any
}

// measureMax runs unlimited load at the demo server and returns the rate.
func measureMax(ctx context.Context) (float64, error) {
	ns, srv, end, err := demoInNewNS()
	if err != nil {
		return 0, err
	}
	defer end()
	res, err := loadgen.Run(ctx, loadgen.Config{Addr: srv.Addr().String(), Workers: lossWorkers,
		Duration: 2 * time.Second, AttemptTimeout: lossAttempt, Dial: loadgen.DialIn(ns)})
	return res.PerSecond(), err
}

// lossStop loads one server, stops it the strategy's way, and counts what
// the clients saw.
func lossStop(ctx context.Context, st strategy, lv level) (stopResult, error) {
	ns, err := newNS()
	if err != nil {
		return stopResult{}, err
	}
	defer ns.Remove()
	srv, err := st.start(ns)
	if err != nil {
		return stopResult{}, err
	}
	load, err := loadgen.Start(ctx, loadgen.Config{Addr: srv.Addr().String(), Path: srv.Path(),
		Workers: lossWorkers, Rate: lv.rate, Duration: 30 * time.Second, AttemptTimeout: lossAttempt,
		CheckBody: true, Dial: loadgen.DialIn(ns)})
	if err != nil {
		srv.Stop()
		return stopResult{}, err
	}
	start := time.Now()
	time.Sleep(lossWarmup)
	rate := float64(load.Counts().Total()) / time.Since(start).Seconds()
	drops, dropErr := listenDrops(ns)
	var stop func() error
	if !st.control {
		stop = func() error { return stopWith(ctx, ns, srv, st.gate) }
	}
	res, err := stoploss.Measure(load, stop, lossAfter)
	after, dropErr2 := listenDrops(ns)
	var stopErr error
	if st.control {
		stopErr = ignoreStopTimeout(srv.Stop())
	}
	r := stopResult{counts: res.SinceMark, rate: rate, drops: after - drops}
	if len(res.Samples) > 0 {
		r.sample = res.Samples[0].String()
	}
	return r, errors.Join(err, stopErr, dropErr, dropErr2)
}

// stopWith drains srv with gate first, if gate is set, then stops it; a
// drained gate is then opened again, so nothing outlives the namespace.
func stopWith(ctx context.Context, ns *netns.NS, srv server, gate string) error {
	stop := func() error { return ignoreStopTimeout(srv.Stop()) }
	if gate == "" {
		return stop()
	}
	t := sockdrain.Target{Addr: srv.Addr().Addr(), Port: srv.Addr().Port(), NetNS: ns.Path()}
	_, err := stoploss.DrainThenStop(ctx, t, sockdrain.Options{Backend: gate, Timeout: 20 * time.Second}, stop)
	if err != nil {
		return fmt.Errorf("drain with %s, then stop: %w", gate, err)
	}
	return nil
}

// ignoreStopTimeout: a stop that had to cut requests is a result the
// clients report (as resets), not a failure of the bench.
func ignoreStopTimeout(err error) error {
	if errors.Is(err, demoserver.ErrStopTimeout) {
		return nil
	}
	return err
}

// lossCell holds the stops of one strategy at one level.
type lossCell struct {
	stops   []stopResult
	samples []string
}

// runLoss runs n rounds; each round stops once per strategy and level, in
// a rotated order, so every cell sees the same drift of the machine.
func runLoss(ctx context.Context, lock kernelLock, n int) (*benchmark.Table, error) {
	var max float64
	err := lock.hold(func() (err error) { max, err = measureMax(ctx); return err })
	if err != nil {
		return nil, fmt.Errorf("measure the most load: %w", err)
	}
	progress("loss: this machine sustains %.0f conn/s against the demo server", max)
	levels := []level{{"1k conn/s", 1000}, middleLevel(max), {"unlimited", 0}}
	cells := map[[2]int]*lossCell{}
	for round := range n {
		for li, lv := range levels {
			err := lock.hold(func() error { return lossRound(ctx, round, li, lv, cells) })
			if err != nil {
				return nil, err
			}
		}
		progress("loss: round %d/%d done", round+1, n)
	}
	return lossTable(levels, cells, n, max), nil
}

func lossRound(ctx context.Context, round, li int, lv level, cells map[[2]int]*lossCell) error {
	for k := range strategies {
		si := (k + round) % len(strategies)
		r, err := lossStop(ctx, strategies[si], lv)
		if err != nil {
			return fmt.Errorf("stop %q at %s: %w", strategies[si].name, lv.name, err)
		}
		c := cells[[2]int{si, li}]
		if c == nil {
			c = &lossCell{}
			cells[[2]int{si, li}] = c
		}
		c.stops = append(c.stops, r)
		if r.sample != "" && len(c.samples) < 3 {
			c.samples = append(c.samples, r.sample)
		}
		if !strategies[si].control && strategies[si].gate != "" && r.counts.Bad() > 0 {
			progress("loss: BAD outcome with sockdrain (%s) at %s: %+v; %s", strategies[si].gate, lv.name, r.counts, r.sample)
		}
	}
	return nil
}

// middleLevel is 10k conn/s, or half the most this machine sustains when
// 10k is not well below it.
func middleLevel(max float64) level {
	if max >= 15000 {
		return level{"10k conn/s", 10000}
	}
	r := math.Round(max/2/500) * 500
	return level{fmt.Sprintf("%.1fk conn/s (half the max)", r/1000), r}
}
