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

// busyMeasure is one figure of the busy-host table, taken from the CLI so
// that two builds can be compared side by side.
type busyMeasure struct {
	name string
	// samples per round
	n   int
	run func(ctx context.Context, cli string) (time.Duration, error)
}

var busyMeasures = []busyMeasure{
	{name: "exec → first refusal, reuseport", n: 3, run: refuseBy(gate.Reuseport)},
	{name: "exec → first refusal, sklookup", n: 3, run: refuseBy(gate.SKLookup)},
	{name: "exec → first refusal, nftables", n: 3, run: refuseBy(gate.NFTables)},
	{name: "`status --listen` wall time", n: 2, run: func(_ context.Context, cli string) (time.Duration, error) {
		ns, ln, addr, err := statusListener()
		if err != nil {
			return 0, err
		}
		defer ns.Remove()
		defer unix.Close(ln)
		return timeStatus(cli, ns, addr)
	}},
	{name: fmt.Sprintf("CPU of a drain waiting %s on %d idle keep-alive connections", busyIdleWait, busyIdleConns), n: 1, run: waitingDrainCPU},
	{name: "drained detection, CLI, last close → JSON line read", n: 4, run: func(ctx context.Context, cli string) (time.Duration, error) {
		ns, err := newNS()
		if err != nil {
			return 0, err
		}
		defer ns.Remove()
		return drainedLatency(ctx, cli, ns, drainedModes[1], 200*time.Millisecond)
	}},
}

func refuseBy(gate string) func(context.Context, string) (time.Duration, error) {
	return func(ctx context.Context, cli string) (time.Duration, error) {
		return timeToRefuse(ctx, cli, gate, refuseModes[1])
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
	type cell struct{ pop, cli, m int }
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
					for mi, m := range busyMeasures {
						for range m.n {
							d, err := m.run(ctx, clis[ci])
							if err != nil {
								return fmt.Errorf("%s, %d sockets elsewhere, %s: %w", m.name, pop, clis[ci], err)
							}
							res[cell{pi, ci, mi}] = append(res[cell{pi, ci, mi}], d)
						}
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
			"against the demo server under a prober, binary in page cache (as table 2). `status`: one listener in a fresh netns, "+
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
	for mi, m := range busyMeasures {
		for pi, pop := range cfg.busy {
			row := []string{m.name, fmt.Sprint(pop)}
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
