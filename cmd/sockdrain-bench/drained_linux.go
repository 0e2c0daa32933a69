package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/sockdrain/benchmark"
	"github.com/sockdrain/sockdrain/sockdrain/netns"
)

// Shape of the drained-detection runs.
const (
	drainedRuns  = 20
	drainedConns = 10
)

// drainedIdles are how long the connections stay open, unchanged, before
// they close: a poll that backs off while nothing changes is slower to see
// the end after a long wait.
var drainedIdles = []time.Duration{0, 200 * time.Millisecond, time.Second}

// drainedLatency drains a listener with drainedConns open connections,
// waits idle, closes them, and returns the time from the last close to the
// Drained report's timestamp (the library's OnReport).
func drainedLatency(ctx context.Context, idle time.Duration) (time.Duration, error) {
	ns, err := newNS()
	if err != nil {
		return 0, err
	}
	defer ns.Remove()
	var ln int
	var addr netip.AddrPort
	if err := ns.Do(func() (err error) { ln, addr, err = rawListen(); return err }); err != nil {
		return 0, err
	}
	defer unix.Close(ln)
	p, err := connectPairs(ns, ln, addr, drainedConns)
	if err != nil {
		return 0, err
	}
	defer p.close()
	t := sockdrain.Target{Addr: addr.Addr(), Port: addr.Port(), NetNS: ns.Path()}
	reports := make(chan sockdrain.Report, 64)
	done := make(chan error, 1)
	go func() {
		_, err := sockdrain.Drain(ctx, t, sockdrain.Options{Backend: "sklookup", Timeout: 20 * time.Second,
			OnReport: func(r sockdrain.Report) { reports <- r }})
		done <- err
	}()
	lat, err := closeAndWait(ns, p, idle, reports)
	err = errors.Join(err, <-done)
	_, rerr := sockdrain.Resume(ctx, t)
	return lat, errors.Join(err, rerr)
}

// closeAndWait waits until the drain sees every connection established,
// then idle, closes them, and waits for the Drained report.
func closeAndWait(ns *netns.NS, p *pairs, idle time.Duration, reports <-chan sockdrain.Report) (time.Duration, error) {
	timeout := time.After(20 * time.Second)
	for seen := false; !seen; {
		select {
		case r := <-reports:
			seen = r.Established == drainedConns && r.Phase == sockdrain.BacklogEmpty
		case <-timeout:
			return 0, fmt.Errorf("the drain never saw %d established", drainedConns)
		}
	}
	time.Sleep(idle)
	p.close()
	closed := time.Now()
	for {
		select {
		case r := <-reports:
			if r.Phase == sockdrain.Drained {
				return r.Time.Sub(closed), nil
			}
		case <-timeout:
			return 0, fmt.Errorf("no drained report")
		}
	}
}

// runDrained interleaves the idle times in each run.
func runDrained(ctx context.Context, _ config, lock kernelLock) (*benchmark.Table, error) {
	res := make([][]time.Duration, len(drainedIdles))
	for run := range drainedRuns {
		err := lock.hold(func() error {
			for i, idle := range drainedIdles {
				d, err := drainedLatency(ctx, idle)
				if err != nil {
					return fmt.Errorf("drained latency after %s idle: %w", idle, err)
				}
				res[i] = append(res[i], d)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if (run+1)%5 == 0 {
			progress("drained detection: %d/%d runs done", run+1, drainedRuns)
		}
	}
	t := &benchmark.Table{
		Title: "5. Drained-detection latency",
		Notes: []string{fmt.Sprintf("sockdrain.Drain (library, sklookup gate) on a listener with %d accepted connections open. Once a report shows "+
			"them all established, the bench waits the idle time, closes every connection (clients, then server ends) and takes the time; "+
			"the figure is from there to the timestamp of the Drained report (OnReport). This measures the engine in this tree, whatever "+
			"its mechanism (polling that backs off while nothing changes, or events).", drainedConns)},
		Header: []string{"idle before the close", "close → drained: median [min–max] (N)", "IQR"},
	}
	for i, idle := range drainedIdles {
		s := benchmark.SummarizeDurations(res[i])
		t.AddRow(idle.String(), s.Format(benchmark.Seconds), benchmark.Seconds(s.Q1)+"–"+benchmark.Seconds(s.Q3))
	}
	return t, nil
}
