package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/control"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// TestDrainThroughRunExitCodes ends drains through a real `sockdrain run`
// and its control socket in each way the exit codes name: `drain
// --control` must exit as a local drain would, and control.Drain must
// return an error that is the library's own. The error crosses the socket
// as a kind. (Exit 4, a peer that is not root, is
// TestRunControlRefusesNonRoot; its error is fs.ErrPermission.)
func TestDrainThroughRunExitCodes(t *testing.T) {
	const addr = "127.0.0.1:8080"
	type drainFunc func(t *testing.T, ctl string, req control.Request) *drainRun
	for _, tc := range []struct {
		name   string
		status string // the child server's
		code   int
		err    error
		req    control.Request
		// act runs while the drain waits in phase gated on the connected
		// client; nil for a drain that ends without waiting.
		act func(t *testing.T, p *runProc, client net.Conn, ctl string, drain drainFunc)
	}{
		{"drained", "0", exitOK, nil, control.Request{Timeout: 10 * time.Second},
			func(t *testing.T, _ *runProc, client net.Conn, _ string, _ drainFunc) { client.Close() }},
		{"bad input", "0", exitInvalid, sockdrain.ErrInvalid, control.Request{Listen: "127.0.0.1:9", Timeout: 5 * time.Second}, nil},
		{"timed out", "0", exitTimeout, sockdrain.ErrTimeout, control.Request{Timeout: 300 * time.Millisecond}, nil},
		{"listener closed", childShutdown, exitListener, sockdrain.ErrListenerClosed, control.Request{Timeout: 10 * time.Second},
			func(t *testing.T, p *runProc, _ net.Conn, _ string, _ drainFunc) {
				p.signal(t, syscall.SIGTERM)
				p.waitLine(t, "listeners shut down")
			}},
		{"server exited", childStall, exitServer, sockdrain.ErrServerExited, control.Request{Timeout: 10 * time.Second},
			func(t *testing.T, p *runProc, _ net.Conn, _ string, _ drainFunc) { p.signal(t, syscall.SIGTERM) }},
		{"busy", "0", exitBusy, sockdrain.ErrBusy, control.Request{Timeout: 10 * time.Second}, nil},
	} {
		for via, drain := range map[string]drainFunc{"cli": drainCLI, "library": drainLibrary} {
			t.Run(tc.name+"/"+via, func(t *testing.T) {
				ns := nstest.New(t)
				ctl := filepath.Join(t.TempDir(), "ctl", "web.sock")
				p := startRun(t, ns, "--listen", addr, "--control", ctl, "--", os.Args[0], childArg, tc.status)
				p.waitLine(t, "ready")
				// Accepted, the server waits 5s for its request; queued, by a
				// server that stalls, it stays until run exits.
				client := nstest.Dial(t, ns, addr)
				var first *drainRun
				if tc.code == exitBusy { // a drain under way makes the next one busy
					first = drainLibrary(t, ctl, control.Request{Timeout: 10 * time.Second})
					first.waitGated(t)
				}
				d := drain(t, ctl, tc.req)
				if tc.act != nil {
					d.waitGated(t)
					tc.act(t, p, client, ctl, drain)
				}
				d.wait(t)
				if via == "cli" && d.code != tc.code {
					t.Errorf("drain --control: exit %d, want %d; stderr %q", d.code, tc.code, d.stderr)
				}
				if via == "library" && (!errors.Is(d.err, tc.err) || (tc.err == nil) != (d.err == nil)) {
					t.Errorf("control.Drain = %v, want an error that is %v", d.err, tc.err)
				}
				if first != nil {
					client.Close()
					if first.wait(t); first.err != nil {
						t.Errorf("the first drain: %v", first.err)
					}
				}
			})
		}
	}
}

// drainRun is a drain through a control socket under way.
type drainRun struct {
	gated  chan struct{} // closed once the drain reports phase gated
	done   chan struct{}
	code   int    // the CLI's exit code
	stderr string // the CLI's
	err    error  // control.Drain's
}

func (d *drainRun) waitGated(t *testing.T) {
	t.Helper()
	select {
	case <-d.gated:
	case <-d.done:
		t.Fatalf("the drain ended before phase gated: exit %d, %v, stderr %q", d.code, d.err, d.stderr)
	case <-time.After(10 * time.Second):
		t.Fatal("no phase gated within 10s")
	}
}

func (d *drainRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the drain did not end within 15s")
	}
}

// drainCLI runs `sockdrain drain --control` as a process.
func drainCLI(t *testing.T, ctl string, req control.Request) *drainRun {
	args := []string{"drain", "--control", ctl, "--json", "--timeout", req.Timeout.String()}
	if req.Listen != "" {
		args = append(args, "--listen", req.Listen)
	}
	p := startCLIUnder(t, nil, args...)
	d := &drainRun{gated: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for line := range p.lines {
			if strings.Contains(line, `"event":"phase"`) && strings.Contains(line, `"phase":"gated"`) {
				close(d.gated)
			}
		}
		d.code, d.stderr = p.wait().ExitCode(), p.stderr.String()
	}()
	return d
}

// drainLibrary runs control.Drain in this process.
func drainLibrary(t *testing.T, ctl string, req control.Request) *drainRun {
	d := &drainRun{gated: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	var once bool
	go func() {
		defer close(d.done)
		_, d.err = control.Drain(ctx, ctl, req, func(r sockdrain.Report) {
			if r.Phase == sockdrain.Gated && !once {
				once = true
				close(d.gated)
			}
		})
	}()
	return d
}
