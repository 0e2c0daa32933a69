package main

import (
	"github.com/urfave/cli/v2"

	"github.com/sockdrain/sockdrain/internal/control"
)

// drainControl is `sockdrain drain --control`: the drain runs in the
// `sockdrain run` process that owns the sockets, and its reports are shown
// here as a local drain's would be.
func drainControl(c *cli.Context, e env) error {
	if c.IsSet("netns") || c.IsSet("pid") {
		return badInput("--netns and --pid do not apply with --control: the sockdrain run process owns the sockets")
	}
	if c.NArg() > 0 {
		return badInput("unexpected argument %q", c.Args().First())
	}
	stop, out, err := drainFlags(c, e)
	if err != nil {
		return err
	}
	_, err = control.Drain(c.Context, control.Path(c.String("control")), control.Request{
		Listen: c.String("listen"), Port: c.String("port"), Backend: c.String("backend"),
		Timeout: c.Duration("timeout"), Stall: c.Duration("stall"),
		NoVerify: c.Bool("no-verify"), KeepGate: c.Bool("keep-gate"),
		Stop: stop.command, StopSignal: int(stop.signal), CloseIdle: stop.closeIdle, Idle: stop.idle,
	}, out.report)
	out.end()
	return err
}
