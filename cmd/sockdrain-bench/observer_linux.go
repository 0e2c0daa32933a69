package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/benchmark"
)

// Repetitions per observer cell.
const (
	listenerPolls = 20
	statusPolls   = 5
	ssRuns        = 5
)

// observerCase is one socket population: how many sockets, and whether
// their connections are on the target port or another one.
type observerCase struct {
	sockets  int
	onTarget bool
}

// observerRow is what one case measured.
type observerRow struct {
	c                     observerCase
	listeners, status, ss benchmark.Summary
	established, ssLines  int
}

// observeCase fills a fresh namespace and times the three ways to look.
func observeCase(oc observerCase) (observerRow, error) {
	row := observerRow{c: oc}
	ns, err := newNS()
	if err != nil {
		return row, err
	}
	defer ns.Remove()
	target, other, err := targetAndOther(ns)
	if err != nil {
		return row, err
	}
	defer unix.Close(target.fd)
	defer unix.Close(other.fd)
	ln := other
	if oc.onTarget {
		ln = target
	}
	p, err := holdPairs(ns, ln.fd, ln.addr, oc.sockets/2)
	if err != nil {
		return row, err
	}
	defer p.close()
	obs, err := sockdrain.NewObserver(sockdrain.Target{Addr: target.addr.Addr(), Port: target.addr.Port(), NetNS: ns.Path()})
	if err != nil {
		return row, err
	}
	defer obs.Close()
	if row.listeners, row.established, err = timeListeners(obs); err != nil {
		return row, err
	}
	if row.status, err = timeRuns(statusPolls, func() error { _, err := obs.Status(); return err }); err != nil {
		return row, err
	}
	row.ss, row.ssLines, err = timeSS(ns, target.addr.Port())
	return row, err
}

func timeListeners(obs *sockdrain.Observer) (benchmark.Summary, int, error) {
	est := 0
	s, err := timeRuns(listenerPolls, func() error {
		ls, err := obs.Listeners()
		if err == nil {
			est = ls[0].Established
		}
		return err
	})
	return s, est, err
}

// timeRuns times n calls of fn, in seconds.
func timeRuns(n int, fn func() error) (benchmark.Summary, error) {
	var ds []time.Duration
	for range n {
		start := time.Now()
		if err := fn(); err != nil {
			return benchmark.Summary{}, err
		}
		ds = append(ds, time.Since(start))
	}
	return benchmark.SummarizeDurations(ds), nil
}

// timeSS execs ss in ns for the target's established sockets, as a person
// would to count them, and returns how many lines it printed.
func timeSS(ns *netns.NS, port uint16) (benchmark.Summary, int, error) {
	lines := 0
	s, err := timeRuns(ssRuns, func() error {
		return ns.Do(func() error {
			out, err := exec.Command("ss", "-tanH", "state", "established", "sport", "=", ":"+strconv.Itoa(int(port))).Output()
			if err != nil {
				return fmt.Errorf("ss: %w", err)
			}
			lines = countLines(out)
			return nil
		})
	})
	return s, lines, err
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// runObserver measures every case, then the CPU of a long drain.
func runObserver(ctx context.Context, cfg config, lock kernelLock) (*benchmark.Table, error) {
	var rows []observerRow
	for _, n := range []int{1_000, 10_000, 100_000} {
		for _, on := range []bool{true, false} {
			var row observerRow
			err := lock.hold(func() (err error) { row, err = observeCase(observerCase{n, on}); return err })
			if err != nil {
				return nil, fmt.Errorf("observe %d sockets: %w", n, err)
			}
			progress("observer: %d sockets (on target: %v) done", n, on)
			rows = append(rows, row)
		}
	}
	var cpu drainCPU
	err := lock.hold(func() (err error) { cpu, err = measureDrainCPU(ctx, cfg.cli, cfg.drainWait); return err })
	if err != nil {
		return nil, fmt.Errorf("measure a waiting drain's CPU: %w", err)
	}
	return observerTable(rows, cpu), nil
}

func observerTable(rows []observerRow, cpu drainCPU) *benchmark.Table {
	t := &benchmark.Table{
		Title: "4. Observer scaling",
		Notes: []string{"One fresh netns per row holding a target listener, another listener, and N/2 connected pairs (N sockets) " +
			"either to the target port or to the other one. \"Listeners\" is sockdrain.Observer.Listeners, the poll the drain engine " +
			"makes (inet_diag filtered on the port, both families); \"Status\" adds the owners' PIDs (a walk of /proc/*/fd, where this " +
			"bench itself holds every socket); \"ss\" is exec'ing `ss -tanH state established sport = :P` in the netns, which also prints " +
			"each socket. All wall-clock time per call.",
			cpu.String()},
		Header: []string{"sockets in netns", "connections on", "established seen", "Listeners (engine poll)", "Status (with PIDs)", "exec ss", "ss ÷ Listeners (medians)"},
	}
	for _, r := range rows {
		where := "another port"
		if r.c.onTarget {
			where = "the target port"
		}
		t.AddRow(strconv.Itoa(r.c.sockets), where, fmt.Sprintf("%d (ss: %d lines)", r.established, r.ssLines),
			r.listeners.Format(benchmark.Seconds), r.status.Format(benchmark.Seconds), r.ss.Format(benchmark.Seconds),
			fmt.Sprintf("%.1f×", r.ss.Median/r.listeners.Median))
	}
	return t
}
