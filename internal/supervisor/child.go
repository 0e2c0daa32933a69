package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// Forwarded are the signals `sockdrain run` passes on to its server.
var Forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// Run starts cmd, forwards signals to it until it exits, ends any drain
// under way, and returns its status as an error: a ChildError unless it
// exited with 0.
func (r *Supervisor) Run(cmd *exec.Cmd) error {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, Forwarded...)
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

// ChildError is a server's non-zero exit, whose Code `sockdrain run` exits
// with.
type ChildError struct {
	Msg  string
	Code int
}

func (e ChildError) Error() string { return e.Msg }

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
		return ChildError{fmt.Sprintf("%s was killed by signal %d (%s)", name, int(ws.Signal()), ws.Signal()), 128 + int(ws.Signal())}
	}
	return ChildError{fmt.Sprintf("%s exited with status %d", name, ee.ExitCode()), ee.ExitCode()}
}
