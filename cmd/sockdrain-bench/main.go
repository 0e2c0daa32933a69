// Command sockdrain-bench measures sockdrain against the usual ways to stop
// a server and writes the figures as Markdown (BENCHMARKS.md, by `make
// bench`). It needs Linux and root: everything runs in network namespaces
// it creates and removes, over loopback.
//
// Tables: loss per stop under load, time to refuse, gate overhead, observer
// scaling, drained-detection latency, the same on a busy host, and the
// time until a backend behind HAProxy is safe to stop. Each figure is a
// median with its
// spread and N; comparisons are ratios from rounds interleaved in one run.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// holderCommand, as the first argument, makes the bench a child that
// holds connected sockets for its parent (see holder_linux.go).
const holderCommand = "hold-pairs"

// config is the bench's command line.
type config struct {
	out       string        // Markdown file to write
	cli       string        // the built sockdrain binary
	lock      string        // file to flock around kernel work; empty: none
	stops     int           // stops per loss cell
	sections  string        // which tables to run: a subset of "1234567"
	lbRounds  int           // rounds of table 7 per client count
	drainWait time.Duration // how long the CPU-measured drain waits
	revision  string        // what the report says was measured
	// busy host (table 6): socket counts held elsewhere, rounds, and a
	// second build to compare with
	busy       []int
	busyRounds int
	baseline   string
	// hold, if set, makes a busy host of that many sockets and keeps it
	// for holdFor (by hand measurements) instead of running tables
	hold    int
	holdFor time.Duration
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("sockdrain-bench", flag.ContinueOnError)
	fs.StringVar(&c.out, "out", "BENCHMARKS.md", "Markdown `file` to write")
	fs.StringVar(&c.cli, "sockdrain", "bin/sockdrain", "the built sockdrain `binary`")
	fs.StringVar(&c.lock, "lock", "/tmp/sockdrain-kernel.lock", "`file` to flock around each piece of kernel work (empty: none)")
	fs.IntVar(&c.stops, "stops", 10, "stops per loss cell")
	fs.StringVar(&c.sections, "tables", "1234567", "which tables to run")
	busy := fs.String("busy", "0,100000,200000", "table 6: `counts` of sockets held elsewhere, the first the empty host")
	fs.IntVar(&c.busyRounds, "busy-rounds", 5, "table 6: rounds per population")
	fs.StringVar(&c.baseline, "baseline", "", "table 6: another sockdrain `binary` to measure side by side")
	fs.IntVar(&c.hold, "hold", 0, "hold this many sockets elsewhere until interrupted, and run no table")
	fs.DurationVar(&c.holdFor, "hold-for", 30*time.Minute, "the longest -hold keeps its sockets")
	fs.IntVar(&c.lbRounds, "lb-rounds", 10, "table 7: rounds per client count (HAProxy)")
	fs.StringVar(&c.revision, "rev", "", "the sockdrain `revision` measured, for the report (default: from the build info)")
	fs.DurationVar(&c.drainWait, "drain-wait", 60*time.Second, "how long the CPU-measured drain waits on long-lived connections")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.stops < 1 || c.drainWait <= 0 || c.busyRounds < 1 || c.lbRounds < 1 || c.holdFor <= 0 {
		return c, fmt.Errorf("-stops, -busy-rounds and -lb-rounds must be at least 1, -drain-wait and -hold-for positive")
	}
	var err error
	c.busy, err = parseBusy(*busy)
	return c, err
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == holderCommand {
		os.Exit(runHolder(os.Args[2:]))
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "sockdrain-bench:", err)
		os.Exit(1)
	}
}

// parseBusy reads -busy: a comma-separated list of socket counts.
func parseBusy(s string) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil || n < 0 {
			return nil, fmt.Errorf("-busy %q: want socket counts separated by commas", s)
		}
		ns = append(ns, n)
	}
	return ns, nil
}
