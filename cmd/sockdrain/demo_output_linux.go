package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/rig/stoploss"
)

// demoResult is everything a demo saw; --json prints it as it is.
type demoResult struct {
	Namespace string             `json:"netns"`
	Server    string             `json:"server"`
	Clients   int                `json:"clients"`
	Delay     sockdrain.Duration `json:"delay"`
	Warmup    sockdrain.Duration `json:"warmup"`
	// Pause is how long a keep-alive client waits between requests.
	Pause sockdrain.Duration `json:"keep_alive_pause"`
	// DrainAlone is what a drain without the server's stop did with
	// keep-alive clients.
	DrainAlone *demoWait      `json:"keep_alive_drain_alone"`
	Strategies []demoStrategy `json:"strategies"`
	Summary    string         `json:"summary"`
}

// demoStrategy is one way of stopping the server, and its stops.
type demoStrategy struct {
	Name string `json:"name"`
	// How says what the strategy does.
	How string `json:"how"`
	// Gate is the sockdrain gate that refused, for the drained strategy;
	// GateMessage how the drain described it, and Warnings what else it
	// said, each once.
	Gate        string   `json:"gate,omitempty"`
	GateMessage string   `json:"gate_message,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
	// PerStop holds each stop's outcomes, the Tally their sums.
	PerStop []demoStop `json:"per_stop"`
	stoploss.Tally
	Lost int64 `json:"lost"`
}

// demoStop is what one stop's clients saw: those in flight when it began,
// or arriving after it.
type demoStop struct {
	Counts loadgen.Counts `json:"counts"`
	Lost   int64          `json:"lost"`
	// Gate, Gated and Drained are the drain's gate, and when it refused
	// and found the port drained, from its start; drained stops only.
	Gate    string             `json:"gate,omitempty"`
	Gated   sockdrain.Duration `json:"gated,omitempty"`
	Drained sockdrain.Duration `json:"drained,omitempty"`
	// Stopped is when the drain handed over to the server's stop.
	Stopped sockdrain.Duration `json:"stopped,omitempty"`
	// GateMessage and Warnings are what the drain said.
	GateMessage string   `json:"-"`
	Warnings    []string `json:"-"`
	// Samples describe the first few lost clients.
	Samples []loadgen.Sample `json:"samples,omitempty"`
}

// demoKind is a way the demo stops the server.
type demoKind int

const (
	plainStop     demoKind = iota // close the listeners
	drainThenStop                 // sockdrain drain, close the listeners, resume
	handOver                      // keep-alive clients; the drain hands over to the server's stop
)

func newDemoStrategy(k demoKind) demoStrategy {
	switch k {
	case drainThenStop:
		return demoStrategy{Name: "sockdrain, then stop", How: "sockdrain drain, close the listeners, sockdrain resume"}
	case handOver:
		return demoStrategy{Name: "keep-alive, sockdrain --stop", How: "once the backlog is empty, the drain hands " +
			"over to the server's own stop (Options.Stop), which closes its listeners and idle connections and " +
			"answers requests in flight with Connection: close, as net/http's Shutdown does; the drain follows " +
			"the rest until every byte is acknowledged, then sockdrain resume"}
	}
	return demoStrategy{Name: "plain stop", How: "close the listeners, answer the requests in flight"}
}

func (st *demoStrategy) add(s demoStop) {
	st.PerStop = append(st.PerStop, s)
	st.Tally.Add(s.Counts)
	st.Lost = st.Tally.Lost()
	if s.Gate != "" {
		st.Gate = s.Gate
	}
	if st.GateMessage == "" {
		st.GateMessage = s.GateMessage
	}
	for _, w := range s.Warnings {
		if !slices.Contains(st.Warnings, w) {
			st.Warnings = append(st.Warnings, w)
		}
	}
}

// demoSummary says in one line what each strategy's stops lost.
func demoSummary(strats []demoStrategy) string {
	var parts []string
	for _, st := range strats {
		if st.Lost == 0 {
			parts = append(parts, fmt.Sprintf("%s: 0 of %d stops lost a client", st.Name, st.Stops))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %d of %d stops lost %d %s", st.Name, st.StopsWithLosses,
			st.Stops, st.Lost, plural(st.Lost, "client")))
	}
	return strings.Join(parts, "; ")
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// lostAs says how the clients in c were lost: the kind, or with several
// kinds, each kind's count.
func lostAs(c loadgen.Counts) string {
	var parts []string
	for _, k := range []struct {
		n    int64
		name string
	}{
		{c.ResetBeforeResponse, "reset before the response"}, {c.ResetMidResponse, "reset mid-response"},
		{c.Timeout, "timed out"}, {c.Partial, "cut short"}, {c.Other, "other"},
	} {
		if k.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", k.n, k.name))
		}
	}
	if len(parts) == 1 {
		_, kind, _ := strings.Cut(parts[0], " ")
		return kind
	}
	return strings.Join(parts, ", ")
}

// demoOutput shows a demo: lines as it runs and tables at the end, or one
// JSON object at the end.
type demoOutput struct {
	w    io.Writer
	json bool
	seen map[string]bool // the gate and warning messages shown
}

func newDemoOutput(e env, asJSON bool) *demoOutput {
	return &demoOutput{w: e.stdout, json: asJSON, seen: map[string]bool{}}
}

func (o *demoOutput) printf(format string, args ...any) {
	if !o.json {
		fmt.Fprintf(o.w, format, args...)
	}
}

func (o *demoOutput) intro(r demoResult, stops int) {
	server := map[string]string{"reuseport": "4 SO_REUSEPORT sockets", "plain": "one socket",
		"mptcp": "one MPTCP socket"}[r.Server]
	o.printf("sockdrain demo, in network namespace %s\n", r.Namespace)
	o.printf("  server: the built-in HTTP server, %s, %v per request\n", server, time.Duration(r.Delay))
	o.printf("  load:   %d clients in a closed loop, one new connection per request\n", r.Clients)
	o.printf("  stops:  %d each way; each starts a fresh server, loads it for %v, stops it, and counts\n"+
		"          what every client in flight at the stop, or arriving after it, saw\n", stops, time.Duration(r.Warmup))
}

func (o *demoOutput) strategy(st demoStrategy) {
	o.printf("\n%s: %s\n", st.Name, wrap(st.How, 100-len(st.Name)))
}

// wrap breaks s into lines of about width, indenting the next ones.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && n+1+len(w) > width {
			b.WriteString("\n   ")
			n, width = 3, 100
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

func (o *demoOutput) keepAliveIntro(r demoResult) {
	o.printf("\nkeep-alive clients: %d HTTP/1.1 clients, each keeping its connection for its next request,\n"+
		"about %v apart; the same built-in server keeps connections open\n", r.Clients, time.Duration(r.Pause))
}

func (o *demoOutput) drainAlone(w demoWait) {
	if !w.TimedOut {
		o.printf("  a drain alone: drained in %v, the clients left\n", ms(w.Waited))
		return
	}
	o.printf("  a drain alone (no stop): gated in %v, backlog empty in %v, then it waits: after %v,\n"+
		"  %d keep-alive connections were still open (%d idle between requests). Their clients do not leave,\n"+
		"  so a drain alone would wait until its timeout. The demo stopped it there (the gate opened again).\n",
		ms(w.Gated), ms(w.BacklogEmpty), time.Duration(w.Waited).Round(100*time.Millisecond), w.Established, w.Idle)
}

// said shows what the drains said, each message once.
func (o *demoOutput) said(st demoStrategy) {
	if st.GateMessage != "" {
		o.once("  %s\n", st.GateMessage)
	}
	for _, w := range st.Warnings {
		o.once("  warning: %s\n", w)
	}
}

func (o *demoOutput) once(format, msg string) {
	if !o.seen[msg] {
		o.seen[msg] = true
		o.printf(format, msg)
	}
}

func (o *demoOutput) stop(st demoStrategy, i, n int) {
	s := st.PerStop[i]
	o.said(st)
	o.printf("  stop %d/%d  complete %5d  refused %5d  lost %3d", i+1, n, s.Counts.Complete, s.Counts.Refused, s.Lost)
	switch {
	case s.Stopped > 0:
		o.printf("  gated in %v, stop at %v, drained in %v", ms(s.Gated), ms(s.Stopped), ms(s.Drained))
	case s.Gate != "":
		o.printf("  gated in %v, drained in %v", ms(s.Gated), ms(s.Drained))
	}
	if s.Lost > 0 {
		o.printf(", %s", lostAs(s.Counts))
	}
	o.printf("\n")
	// One example of a loss, or every one when sockdrain lost a client.
	if len(s.Samples) > 0 && (st.Gate != "" || st.StopsWithLosses == 1) {
		o.printf("    a lost client: %s\n", s.Samples[0].Error)
	}
}

func ms(d sockdrain.Duration) string {
	return fmt.Sprintf("%d ms", time.Duration(d).Milliseconds())
}

// result prints the tables and the summary, or the JSON object.
func (o *demoOutput) result(r demoResult) error {
	if o.json {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(o.w, "%s\n", b)
		return err
	}
	fmt.Fprintln(o.w)
	tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tstops\twith losses\tcomplete\trefused\tlost\t")
	for _, st := range r.Strategies {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t", st.Name, st.Stops, st.StopsWithLosses,
			st.Counts.Complete, st.Counts.Refused, st.Lost)
		if st.Lost > 0 {
			fmt.Fprintf(tw, "  %s", lostAs(st.Counts))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write demo table: %w", err)
	}
	fmt.Fprintf(o.w, "\n%s.\n", strings.ReplaceAll(r.Summary, "; ", ".\n"))
	if r.Strategies[0].Lost == 0 {
		fmt.Fprintf(o.w, "The plain stop was lucky this time: no accept queue held a client when it closed. Run the demo again.\n")
	}
	if w := r.DrainAlone; w != nil && w.TimedOut {
		fmt.Fprintf(o.w, "With keep-alive clients, a drain alone still waited on %d connections after %v: hand over to the server's stop.\n",
			w.Established, time.Duration(w.Waited).Round(100*time.Millisecond))
	}
	lost := false
	for _, st := range r.Strategies[1:] {
		lost = lost || st.Lost > 0
	}
	if !lost {
		fmt.Fprintf(o.w, "With sockdrain, every client got a complete response or ECONNREFUSED, which a client or load balancer can retry.\n")
	}
	return nil
}
