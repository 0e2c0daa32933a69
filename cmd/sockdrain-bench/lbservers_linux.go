package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/haproxyctl"
	"github.com/sockdrain/sockdrain/internal/rig/nginxconf"
)

// The servers of table 7: Debian's nginx as backends behind Debian's
// HAProxy, each a process group of its own in the table's namespace,
// from a config in a directory of its own (as in the keep-alive tests,
// cmd/sockdrain/realserver_linux_test.go).

// lbPagePath is the page the clients and HAProxy's checks request.
const lbPagePath = "/page"

// procGroup is a server process started in its own process group.
type procGroup struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process is reaped
}

// startProcGroup starts cmd inside ns in a new process group.
func startProcGroup(ns *netns.NS, cmd *exec.Cmd) (*procGroup, error) {
	g := &procGroup{cmd: cmd, done: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Forked from a thread inside ns, the server starts there.
	if err := ns.Do(cmd.Start); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); close(g.done) }()
	return g, nil
}

// waitExit waits up to limit for the process started to exit.
func (g *procGroup) waitExit(limit time.Duration) bool {
	select {
	case <-g.done:
		return true
	case <-time.After(limit):
		return false
	}
}

// kill sends SIGKILL to the whole group and waits for the process.
func (g *procGroup) kill() {
	syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	g.waitExit(2 * time.Second)
}

// lbNginx is one nginx backend, which can be stopped and started again.
type lbNginx struct {
	ns   *netns.NS
	name string
	addr netip.AddrPort
	dir  string
	proc *procGroup
}

// newLBNginx writes the config and page of a backend on addr and starts it.
func newLBNginx(ns *netns.NS, name string, addr netip.AddrPort, page []byte) (*lbNginx, error) {
	dir, err := os.MkdirTemp("", "sockdrain-bench-lb-nginx-")
	if err != nil {
		return nil, err
	}
	n := &lbNginx{ns: ns, name: name, addr: addr, dir: dir}
	err = nginxconf.Write(dir, nginxconf.Config{Listen: addr.String(), Workers: 1, Connections: 1024},
		map[string][]byte{strings.TrimPrefix(lbPagePath, "/"): page})
	if err == nil {
		err = n.start()
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx %s: %w", name, err)
	}
	return n, nil
}

func (n *lbNginx) args() []string { return nginxconf.Args(n.dir) }

// start starts nginx and waits until it accepts.
func (n *lbNginx) start() error {
	cmd := exec.Command("nginx", n.args()...)
	cmd.Stderr = os.Stderr
	g, err := startProcGroup(n.ns, cmd)
	if err != nil {
		return fmt.Errorf("start nginx: %w", err)
	}
	n.proc = g
	if err := waitListening(n.ns, n.addr, 5*time.Second); err != nil {
		g.kill()
		return err
	}
	return nil
}

// quitCommand is the shell command that makes this nginx quit gracefully,
// as an operator writes it for --stop.
func (n *lbNginx) quitCommand() string {
	return strings.Join(append(append([]string{"nginx"}, n.args()...), "-s", "quit"), " ")
}

// close kills nginx and removes its directory.
func (n *lbNginx) close() {
	n.proc.kill()
	os.RemoveAll(n.dir)
}

// lbHAProxy is HAProxy in the foreground with an admin socket.
type lbHAProxy struct {
	dir  string
	proc *procGroup
}

// startLBHAProxy starts HAProxy on front in ns over servers (name and
// address, in order) and waits until every server is UP.
func startLBHAProxy(ns *netns.NS, front netip.AddrPort, servers []*lbNginx) (*lbHAProxy, error) {
	dir, err := os.MkdirTemp("", "sockdrain-bench-lb-haproxy-")
	if err != nil {
		return nil, err
	}
	var lines strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&lines, "\tserver %s %s\n", s.name, s.addr)
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	log, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err == nil {
		defer log.Close()
		err = os.WriteFile(conf, []byte(haproxyctl.Balance(dir, front.String(), lbPagePath, lines.String())), 0o644)
	}
	h := &lbHAProxy{dir: dir}
	if err == nil {
		// Its alerts (servers going DOWN and UP) go to a file, not the
		// bench's progress.
		cmd := exec.Command("haproxy", "-db", "-f", conf)
		cmd.Stdout, cmd.Stderr = log, log
		h.proc, err = startProcGroup(ns, cmd)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	if err := waitListening(ns, front, 5*time.Second); err != nil {
		h.close()
		return nil, err
	}
	for _, s := range servers {
		if _, err := h.waitStatus(s.name, "UP", 5*time.Second); err != nil {
			h.close()
			return nil, err
		}
	}
	return h, nil
}

// close kills HAProxy and removes its directory.
func (h *lbHAProxy) close() {
	h.proc.kill()
	os.RemoveAll(h.dir)
}

// stats returns `show stat` for server be/name, field by field (status,
// scur, stot, wretr, wredis, ...).
func (h *lbHAProxy) stats(name string) (map[string]string, error) {
	return haproxyctl.ShowStat(h.dir, "be", name)
}

// waitStatus waits until HAProxy reports server name's status as exactly
// want (UP, DOWN, MAINT), and returns how long that took.
func (h *lbHAProxy) waitStatus(name, want string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var got string
	for time.Since(start) < limit {
		s, err := h.stats(name)
		if err != nil {
			return 0, err
		}
		if got = s["status"]; got == want {
			return time.Since(start), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("haproxy: server %s is %q after %s, want %s", name, got, limit, want)
}
