package main

import (
	"os/exec"
	"testing"

	"github.com/sockdrain/sockdrain/internal/control"
	"github.com/sockdrain/sockdrain/internal/supervisor"
)

func TestCarriedExitCode(t *testing.T) {
	for err, want := range map[error]int{
		supervisor.ErrServerExited:               exitServer,
		supervisor.ErrBusy:                       exitBusy,
		supervisor.ChildError{Msg: "x", Code: 3}: 3,
	} {
		if got := exitCode(err); got != want {
			t.Errorf("exitCode(%v) = %d, want %d", err, got, want)
		}
	}
	// An exec.ExitError of some tool a gate runs is not a status to pass on.
	if err := exec.Command("sh", "-c", "exit 9").Run(); exitCode(err) != exitInternal {
		t.Errorf("exitCode(ExitError 9) = %d, want %d", exitCode(err), exitInternal)
	}
}

// TestEveryControlKindHasAnExitCode checks the one exit-code table against
// the control socket's error kinds: a kind added there needs a code here.
func TestEveryControlKindHasAnExitCode(t *testing.T) {
	want := map[string]int{"invalid": exitInvalid, "timeout": exitTimeout, "not_supported": exitUnsupported,
		"permission": exitUnsupported, "listener_closed": exitListener, "server_exited": exitServer, "busy": exitBusy}
	for _, k := range control.Kinds() {
		got := exitCode(&control.RemoteError{Kind: k, Message: k})
		if got == exitInternal || (want[k] != 0 && got != want[k]) {
			t.Errorf("exit code of a remote %q error = %d, want %d", k, got, want[k])
		}
	}
	if got := exitCode(&control.RemoteError{Kind: "internal"}); got != exitInternal {
		t.Errorf("exit code of a remote internal error = %d, want %d", got, exitInternal)
	}
}
