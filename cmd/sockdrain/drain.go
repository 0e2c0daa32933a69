package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/urfave/cli/v2"
)

func drainCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "drain",
		Usage: "refuse new connections to a listener and wait until it has nothing left to serve",
		UsageText: "sockdrain drain --listen HOST:PORT | --port PORT [--netns PATH] [--pid PID] [--backend auto]\n" +
			"                [--control NAME|PATH] (drain the sockets a `sockdrain run` owns)\n" +
			"                [--timeout 30s] [--stall 5s] [--no-verify] [--keep-gate] [--json]",
		Description: "Phases: gated, backlog_empty, connections_closed, flushed, drained. On success the gate\n" +
			"stays armed after sockdrain exits, until `sockdrain resume` (or, for reuseport and sklookup,\n" +
			"until the listener closes). On a timeout, an error or a signal it is rolled back, unless\n" +
			"--keep-gate.",
		Flags: append(targetFlags(),
			&cli.IntFlag{Name: "pid", Usage: "the process that must hold the listening socket"},
			&cli.StringFlag{Name: "backend", Value: "auto", Usage: "gate: auto, " + strings.Join(sockdrain.BackendNames(), ", ")},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up (exit 3) after `DURATION`"},
			&cli.DurationFlag{Name: "stall", Value: sockdrain.DefaultStall, Usage: "warn when the accept queue stands still for `DURATION`"},
			&cli.BoolFlag{Name: "no-verify", Usage: "skip the probe connection that checks the gate refuses"},
			&cli.BoolFlag{Name: "keep-gate", Usage: "leave the gate armed when the drain fails, times out or is interrupted"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON lines: phase changes, counts, and a final line"},
			&cli.StringFlag{Name: "control", Usage: "have the `sockdrain run` on control socket `NAME|PATH` drain its own sockets"},
		),
		Action: func(c *cli.Context) error {
			if c.IsSet("control") {
				return drainControl(c, e)
			}
			t, err := parseTarget(c)
			if err != nil {
				return err
			}
			if c.Duration("timeout") <= 0 || c.Duration("stall") <= 0 {
				return badInput("--timeout and --stall must be positive")
			}
			out := newDrainOutput(e, c.Bool("json"))
			_, err = sockdrain.Drain(c.Context, t, sockdrain.Options{
				Backend: c.String("backend"), PID: c.Int("pid"), Timeout: c.Duration("timeout"),
				Stall: c.Duration("stall"), NoVerify: c.Bool("no-verify"), KeepGate: c.Bool("keep-gate"),
				OnReport: out.report,
			})
			out.end()
			return err
		},
	}
}

// drainOutput shows a drain's reports: JSON lines, a live line on a
// terminal, or plain lines for phases and warnings.
type drainOutput struct {
	w    io.Writer
	json bool
	tty  bool
	live bool // a live line is on screen
}

func newDrainOutput(e env, asJSON bool) *drainOutput {
	return &drainOutput{w: e.stdout, json: asJSON, tty: e.tty}
}

func (o *drainOutput) report(r sockdrain.Report) {
	switch {
	case o.json:
		b, _ := json.Marshal(r)
		fmt.Fprintf(o.w, "%s\n", b)
	case r.Event == sockdrain.EventProgress && o.tty:
		fmt.Fprintf(o.w, "\r\033[K%s", progressLine(r))
		o.live = true
	case r.Event != sockdrain.EventProgress:
		o.end()
		fmt.Fprintln(o.w, eventLine(r))
	}
}

// end finishes a live line.
func (o *drainOutput) end() {
	if o.live {
		fmt.Fprintln(o.w)
		o.live = false
	}
}

func progressLine(r sockdrain.Report) string {
	return fmt.Sprintf("%7.3fs %-18s accept_queue=%d syn_recv=%d established=%d close_wait=%d closing=%d unacked=%d",
		time.Duration(r.Elapsed).Seconds(), r.Phase, r.AcceptQueue, r.SynRecv, r.Established, r.CloseWait, r.Closing, r.UnackedBytes)
}

func eventLine(r sockdrain.Report) string {
	s := fmt.Sprintf("%7.3fs %s", time.Duration(r.Elapsed).Seconds(), r.Phase)
	if r.Event == sockdrain.EventWarning {
		s = fmt.Sprintf("%7.3fs warning", time.Duration(r.Elapsed).Seconds())
	}
	if r.Message != "" {
		s += ": " + r.Message
	}
	for _, c := range r.Remaining {
		s += fmt.Sprintf("\n  left: %s %s unacked=%d", c.Peer, c.State, c.Unacked)
	}
	return s
}
