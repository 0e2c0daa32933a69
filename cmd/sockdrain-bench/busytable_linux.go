package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/rig/benchmark"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// busyMeasure is one or more figures of the busy-host table, taken from
// one run of the CLI, so that two builds can be compared side by side.
type busyMeasure struct {
	names []string
	// samples per round
	n   int
	run func(ctx context.Context, cli string) ([]time.Duration, error)
}

var busyMeasures = []busyMeasure{
	refuseBy(gate.Reuseport),
	refuseBy(gate.SKLookup),
	refuseBy(gate.NFTables),
	one("`status --listen` wall time", 2, func(_ context.Context, cli string) (time.Duration, error) {
		ns, ln, addr, err := statusListener()
		if err != nil {
			return 0, err
		}
		defer ns.Remove()
		defer unix.Close(ln)
		return timeStatus(cli, ns, addr)
	}),
	one(fmt.Sprintf("CPU of a drain waiting %s on %d idle keep-alive connections", busyIdleWait, busyIdleConns), 1, waitingDrainCPU),
	one("drained detection, CLI, last close → JSON line read", 4, func(ctx context.Context, cli string) (time.Duration, error) {
		ns, err := newNS()
		if err != nil {
			return 0, err
		}
		defer ns.Remove()
		return drainedLatency(ctx, cli, ns, drainedModes[1], 200*time.Millisecond)
	}),
}

// one is a measure of a single figure.
func one(name string, n int, run func(context.Context, string) (time.Duration, error)) busyMeasure {
	return busyMeasure{names: []string{name}, n: n, run: func(ctx context.Context, cli string) ([]time.Duration, error) {
		d, err := run(ctx, cli)
		return []time.Duration{d}, err
	}}
}

// refuseBy measures, from one exec of `drain --backend g`, the time to
// the first refused connect and the time to the drain's `gated` report.
func refuseBy(g string) busyMeasure {
	return busyMeasure{
		names: []string{"exec → first refusal, " + g, "exec → `gated` report, " + g},
		n:     3,
		run: func(ctx context.Context, cli string) ([]time.Duration, error) {
			refused, armed, err := timeToRefuseAndArm(ctx, cli, g, refuseModes[1])
			return []time.Duration{refused, armed}, err
		},
	}
}

// runBusy measures each population in turn (they cannot interleave: the
// established hash and /proc are shared), and in each, rounds that
// interleave the builds and measures.
func runBusy(ctx context.Context, cfg config, lock kernelLock) (*benchmark.Table, error) {
	clis := []string{cfg.cli}
	if cfg.baseline != "" {
		clis = append(clis, cfg.baseline)
	}
	type cell struct{ pop, cli, fig int }
	res := map[cell][]time.Duration{}
	var allocated []string // the host's TCP sockets, by population
	for pi, pop := range cfg.busy {
		err := lock.hold(func() error {
			start := time.Now()
			b, err := newBusyHost(pop)
			if err != nil {
				return err
			}
			defer b.close()
			progress("busy host: %d sockets held (made in %s)", pop, time.Since(start).Round(time.Millisecond))
			allocated = append(allocated, fmt.Sprintf("%d with %d held", tcpAllocated(), pop))
			for round := range cfg.busyRounds {
				for k := range clis {
					ci := (k + round) % len(clis)
					fig := 0
					for _, m := range busyMeasures {
						for range m.n {
							ds, err := m.run(ctx, clis[ci])
							if err != nil {
								return fmt.Errorf("%s, %d sockets elsewhere, %s: %w", m.names[0], pop, clis[ci], err)
							}
							for i, d := range ds {
								res[cell{pi, ci, fig + i}] = append(res[cell{pi, ci, fig + i}], d)
							}
						}
						fig += len(m.names)
					}
				}
				progress("busy host, %d sockets: round %d/%d done", pop, round+1, cfg.busyRounds)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	t := &benchmark.Table{
		Title: "6. On a busy host",
		Notes: []string{fmt.Sprintf("The same figures with 0 to %d TCP sockets held elsewhere on the host: connected pairs over loopback in a "+
			"namespace of their own, held by child processes (at most %d descriptors each). They cost sockdrain through what every "+
			"namespace shares: the kernel's established hash, which inet_diag dumps walk, and /proc. Each build is exec'd as the CLI, "+
			"in rounds that interleave the builds and the measures (N per cell: %d rounds × samples per round). Refusal: `drain --backend G` "+
			"against the demo server under a prober, binary in page cache (as table 2); from the same exec, the time of the drain's `gated` "+
			"report (its own clock; made once the gate is armed and the drain's verify probe refused): sockdrain's part, without the prober's. `status`: one listener in a fresh netns, "+
			"`--json`, exec to exit. Waiting drain: sklookup, %d connections that each carried one request and answer, closed after %s; "+
			"utime+stime of the child. Drained detection: as table 5, CLI, 200ms idle. Ratios are of medians.",
			maxOf(cfg.busy), fileLimitOr(20000), cfg.busyRounds, busyIdleConns, busyIdleWait)},
		Header: []string{"figure", "sockets elsewhere", "this build: median [min–max] (N)", "÷ this build, empty host"},
	}
	t.Notes = append(t.Notes, fmt.Sprintf("TCP sockets allocated on the whole host (alloc in /proc/net/sockstat) once each population was made: %s.",
		strings.Join(allocated, "; ")))
	if cfg.baseline != "" {
		t.Notes = append(t.Notes, fmt.Sprintf("Baseline build: `%s`.", cfg.baseline))
		t.Header = append(t.Header, "baseline: median [min–max] (N)", "÷ baseline, empty host", "this ÷ baseline")
	}
	var names []string
	for _, m := range busyMeasures {
		names = append(names, m.names...)
	}
	for mi, name := range names {
		for pi, pop := range cfg.busy {
			row := []string{name, fmt.Sprint(pop)}
			for ci := range clis {
				s := benchmark.SummarizeDurations(res[cell{pi, ci, mi}])
				empty := benchmark.SummarizeDurations(res[cell{0, ci, mi}])
				row = append(row, s.Format(benchmark.Seconds), ratio(s.Median, empty.Median))
			}
			if len(clis) > 1 {
				this := benchmark.SummarizeDurations(res[cell{pi, 0, mi}])
				base := benchmark.SummarizeDurations(res[cell{pi, 1, mi}])
				row = append(row, ratio(this.Median, base.Median))
			}
			t.AddRow(row...)
		}
	}
	return t, nil
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func fileLimitOr(def int) int {
	if l, err := raiseFileLimit(); err == nil {
		return int(l)
	}
	return def
}

// tcpAllocated is the number of TCP sockets allocated on the host, in
// every namespace (the alloc field of /proc/net/sockstat), or -1.
func tcpAllocated() int {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			if f[i] == "alloc" {
				if n, err := strconv.Atoi(f[i+1]); err == nil {
					return n
				}
			}
		}
	}
	return -1
}
