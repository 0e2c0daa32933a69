package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// forwarded are the signals `sockdrain run` passes on to its server.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// supervise starts cmd, forwards signals to it until it exits, ends any
// drain under way, and returns its status as an error.
func (r *runner) supervise(cmd *exec.Cmd) error {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Args[0], err)
	}
	r.child.Store(cmd.Process)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			cmd.Process.Signal(sig)
		case err := <-done:
			r.serverExited()
			return childStatus(cmd.Args[0], err)
		}
	}
}

// childError is a server's non-zero exit, which `sockdrain run` exits with.
type childError struct {
	msg  string
	code int
}

func (e childError) Error() string { return e.msg }

// childStatus turns cmd.Wait's error into the exit status to pass on:
// the server's own, or 128+N when signal N killed it.
func childStatus(name string, err error) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err != nil {
			return fmt.Errorf("wait for %s: %w", name, err)
		}
		return nil
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return childError{fmt.Sprintf("%s was killed by signal %d (%s)", name, int(ws.Signal()), ws.Signal()), 128 + int(ws.Signal())}
	}
	return childError{fmt.Sprintf("%s exited with status %d", name, ee.ExitCode()), ee.ExitCode()}
}
