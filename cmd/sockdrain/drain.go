package main

import (
	"strings"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/supervisor"
	"github.com/urfave/cli/v2"
)

func drainCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "drain",
		Usage: "refuse new connections to a listener and wait until it has nothing left to serve",
		UsageText: "sockdrain drain --listen HOST:PORT | --port PORT [--netns PATH] [--pid PID] [--backend auto]\n" +
			"                [--control NAME|PATH] (drain the sockets a `sockdrain run` owns)\n" +
			"                [--stop CMD | --stop-signal SIG | --close-idle] [--idle 1s]\n" +
			"                [--timeout 30s] [--stall 5s] [--no-verify] [--keep-gate] [--json]",
		Description: "Phases: gated, backlog_empty, connections_closed, flushed, drained. On success the gate\n" +
			"stays armed after sockdrain exits, until `sockdrain resume` (or, for reuseport and sklookup,\n" +
			"until the listener closes). On a timeout, an error or a signal it is rolled back, unless\n" +
			"--keep-gate.\n\n" +
			"Connections the server accepted are its own to finish, and keep-alive ones may never end by\n" +
			"themselves. --stop CMD or --stop-signal SIG hands them over to the server's own graceful stop\n" +
			"as soon as the backlog is empty (nginx -s quit, a Go server's Shutdown on SIGTERM), then\n" +
			"follows every socket of the port until each is closed and acknowledged. --close-idle, for a\n" +
			"server that stays up, shuts down idle connections on its behalf: the client reads a FIN and\n" +
			"the server reads EOF. It suits HTTP/1.1; connections quiet by design (WebSocket, SSE, HTTP/2,\n" +
			"gRPC, database sessions) need the server's own stop. It needs pidfd_getfd (Linux 5.6) and\n" +
			"ptrace access to the server.",
		Flags: append(append(targetFlags(),
			&cli.IntFlag{Name: "pid", Usage: "the process that must hold the listening socket"},
			&cli.StringFlag{Name: "backend", Value: "auto", Usage: "gate: auto, " + strings.Join(sockdrain.BackendNames(), ", ")},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up (exit 3) after `DURATION`"},
			&cli.DurationFlag{Name: "stall", Value: sockdrain.DefaultStall, Usage: "warn when the accept queue stands still for `DURATION`"},
			&cli.BoolFlag{Name: "no-verify", Usage: "skip the probe connection that checks the gate refuses"},
			&cli.BoolFlag{Name: "keep-gate", Usage: "leave the gate armed when the drain fails, times out or is interrupted"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON lines: phase changes, counts, and a final line"},
			&cli.StringFlag{Name: "control", Usage: "have the `sockdrain run` on control socket `NAME|PATH` drain its own sockets"},
		), stopFlags()...),
		Action: func(c *cli.Context) error {
			if c.IsSet("control") {
				return drainControl(c, e)
			}
			t, err := parseTarget(c)
			if err != nil {
				return err
			}
			stop, out, err := drainFlags(c, e)
			if err != nil {
				return err
			}
			opts := sockdrain.Options{
				Backend: c.String("backend"), PID: c.Int("pid"), Timeout: c.Duration("timeout"),
				Stall: c.Duration("stall"), NoVerify: c.Bool("no-verify"), KeepGate: c.Bool("keep-gate"),
				OnReport: out.report, Idle: stop.idle, StopSignal: stop.signal, CloseIdle: stop.closeIdle,
			}
			if stop.command != "" {
				opts.Stop = supervisor.ShellStop(stop.command)
			}
			_, err = sockdrain.Drain(c.Context, t, opts)
			out.end()
			return err
		},
	}
}

// drainFlags reads what a drain, local or through --control, takes from
// its flags: --timeout and --stall, which the CLI wants given (the library
// takes 0 as its default), how the server is stopped, and the output.
func drainFlags(c *cli.Context, e env) (stopOptions, *drainOutput, error) {
	if c.Duration("timeout") <= 0 || c.Duration("stall") <= 0 {
		return stopOptions{}, nil, badInput("--timeout and --stall must be positive")
	}
	stop, err := parseStop(c)
	if err != nil {
		return stop, nil, err
	}
	out := newDrainOutput(e, c.Bool("json"))
	out.timeout = c.Duration("timeout")
	return stop, out, nil
}
