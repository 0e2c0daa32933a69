package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// runCLIWithout runs the CLI as a child process inside ns with the
// capabilities in drop (setpriv's syntax, e.g. "-bpf,-sys_admin") gone
// from its bounding set, so a root process starts without them. It
// returns the exit code and stderr.
func runCLIWithout(t *testing.T, nsPath, drop string, args ...string) (int, string) {
	t.Helper()
	for _, tool := range []string{"nsenter", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("dropping capabilities needs %s (util-linux): %v", tool, err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	argv := append([]string{"--net=" + nsPath, "setpriv", "--bounding-set", drop, "--", exe}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	cmd.Env = append(os.Environ(), runAsCLI+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// Without the capabilities a gate needs, drain exits 4 with one line, the
// port keeps accepting, and the kernel holds nothing new.
func TestDrainWithoutCapabilities(t *testing.T) {
	nstest.RequireAdmin(t)
	for _, tc := range []struct {
		name, drop, backend string
	}{
		{"no bpf, no net_admin", "-bpf,-sys_admin,-perfmon,-net_admin", "auto"},
		{"no bpf", "-bpf,-sys_admin,-perfmon", "sklookup"},
		{"no bpf (reuseport)", "-bpf,-sys_admin,-perfmon", "reuseport"},
		{"no net_admin", "-net_admin", "nftables"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nstest.New(t)
			ln := nstest.Listen(t, ns, "127.0.0.1:0", reusePort)
			serveEcho(ln)
			addr := ln.Addr().String()
			before := snapshot(t, ns)
			code, stderr := runCLIWithout(t, ns.Path(), tc.drop, "drain", "--listen", addr, "--backend", tc.backend, "--timeout", "5s")
			if code != exitUnsupported || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "not permitted") {
				t.Errorf("exit %d, stderr %q; want exit 4 and one line saying it is not permitted", code, stderr)
			}
			requireServed(t, ns, addr)
			requireSnapshot(t, ns, before)
		})
	}
}

// Observing the caller's own namespace needs no capability beyond reading
// /proc: status works where drain is not permitted.
func TestStatusWithoutCapabilities(t *testing.T) {
	nstest.RequireAdmin(t)
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	nstest.Dial(t, ns, ln.Addr().String())
	code, stderr := runCLIWithout(t, ns.Path(), "-bpf,-sys_admin,-perfmon,-net_admin", "status", "--listen", ln.Addr().String())
	if code != exitOK {
		t.Errorf("status without capabilities: exit %d, stderr %q; want 0", code, stderr)
	}
}
