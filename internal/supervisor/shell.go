package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// ShellStop runs command with /bin/sh -c in its own process group, its
// output on stderr. A cancelled context kills the whole group.
func ShellStop(command string) func(context.Context) error {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		if ee, ok := errors.AsType[*exec.ExitError](err); ok && ctx.Err() == nil {
			return fmt.Errorf("stop command %q exited with status %d", command, ee.ExitCode())
		}
		if err != nil {
			return fmt.Errorf("stop command %q: %w", command, err)
		}
		return nil
	}
}
