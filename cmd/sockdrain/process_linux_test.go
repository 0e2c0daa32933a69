package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// phaseTimeout bounds the wait for a drain's phase line.
const phaseTimeout = 10 * time.Second

// cliProcess is the CLI running as a child process: this test binary
// re-executed with runAsCLI set.
type cliProcess struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at EOF
	stderr bytes.Buffer
	waited bool
}

// startCLI starts the CLI with args, killed when t ends.
func startCLI(t *testing.T, args ...string) *cliProcess {
	t.Helper()
	return startCLIUnder(t, nil, args...)
}

// startCLIUnder starts the CLI with args under the command wrapper, such as
// "ip netns exec NAME", which must exec the CLI in its own place.
func startCLIUnder(t *testing.T, wrapper []string, args ...string) *cliProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	argv := append(append(slices.Clone(wrapper), exe), args...)
	p := &cliProcess{cmd: exec.Command(argv[0], argv[1:]...), lines: make(chan string, 64)}
	p.cmd.Env = append(os.Environ(), runAsCLI+"=1")
	p.cmd.Stdout, p.cmd.Stderr = w, &p.stderr
	err = p.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	go p.read(r)
	t.Cleanup(func() { p.cmd.Process.Kill(); p.wait() })
	return p
}

func (p *cliProcess) read(r io.ReadCloser) {
	defer r.Close()
	defer close(p.lines)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p.lines <- sc.Text()
	}
}

// wait waits for the process to end, once, and returns how it ended.
func (p *cliProcess) wait() *os.ProcessState {
	if !p.waited {
		p.waited = true
		p.cmd.Wait()
	}
	return p.cmd.ProcessState
}

// waitPhase reads the drain's JSON lines until one reports phase, and
// returns it. It fails t if the CLI ends or phaseTimeout passes first.
func (p *cliProcess) waitPhase(t *testing.T, phase string) map[string]any {
	t.Helper()
	timeout := time.After(phaseTimeout)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("the CLI ended (%v) before phase %s; stderr %q", p.wait(), phase, p.stderr.String())
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("not a JSON line: %q", line)
			}
			if r["event"] == "phase" && r["phase"] == phase {
				return r
			}
		case <-timeout:
			t.Fatalf("no phase %s within %s", phase, phaseTimeout)
		}
	}
}

// kill sends SIGKILL and returns how the process ended: killed, or
// already exited on its own.
func (p *cliProcess) kill(t *testing.T) *os.ProcessState {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	return p.wait()
}

// killedBySIGKILL reports whether st is the end of a process SIGKILL killed.
func killedBySIGKILL(st *os.ProcessState) bool {
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// serveEcho accepts on ln until it closes and echoes every connection.
// The echo hides the conn's ReadFrom: TCP to TCP, io.Copy would splice
// through a pipe Go keeps cached, which CheckLeaks would see as a leak.
func serveEcho(ln *net.TCPListener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(struct{ io.Writer }{c}, c); c.Close() }()
		}
	}()
}

// exchange checks that c is served: a line written to it comes back.
func exchange(c net.Conn) error {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		err = errors.New("echo " + line)
	}
	return err
}

// requireServed dials addr in ns and checks the connection is served.
func requireServed(t *testing.T, ns *netns.NS, addr string) {
	t.Helper()
	c, err := nstest.DialErr(ns, addr)
	if err != nil {
		t.Fatalf("dial %s: %v; want it served", addr, err)
	}
	defer c.Close()
	if err := exchange(c); err != nil {
		t.Fatalf("dial %s: connected, but not served: %v", addr, err)
	}
}

// requireRefused dials addr in ns and checks the connect gets ECONNREFUSED.
func requireRefused(t *testing.T, ns *netns.NS, addr string) {
	t.Helper()
	c, err := nstest.DialErr(ns, addr)
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v; want connection refused", addr, err)
	}
}

// statusGates runs `sockdrain status --json` on addr and returns the
// listener's "gates".
func statusGates(t *testing.T, ns *netns.NS, addr string) []string {
	t.Helper()
	code, stdout, stderr := runCLI(t, "status", "--listen", addr, "--netns", ns.Path(), "--json")
	var l struct {
		Gates []string `json:"gates"`
	}
	if err := json.Unmarshal([]byte(stdout), &l); code != 0 || err != nil || l.Gates == nil {
		t.Fatalf("status: exit %d (%v), stderr %q, stdout:\n%s", code, err, stderr, stdout)
	}
	return l.Gates
}

// resume runs `sockdrain resume` on addr and fails t unless it opened
// exactly want (none for "").
func resume(t *testing.T, ns *netns.NS, addr, want string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, "resume", "--listen", addr, "--netns", ns.Path(), "--json")
	var got struct{ Opened []string }
	json.Unmarshal([]byte(stdout), &got)
	ok := len(got.Opened) == 0 && want == ""
	if len(got.Opened) == 1 {
		ok = strings.HasPrefix(got.Opened[0], want+" on ")
	}
	if code != 0 || !ok {
		t.Fatalf("resume: exit %d, stderr %q, stdout %q; want exit 0, opened %q", code, stderr, stdout, want)
	}
}

// requireSnapshot waits up to 2s for the kernel state to be want again:
// the kernel frees a dead process's BPF objects after an RCU grace period.
func requireSnapshot(t *testing.T, ns *netns.NS, want kernelState) {
	t.Helper()
	var got kernelState
	same := func() bool {
		got = snapshot(t, ns)
		return slices.Equal(got.pins, want.pins) && got.progs == want.progs && got.nft == want.nft
	}
	if !nstest.WaitFor(2*time.Second, same) {
		t.Fatalf("kernel state:\n got  %+v\n want %+v", got, want)
	}
}
