package nstest

import (
	"net"
	"os/exec"
	"testing"
)

// HoldInChild hands ln to a child process (sleep) and closes tb's own
// copy, so the child alone holds the listener, as a server would: killing
// the child kills the server. The child is killed when tb ends.
func HoldInChild(tb testing.TB, ln *net.TCPListener) *exec.Cmd {
	tb.Helper()
	f, err := ln.File()
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ln.Close()
	return cmd
}
