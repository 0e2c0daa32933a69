package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/benchmark"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
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

// drainedMode is one way to run the drain and hear its reports.
type drainedMode struct {
	name string
	// start begins a drain of t that sends its reports on reports, and
	// returns a function that waits for the drain to end.
	start func(ctx context.Context, cli string, t sockdrain.Target, reports chan<- drainedReport) func() error
}

// drainedReport is the part of a report the latency needs: when it was
// made (library) or read (CLI), how far the drain got, and what it counted.
type drainedReport struct {
	Time        time.Time       `json:"time"`
	Phase       sockdrain.Phase `json:"phase"`
	Established int             `json:"established"`
}

var drainedModes = []drainedMode{
	{name: "library: sockdrain.Drain, OnReport's timestamp", start: libraryDrain},
	{name: "CLI: `sockdrain drain --json`, when its line is read", start: cliDrain},
}

func libraryDrain(ctx context.Context, _ string, t sockdrain.Target, reports chan<- drainedReport) func() error {
	done := make(chan error, 1)
	go func() {
		_, err := sockdrain.Drain(ctx, t, sockdrain.Options{Backend: gate.SKLookup, Timeout: 20 * time.Second,
			OnReport: func(r sockdrain.Report) {
				reports <- drainedReport{Time: r.Time, Phase: r.Phase, Established: r.Established}
			}})
		done <- err
	}()
	return func() error { return <-done }
}

// cliDrain runs the CLI with JSON lines on a pipe, and stamps each line
// with the time it was read: what a pipeline reading the output sees.
func cliDrain(ctx context.Context, cli string, t sockdrain.Target, reports chan<- drainedReport) func() error {
	cmd := exec.CommandContext(ctx, cli, "drain", "--listen", netip.AddrPortFrom(t.Addr, t.Port).String(),
		"--netns", t.NetNS, "--backend", gate.SKLookup, "--timeout", "20s", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		return func() error { return fmt.Errorf("start sockdrain drain: %w", err) }
	}
	read := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			at := time.Now()
			var r drainedReport
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				read <- fmt.Errorf("sockdrain drain printed %q: %w", sc.Text(), err)
				return
			}
			r.Time = at
			reports <- r
		}
		read <- sc.Err()
	}()
	return func() error {
		rerr := <-read
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("sockdrain drain: %w: %s", err, stderr.String())
		}
		return rerr
	}
}

// drainedLatency drains a fresh listener in ns with drainedConns open
// connections, waits idle, closes them, and returns the time from the last
// close to the Drained report.
func drainedLatency(ctx context.Context, cli string, ns *netns.NS, m drainedMode, idle time.Duration) (time.Duration, error) {
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
	reports := make(chan drainedReport, 64)
	wait := m.start(ctx, cli, t, reports)
	lat, err := closeAndWait(p, idle, reports)
	err = errors.Join(err, wait())
	_, rerr := sockdrain.Resume(ctx, t)
	return lat, errors.Join(err, rerr)
}

// drainedNS is a namespace for the drained-detection runs, with others
// sockets on another port, held open by child processes.
type drainedNS struct {
	*netns.NS
	close func()
}

func newDrainedNS(others int) (*drainedNS, error) {
	ns, err := newNS()
	if err != nil {
		return nil, err
	}
	d := &drainedNS{NS: ns, close: func() { ns.Remove() }}
	if others == 0 {
		return d, nil
	}
	var ln int
	var addr netip.AddrPort
	if err := ns.Do(func() (err error) { ln, addr, err = rawListen(); return err }); err != nil {
		ns.Remove()
		return nil, err
	}
	held, err := holdPairs(ns, ln, addr, others/2)
	if err != nil {
		unix.Close(ln)
		ns.Remove()
		return nil, err
	}
	d.close = func() { held.close(); unix.Close(ln); ns.Remove() }
	return d, nil
}

// closeAndWait waits until the drain sees every connection established,
// then idle, closes them, and waits for the Drained report.
func closeAndWait(p *pairs, idle time.Duration, reports <-chan drainedReport) (time.Duration, error) {
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
	closed := p.close()
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

// drainedOthers are the sockets elsewhere in the namespace: the poll that
// confirms the end walks them all.
var drainedOthers = []int{0, 20_000}

// runDrained measures each population in turn, interleaving the modes and
// idle times in each run. The populations cannot interleave: the kernel's
// established hash is shared by every namespace, so sockets held for one
// would be walked by the other's polls.
func runDrained(ctx context.Context, cfg config, lock kernelLock) (*benchmark.Table, error) {
	type cell struct{ others, mode, idle int }
	res := map[cell][]time.Duration{}
	for oi, others := range drainedOthers {
		err := drainedPopulation(ctx, cfg, lock, others, func(mi, ii int, d time.Duration) {
			res[cell{oi, mi, ii}] = append(res[cell{oi, mi, ii}], d)
		})
		if err != nil {
			return nil, err
		}
	}
	t := &benchmark.Table{
		Title: "5. Drained-detection latency",
		Notes: []string{fmt.Sprintf("A drain (sklookup gate) of a listener with %d accepted connections open, in a namespace that also "+
			"holds 0 or %d sockets on another port (connections held by child processes). Once a report shows the %d established, "+
			"the bench waits the idle time and closes every connection (clients, then server ends); the figure is from just before the "+
			"last close to the Drained report: its own timestamp for the library (OnReport), and the moment the bench read its JSON line "+
			"from the CLI's stdout pipe. The engine wakes on the kernel's sock_diag destroy events for the port and confirms with one "+
			"poll. That poll walks the kernel's established hash, which every namespace shares: its cost grows with the TCP sockets "+
			"on the whole host, not only in the drained namespace.", drainedConns, drainedOthers[len(drainedOthers)-1], drainedConns)},
		Header: []string{"other sockets", "how", "idle before the close", "close → drained: median [min–max] (N)", "IQR", "p90"},
	}
	for oi, others := range drainedOthers {
		for mi, m := range drainedModes {
			for ii, idle := range drainedIdles {
				s := benchmark.SummarizeDurations(res[cell{oi, mi, ii}])
				t.AddRow(fmt.Sprint(others), m.name, idle.String(), s.Format(benchmark.Seconds),
					benchmark.Seconds(s.Q1)+"–"+benchmark.Seconds(s.Q3), benchmark.Seconds(s.P90))
			}
		}
	}
	return t, nil
}

// drainedPopulation runs drainedRuns rounds in one namespace holding others
// sockets, and passes each latency to add.
func drainedPopulation(ctx context.Context, cfg config, lock kernelLock, others int, add func(mode, idle int, d time.Duration)) error {
	ns, err := newDrainedNS(others)
	if err != nil {
		return fmt.Errorf("namespace with %d other sockets: %w", others, err)
	}
	defer ns.close()
	for run := range drainedRuns {
		err := lock.hold(func() error {
			for mi, m := range drainedModes {
				for ii, idle := range drainedIdles {
					d, err := drainedLatency(ctx, cfg.cli, ns.NS, m, idle)
					if err != nil {
						return fmt.Errorf("drained latency, %d other sockets, %s, after %s idle: %w", others, m.name, idle, err)
					}
					add(mi, ii, d)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if (run+1)%5 == 0 {
			progress("drained detection, %d other sockets: %d/%d runs done", others, run+1, drainedRuns)
		}
	}
	return nil
}
