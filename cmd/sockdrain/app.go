package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sockdrain/sockdrain"
)

func newApp(e env) *cli.App {
	app := &cli.App{
		Name:  "sockdrain",
		Usage: "drain a live TCP server's listen queue at the kernel level",
		Description: "sockdrain refuses new connections to a listening socket without touching it,\n" +
			"lets the server's workers empty the accept backlog, and reports when the\n" +
			"port holds nothing more to serve.",
		Writer:                e.stdout,
		ErrWriter:             e.stderr,
		HideHelpCommand:       true,
		ExitErrHandler:        func(*cli.Context, error) {},
		OnUsageError:          usageError,
		CustomAppHelpTemplate: cli.AppHelpTemplate + "\n" + exitCodesHelp(),
		Commands: []*cli.Command{statusCommand(e), drainCommand(e), resumeCommand(e), probeCommand(e),
			demoCommand(e), runCommand(e)},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return badInput("unknown command %q; see sockdrain --help", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
	for _, c := range app.Commands {
		c.OnUsageError = usageError
		c.CustomHelpTemplate = cli.CommandHelpTemplate + "\n" + exitCodesHelp()
	}
	return app
}

// run runs the CLI and returns its exit code. Errors are one line on stderr.
func run(ctx context.Context, e env) int {
	err := newApp(e).RunContext(ctx, e.args)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(e.stderr, "sockdrain: %s\n", oneLine(err))
	return exitCode(err)
}

func usageError(_ *cli.Context, err error, _ bool) error {
	return inputError{err}
}

// inputError marks an error as bad input: exit code 2.
type inputError struct{ error }

func (inputError) Is(target error) bool { return target == sockdrain.ErrInvalid }

func badInput(format string, args ...any) error {
	return inputError{fmt.Errorf(format, args...)}
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// targetFlags are the flags that name a listener, shared by every command.
func targetFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "listen", Aliases: []string{"l"}, Usage: "listening address `HOST:PORT` (IPv6 in brackets)"},
		&cli.StringFlag{Name: "port", Aliases: []string{"p"}, Usage: "every listener on `PORT`"},
		&cli.StringFlag{Name: "netns", Usage: "network namespace `PATH`, e.g. /run/netns/NAME or /proc/PID/ns/net"},
	}
}

// parseTarget reads the target flags.
func parseTarget(c *cli.Context) (sockdrain.Target, error) {
	t, err := sockdrain.ParseTarget(c.String("listen"), c.String("port"))
	if err == nil && c.NArg() > 0 {
		return t, badInput("unexpected argument %q", c.Args().First())
	}
	t.NetNS = c.String("netns")
	return t, err
}

// unsupportedError marks an error as "not supported here": exit code 4.
type unsupportedError struct{ error }

func (unsupportedError) Is(target error) bool { return target == sockdrain.ErrNotSupported }

func unsupported(msg string) error { return unsupportedError{errors.New(msg)} }
