package main

import (
	"fmt"

	"github.com/sockdrain/sockdrain/internal/rig/benchmark"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/rig/stoploss"
)

// short writes a summary as "median [min–max]".
func short(s benchmark.Summary) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f [%.0f–%.0f]", s.Median, s.Min, s.Max)
}

// perStop summarizes one figure over a cell's stops.
func perStop(stops []stopResult, f func(stopResult) float64) benchmark.Summary {
	xs := make([]float64, len(stops))
	for i, s := range stops {
		xs[i] = f(s)
	}
	return benchmark.Summarize(xs)
}

func kind(f func(loadgen.Counts) int64) func(stopResult) float64 {
	return func(s stopResult) float64 { return float64(f(s.counts)) }
}

func lossTable(levels []level, cells map[[2]int]*lossCell, n int, max float64) *benchmark.Table {
	t := &benchmark.Table{
		Title: "1. Loss per stop under load",
		Notes: []string{
			fmt.Sprintf("Closed-loop HTTP/1.0 load: %d clients, one new connection per request, a %d-byte body checked byte by byte, "+
				"%s deadline per attempt (a timeout is a client hung that long). Each stop: a fresh netns, the server, %s of load, "+
				"the stop, %s more load. Rounds interleave every strategy and level (order rotated per round); N=%d stops per cell. "+
				"This machine sustained %.0f new conn/s unlimited.", lossWorkers, bodySize, lossAttempt, lossWarmup, lossAfter, n, max),
			"Outcomes are counted for the attempts that ended at or after the moment the stop began: those in flight then or started later, " +
				"the only ones a stop can touch. The control row loads the same server and stops it only after the load has ended, " +
				"so its bad outcomes are what the load alone costs on this machine.",
			"Figures are per stop: median [min–max] over the N stops. \"bad stops\" counts stops with at least one reset, timeout, partial or other outcome; " +
				"\"refused\" (ECONNREFUSED at connect) is the outcome a drain promises, not a loss. \"listen drops\" is the kernel's TcpExt " +
				"ListenDrops in the server's namespace over the same window: SYNs or handshake ACKs dropped, mostly for a full queue; " +
				"each such client waits for a retransmission (the first after 1s), which the attempt deadline counts as a timeout.",
			"The Go servers are sockdrain's demo server (close, shutdown, sockdrain rows; SO_REUSEPORT, one socket; waits for requests in flight) and a " +
				"plain net/http server. nginx is Debian's, 2 workers, serving a static file. sockdrain rows call the library's sockdrain.Drain " +
				"(--backend as named, verify probe on), then close() the listener, then sockdrain.Resume.",
		},
		Header: []string{"strategy", "load", "conn/s before stop", "bad stops", "bad per stop", "reset before response",
			"reset mid-response", "timeout", "partial", "other", "refused", "listen drops", "bad total"},
	}
	for si, st := range strategies {
		for li, lv := range levels {
			c := cells[[2]int{si, li}]
			if c == nil {
				continue
			}
			var tally stoploss.Tally
			for _, s := range c.stops {
				tally.Add(s.counts)
			}
			t.AddRow(st.name, lv.name, short(perStop(c.stops, func(s stopResult) float64 { return s.rate })),
				fmt.Sprintf("%d/%d", tally.StopsWithLosses, tally.Stops),
				short(perStop(c.stops, kind(loadgen.Counts.Bad))),
				short(perStop(c.stops, kind(func(c loadgen.Counts) int64 { return c.ResetBeforeResponse }))),
				short(perStop(c.stops, kind(func(c loadgen.Counts) int64 { return c.ResetMidResponse }))),
				short(perStop(c.stops, kind(func(c loadgen.Counts) int64 { return c.Timeout }))),
				short(perStop(c.stops, kind(func(c loadgen.Counts) int64 { return c.Partial }))),
				short(perStop(c.stops, kind(func(c loadgen.Counts) int64 { return c.Other }))),
				short(perStop(c.stops, kind(func(c loadgen.Counts) int64 { return c.Refused }))),
				short(perStop(c.stops, func(s stopResult) float64 { return float64(s.drops) })),
				fmt.Sprint(tally.Lost()))
		}
	}
	t.Notes = append(t.Notes, lossSamples(cells)...)
	return t
}

// lossSamples quotes a few bad outcomes per strategy, so a reader can see
// what a loss looked like.
func lossSamples(cells map[[2]int]*lossCell) []string {
	var out []string
	for si, st := range strategies {
		var ss []string
		for li := range 3 {
			if c := cells[[2]int{si, li}]; c != nil {
				ss = append(ss, c.samples...)
			}
		}
		if len(ss) > 0 {
			out = append(out, fmt.Sprintf("Example bad outcome, %s: `%s`", st.name, ss[0]))
		}
	}
	return out
}
