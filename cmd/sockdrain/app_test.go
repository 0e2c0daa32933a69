package main

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, env{args: append([]string{"sockdrain"}, args...), stdout: &stdout, stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

func TestBadInputExitsTwoWithOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"status"},
		{"status", "--listen", "127.0.0.1"},
		{"status", "--listen", "127.0.0.1:0"},
		{"status", "--listen", "127.0.0.1:65536"},
		{"status", "--listen", "localhost:80"},
		{"status", "--listen", "::1:80"},
		{"status", "--listen", "[fe80::1%eth0]:80"},
		{"status", "--port", "-1"},
		{"status", "--port", "http"},
		{"status", "--port", "80", "--listen", "127.0.0.1:80"},
		{"status", "--port", "80", "extra"},
		{"status", "--port", "80", "--interval", "0s", "--watch"},
		{"status", "--bogus"},
		{"status", "--port", "80", "--netns", "/nonexistent/netns"},
		{"status", "--port", "80", "--netns", "/etc/hostname"},
		{"nosuchcommand"},
	} {
		code, stdout, stderr := runCLI(t, args...)
		if code != exitInvalid {
			t.Errorf("%q: exit %d, want %d (stderr %q)", args, code, exitInvalid, stderr)
		}
		if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "sockdrain: ") {
			t.Errorf("%q: stderr %q, want one line starting \"sockdrain: \"", args, stderr)
		}
		if stdout != "" {
			t.Errorf("%q: wrote to stdout: %q", args, stdout)
		}
	}
}

func TestHelpListsExitCodes(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"status", "--help"}} {
		code, stdout, _ := runCLI(t, args...)
		if code != exitOK || !strings.Contains(stdout, "EXIT CODES") || !strings.Contains(stdout, "3  timed out") {
			t.Errorf("%q: exit %d, help without exit codes:\n%s", args, code, stdout)
		}
	}
}

func itoa(a net.Addr) string { return strconv.Itoa(a.(*net.TCPAddr).Port) }
