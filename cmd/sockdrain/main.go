// Command sockdrain drains a live TCP server's listen queue at the kernel
// level, and reports the queues of a listening socket.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// env is everything the CLI takes from the process, so tests can run it
// in-process.
type env struct {
	args   []string
	stdout io.Writer
	stderr io.Writer
	// tty reports whether stdout is a terminal, for live displays.
	tty bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, env{args: os.Args, stdout: os.Stdout, stderr: os.Stderr, tty: isTerminal(os.Stdout)})
	stop()
	os.Exit(code)
}
