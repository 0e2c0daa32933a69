package main

import (
	"errors"
	"net/netip"
	"os/exec"
	"testing"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/control"
)

func TestRequestTarget(t *testing.T) {
	one := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:80"), netip.MustParseAddrPort("[::1]:80")}
	two := append(one, netip.MustParseAddrPort("127.0.0.1:443"))
	for _, tc := range []struct {
		req   control.Request
		addrs []netip.AddrPort
		want  string // "" for bad input
	}{
		{control.Request{}, one, "*:80"},
		{control.Request{}, two, ""},
		{control.Request{Port: "443"}, two, "*:443"},
		{control.Request{Listen: "127.0.0.1:443"}, two, "127.0.0.1:443"},
		{control.Request{Listen: "127.0.0.1:443", Port: "443"}, two, ""},
		{control.Request{Port: "x"}, two, ""},
	} {
		got, err := requestTarget(tc.req, tc.addrs)
		if tc.want == "" {
			if !errors.Is(err, sockdrain.ErrInvalid) {
				t.Errorf("requestTarget(%+v) = %v, %v; want bad input", tc.req, got, err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("requestTarget(%+v) = %v, %v; want %s", tc.req, got, err, tc.want)
		}
	}
}

func TestChildStatus(t *testing.T) {
	for script, want := range map[string]int{"exit 0": 0, "exit 3": 3, "kill -TERM $$": 143, "kill -KILL $$": 137} {
		err := childStatus("sh", exec.Command("sh", "-c", script).Run())
		if got := exitCode(err); got != want {
			t.Errorf("sh -c %q: exit code %d (%v), want %d", script, got, err, want)
		}
	}
}

func TestCarriedExitCode(t *testing.T) {
	for err, want := range map[error]int{
		errServerExited: exitServer,
		errBusy:         exitBusy,
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
