// Command sockdrain drains a live TCP server's listen queue at the kernel
// level, and reports the queues of a listening socket.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sockdrain/sockdrain/internal/listenfd"
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

// signalError is the cause of a context cancelled by a signal.
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string { return fmt.Sprintf("interrupted by %s", e.sig) }

func main() {
	listenfd.RunShim() // as `sockdrain run`'s shim, becomes the server
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		cancel(signalError{sig.(syscall.Signal)})
		signal.Stop(sigs) // a second signal kills as usual
	}()
	os.Exit(run(ctx, env{args: os.Args, stdout: os.Stdout, stderr: os.Stderr, tty: isTerminal(os.Stdout)}))
}
