package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

func TestStatusJSONReportsSevenQueuedClients(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	for range 7 {
		nstest.Dial(t, ns, ln.Addr().String())
	}
	var stdout string
	var code int
	ok := nstest.WaitFor(2*time.Second, func() bool {
		code, stdout, _ = runCLI(t, "status", "--listen", ln.Addr().String(), "--netns", ns.Path(), "--json")
		return code == 0 && strings.Contains(stdout, `"accept_queue": 7`)
	})
	if !ok {
		t.Fatalf("exit %d, stdout:\n%s", code, stdout)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	for _, field := range []string{"listen", "pids", "accept_queue", "backlog", "syn_recv", "established",
		"close_wait", "closing", "unacked_bytes"} {
		if _, ok := got[field]; !ok {
			t.Errorf("JSON lacks %q: %s", field, stdout)
		}
	}
	if got["listen"] != ln.Addr().String() {
		t.Errorf("listen = %v, want %s", got["listen"], ln.Addr())
	}

	code, stdout, _ = runCLI(t, "status", "--port", itoa(ln.Addr()), "--netns", ns.Path())
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 2 || strings.Fields(lines[1])[2] != "7" {
		t.Errorf("table: exit %d, want a header and one row with ACCEPTQ 7:\n%s", code, stdout)
	}
}

func TestStatusWatchRefreshesUntilInterrupted(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 350*time.Millisecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, env{
		args:   []string{"sockdrain", "status", "--listen", ln.Addr().String(), "--netns", ns.Path(), "--json", "--watch", "--interval", "100ms"},
		stdout: &stdout, stderr: &stderr,
	})
	n := strings.Count(stdout.String(), `"accept_queue"`)
	if code != 0 || n < 2 {
		t.Errorf("exit %d after %d refreshes, want 0 after at least 2; stderr %q", code, n, stderr.String())
	}
}
