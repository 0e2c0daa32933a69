package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// side is where a CLI process runs: inside the namespace under
// `ip netns exec`, which gives it a private mount namespace with a /sys of
// its own and no bpffs; or on the host, with --netns.
type side string

const (
	inside  side = "ip netns exec"
	outside side = "--netns"
)

var sides = []side{inside, outside}

// cliOn runs the CLI as a process on side s, for ns, within 30s.
func cliOn(t *testing.T, ns *netns.NS, s side, args ...string) (int, string, string) {
	t.Helper()
	p := startCLIUnder(t, s.wrapper(ns), s.args(ns, args)...)
	var out []string
	for line := range p.lines {
		out = append(out, line)
	}
	done := make(chan struct{})
	go func() { p.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s %q: still running after 30s", s, args)
	}
	return p.cmd.ProcessState.ExitCode(), strings.Join(out, "\n"), p.stderr.String()
}

func (s side) wrapper(ns *netns.NS) []string {
	if s == inside {
		return []string{"ip", "netns", "exec", filepath.Base(ns.Path())}
	}
	return nil
}

func (s side) args(ns *netns.NS, args []string) []string {
	if s == outside {
		return append(slices.Clone(args), "--netns", ns.Path())
	}
	return args
}

// listenKinds are the listeners of the report: nginx's plain listener,
// and a default Go server's MPTCP one.
var listenKinds = []string{"plain", "MPTCP"}

func listenKind(t *testing.T, ns *netns.NS, kind string) *net.TCPListener {
	t.Helper()
	if kind == "plain" {
		return nstest.Listen(t, ns, "127.0.0.1:0", nil)
	}
	lc := net.ListenConfig{}
	lc.SetMultipathTCP(true)
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = lc.Listen(context.Background(), "tcp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gatetest.RequireMPTCP(t, &gatetest.Server{Listener: gate.Listener{Sockets: []*os.File{f}}})
	return ln.(*net.TCPListener)
}

func requireIPNetnsExec(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("needs ip (iproute2) for ip netns exec: %v", err)
	}
}

// TestDrainUnderIPNetnsExec drains with the sklookup gate from inside the
// namespace (ip netns exec) and from the host (--netns), for a plain and
// an MPTCP listener, and resumes from either side. Once drain exits 0, the
// port must refuse until resume: the gate's pins must be in the host's
// bpffs, not in one that dies with the drain's mount namespace. status on
// either side shows the gate, and resume leaves the system as it was.
func TestDrainUnderIPNetnsExec(t *testing.T) {
	requireIPNetnsExec(t)
	for _, kind := range listenKinds {
		for _, drainOn := range sides {
			for _, resumeOn := range sides {
				name := kind + "/drain " + string(drainOn) + "/resume " + string(resumeOn)
				t.Run(name, func(t *testing.T) { testDrainSides(t, kind, drainOn, resumeOn) })
			}
		}
	}
}

func testDrainSides(t *testing.T, kind string, drainOn, resumeOn side) {
	ns := nstest.New(t)
	ln := listenKind(t, ns, kind)
	serveEcho(ln)
	addr := ln.Addr().String()
	before := snapshot(t, ns)

	code, stdout, stderr := cliOn(t, ns, drainOn, "drain", "--listen", addr, "--backend", "sklookup", "--json", "--timeout", "10s")
	if code != 0 || !strings.Contains(stdout, `"phase":"drained"`) {
		t.Fatalf("drain: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	for range 2 { // at once, and after the drain's mount namespace is surely gone
		requireRefused(t, ns, addr)
		time.Sleep(100 * time.Millisecond)
	}
	for _, s := range sides {
		if got := statusGatesOn(t, ns, s, addr); !slices.Equal(got, []string{"sklookup"}) {
			t.Errorf("status (%s) after drain: gates %q, want [sklookup]", s, got)
		}
	}
	resumeOnSide(t, ns, resumeOn, addr, "sklookup")
	requireServed(t, ns, addr)
	requireSnapshot(t, ns, before)
}

// TestKillNineUnderIPNetnsExec kills a drain waiting in phase gated, run
// inside the namespace or from the host: the gate stays closed, status
// shows it on both sides, the queued client is served, and resume from
// the other side opens the gate and leaves the system as it was.
func TestKillNineUnderIPNetnsExec(t *testing.T) {
	requireIPNetnsExec(t)
	for _, kind := range listenKinds {
		for _, drainOn := range sides {
			t.Run(kind+"/drain "+string(drainOn), func(t *testing.T) {
				ns := nstest.New(t)
				ln := listenKind(t, ns, kind)
				addr := ln.Addr().String()
				before := snapshot(t, ns)
				queued := nstest.Dial(t, ns, addr) // nobody accepts: the drain waits in gated
				args := drainOn.args(ns, []string{"drain", "--listen", addr, "--backend", "sklookup", "--json", "--timeout", "20s"})
				p := startCLIUnder(t, drainOn.wrapper(ns), args...)
				p.waitPhase(t, "gated")
				if st := p.kill(t); !killedBySIGKILL(st) {
					t.Fatalf("the drain ended %v, stderr %q; want killed by SIGKILL", st, p.stderr.String())
				}
				time.Sleep(100 * time.Millisecond)
				requireRefused(t, ns, addr)
				for _, s := range sides {
					if got := statusGatesOn(t, ns, s, addr); !slices.Equal(got, []string{"sklookup"}) {
						t.Errorf("status (%s) after kill -9: gates %q, want [sklookup]", s, got)
					}
				}
				serveEcho(ln)
				if err := exchange(queued); err != nil {
					t.Errorf("after kill -9, the queued client was not served: %v", err)
				}
				resumeOnSide(t, ns, other(drainOn), addr, "sklookup")
				requireServed(t, ns, addr)
				requireSnapshot(t, ns, before)
			})
		}
	}
}

func other(s side) side {
	if s == inside {
		return outside
	}
	return inside
}

func statusGatesOn(t *testing.T, ns *netns.NS, s side, addr string) []string {
	t.Helper()
	code, stdout, stderr := cliOn(t, ns, s, "status", "--listen", addr, "--json")
	var l struct {
		Gates []string `json:"gates"`
	}
	if err := json.Unmarshal([]byte(stdout), &l); code != 0 || err != nil || l.Gates == nil {
		t.Fatalf("status (%s): exit %d (%v), stderr %q, stdout:\n%s", s, code, err, stderr, stdout)
	}
	return l.Gates
}

func resumeOnSide(t *testing.T, ns *netns.NS, s side, addr, want string) {
	t.Helper()
	code, stdout, stderr := cliOn(t, ns, s, "resume", "--listen", addr, "--json")
	var got struct{ Opened []string }
	json.Unmarshal([]byte(stdout), &got)
	if code != 0 || len(got.Opened) != 1 || !strings.HasPrefix(got.Opened[0], want+" on ") {
		t.Fatalf("resume (%s): exit %d, stderr %q, stdout %q; want exit 0, opened %s", s, code, stderr, stdout, want)
	}
}
