//go:build freebsd && freebsdkernel

package sockdrain_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain gives the tests a PATH when they run as the children of a bare
// PID 1, which sets none: the gates run /sbin/pfctl and /sbin/ipfw.
func TestMain(m *testing.M) {
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", "/sbin:/bin:/usr/sbin:/usr/bin")
	}
	os.Exit(m.Run())
}

// requireStatefulPf skips t unless pf is enabled with the ruleset users
// have: sockdrain's anchor first, then rules that pass with state, and lo0
// not skipped. That is the setup in which FreeBSD 15.1 broke the promise
// for loopback clients.
func requireStatefulPf(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run pfctl")
	}
	info, err := exec.Command("pfctl", "-s", "info").Output()
	if err != nil || !strings.Contains(string(info), "Status: Enabled") {
		t.Skipf("needs pf enabled (pfctl -e) with anchor \"sockdrain/*\" then pass all: pfctl -s info: %v", err)
	}
	rules, err := exec.Command("pfctl", "-s", "rules").Output()
	if err != nil {
		t.Fatalf("pfctl -s rules: %v", err)
	}
	anchor, stateful := false, false
	for _, line := range strings.Split(string(rules), "\n") {
		switch {
		case strings.HasPrefix(line, `anchor "sockdrain/*"`):
			anchor = true
		case strings.HasPrefix(line, "pass ") && !strings.Contains(line, "no state"):
			stateful = stateful || anchor // after the anchor, as users have it
		}
	}
	if !anchor || !stateful {
		t.Skipf("needs pf's main ruleset to hold anchor \"sockdrain/*\" and then a pass rule that keeps state; it holds:\n%s", rules)
	}
	ifaces, err := exec.Command("pfctl", "-s", "Interfaces", "-v").Output()
	if err != nil {
		t.Fatalf("pfctl -s Interfaces: %v", err)
	}
	for _, line := range strings.Split(string(ifaces), "\n") {
		if strings.HasPrefix(line, "lo0") && strings.Contains(line, "(skip)") {
			t.Skip("needs pf to filter lo0: remove 'set skip on lo0'")
		}
	}
}

// pfStateMismatch is pf's state-mismatch counter, which rises by one for
// each packet pf drops for failing a state's sequence window.
func pfStateMismatch(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("pfctl", "-s", "info").Output()
	if err != nil {
		t.Fatalf("pfctl -s info: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "state-mismatch" {
			return f[1]
		}
	}
	return "?"
}
