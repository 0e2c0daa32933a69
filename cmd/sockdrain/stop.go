package main

import (
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// stopFlags are how a drain ends the connections its server accepted.
func stopFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "stop", Usage: "once the backlog is empty, run `CMD` (with /bin/sh -c) to stop the server, " +
			"then follow its connections until every byte is acknowledged (exit 8 if CMD fails)"},
		&cli.StringFlag{Name: "stop-signal", Usage: "once the backlog is empty, send `SIG` (TERM, QUIT, 15, …) to the server's " +
			"main process (the one holding the listener whose parent does not), then follow as --stop does"},
		&cli.BoolFlag{Name: "close-idle", Usage: "for a server that stays up: shut down each idle connection on its behalf " +
			"(HTTP/1.1 keep-alive; not WebSocket, SSE, HTTP/2, gRPC or database sessions); needs pidfd_getfd and ptrace access"},
		&cli.DurationFlag{Name: "idle", Value: time.Second, Usage: "a connection that received nothing for `DURATION`, " +
			"with nothing unread or unacknowledged and the server having spoken last, is idle"},
	}
}

// stopOptions reads the stop flags.
type stopOptions struct {
	command   string
	signal    syscall.Signal
	closeIdle bool
	idle      time.Duration
}

func parseStop(c *cli.Context) (stopOptions, error) {
	o := stopOptions{command: c.String("stop"), closeIdle: c.Bool("close-idle"), idle: c.Duration("idle")}
	if c.IsSet("stop") && strings.TrimSpace(o.command) == "" {
		return o, badInput("--stop needs a command")
	}
	if c.IsSet("stop-signal") {
		sig, err := parseSignal(c.String("stop-signal"))
		if err != nil {
			return o, err
		}
		o.signal = sig
	}
	if o.idle <= 0 {
		return o, badInput("--idle must be positive")
	}
	return o, nil
}

// parseSignal reads a signal as a name, with or without SIG, or a number.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if unix.SignalName(syscall.Signal(n)) == "" {
			return 0, badInput("--stop-signal %s: not a signal number", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, badInput("--stop-signal %q: unknown signal; want a name such as TERM or QUIT, or a number", s)
	}
	return sig, nil
}
