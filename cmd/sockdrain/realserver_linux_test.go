package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/haproxyctl"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/rig/nginxconf"
)

// Real servers for the keep-alive tests: Debian's nginx and HAProxy, and
// this test binary as a default Go net/http server. Each runs inside the
// test's namespace, from a config in t.TempDir(), in a process group of its
// own that t.Cleanup kills.

// requireTool returns the path of a server binary, or skips t saying why:
// `make test` installs it (deps-test), so CI runs these tests.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (Debian package %s; `make test` installs it through deps-test): %v", name, pkg, err)
	}
	return path
}

// serverGroup is a real server started in its own process group.
type serverGroup struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process started is reaped
	err  error         // how it ended, once done is closed
}

// startGroup starts cmd inside ns, in a new process group, and kills the
// whole group when t ends, failing t if any process of it survives.
func startGroup(t *testing.T, ns *netns.NS, name string, cmd *exec.Cmd) *serverGroup {
	t.Helper()
	g := &serverGroup{name: name, cmd: cmd, done: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Forked from a thread inside ns, the server starts there.
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { g.err = cmd.Wait(); close(g.done) }()
	t.Cleanup(func() { g.kill(t) })
	return g
}

// exited reports whether the process started has exited.
func (g *serverGroup) exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to limit for the process started to exit.
func (g *serverGroup) waitExit(limit time.Duration) bool {
	select {
	case <-g.done:
		return true
	case <-time.After(limit):
		return false
	}
}

// kill sends SIGKILL to the whole group and checks that nothing of it is
// left after two seconds.
func (g *serverGroup) kill(t *testing.T) {
	pgid := g.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGKILL)
	if !g.waitExit(2 * time.Second) {
		t.Errorf("%s (pid %d) did not die of SIGKILL within 2s", g.name, pgid)
	}
	gone := func() bool { return syscall.Kill(-pgid, 0) == syscall.ESRCH }
	for deadline := time.Now().Add(2 * time.Second); !gone() && time.Now().Before(deadline); {
		syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(20 * time.Millisecond)
	}
	if !gone() {
		t.Errorf("a process of %s's group %d survived SIGKILL", g.name, pgid)
	}
}

// smallBody is what nginx serves at /: the keep-alive clients' page.
const smallBody = 2048

// nginx is Debian's nginx serving from its own directory.
type nginx struct {
	*serverGroup
	bin, dir, addr string
}

// startNginx starts nginx on addr (HOST:PORT) in ns and waits until it
// accepts. big, if not nil, is served at /big.
func startNginx(t *testing.T, ns *netns.NS, addr string, big []byte) *nginx {
	t.Helper()
	n := &nginx{bin: requireTool(t, "nginx", "nginx-light"), dir: t.TempDir(), addr: addr}
	pages := map[string][]byte{"index.html": pageBody(smallBody)}
	if big != nil {
		pages["big"] = big
	}
	// Workers run as root, to read t.TempDir().
	if err := nginxconf.Write(n.dir, nginxconf.Config{Listen: addr, Workers: 2, Connections: 1024, User: "root"}, pages); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(n.bin, n.args()...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	n.serverGroup = startGroup(t, ns, "nginx on "+addr, cmd)
	waitAccepting(t, ns, addr)
	return n
}

func (n *nginx) args() []string { return nginxconf.Args(n.dir) }

// quitCommand is the shell command that makes this nginx quit gracefully,
// as an operator would write it for --stop.
func (n *nginx) quitCommand() string {
	q := []string{shellQuote(n.bin)}
	for _, a := range n.args() {
		q = append(q, shellQuote(a))
	}
	return strings.Join(append(q, "-s", "quit"), " ")
}

// errorLog returns the last lines of nginx's error log, for failure messages.
func (n *nginx) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return tail(string(b), 10)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pageBody is n bytes of text, the same for every server, so a client can
// check the length and the content of what it got: loadgen's body pattern.
func pageBody(n int) []byte {
	b := make([]byte, n)
	loadgen.FillBody(b)
	return b
}

// randomBody is n pseudo-random bytes from seed, and their SHA-256.
func randomBody(n int, seed uint64) ([]byte, [32]byte) {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b, sha256.Sum256(b)
}

// waitAccepting waits up to 5s until a connection to addr in ns succeeds.
func waitAccepting(t *testing.T, ns *netns.NS, addr string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		err = ns.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return
		}
	}
	t.Fatalf("nothing accepts on %s within 5s: %v", addr, err)
}

// haproxy is Debian's HAProxy in the foreground, with an admin socket.
type haproxy struct {
	*serverGroup
	dir, addr string
}

// startHAProxy starts HAProxy on addr in ns, balancing over servers (name
// to HOST:PORT, in order), and waits until every server is UP.
func startHAProxy(t *testing.T, ns *netns.NS, addr string, servers [][2]string) *haproxy {
	t.Helper()
	h := &haproxy{dir: t.TempDir(), addr: addr}
	bin := requireTool(t, "haproxy", "haproxy")
	var lines strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&lines, "\tserver %s %s\n", s[0], s[1])
	}
	conf := filepath.Join(h.dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(haproxyctl.Balance(h.dir, addr, "/", lines.String())), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", conf)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	h.serverGroup = startGroup(t, ns, "haproxy", cmd)
	waitAccepting(t, ns, addr)
	for _, s := range servers {
		h.waitStatus(t, s[0], "UP", 5*time.Second)
	}
	return h
}

// stats returns HAProxy's `show stat` for server name of backend be, field
// by field (status, wretr, wredis, eresp, econ, stot, ...).
func (h *haproxy) stats(t *testing.T, name string) map[string]string {
	t.Helper()
	m, err := haproxyctl.ShowStat(h.dir, "be", name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitStatus waits until HAProxy reports server name's status as want
// (UP, DOWN, ...), and returns how long that took.
func (h *haproxy) waitStatus(t *testing.T, name, want string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got string
	for time.Since(start) < limit {
		if got = h.stats(t, name)["status"]; strings.HasPrefix(got, want) {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("haproxy: server %s is %q after %s, want %s", name, got, limit, want)
	return 0
}

// goServerArg, as the test binary's first argument, makes it a default Go
// net/http server (goServer) instead of running the tests.
const goServerArg = "sockdrain-test-go-http-server"

// goHTTP is this test binary running as goServer on one address.
type goHTTP struct {
	*serverGroup
	mptcp bool // the listener is an MPTCP socket
}

// startGoHTTP starts goServer on addr in ns and waits for its ready line.
func startGoHTTP(t *testing.T, ns *netns.NS, addr string) *goHTTP {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, goServerArg, addr)
	cmd.Stderr = os.Stderr
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	g := &goHTTP{serverGroup: startGroup(t, ns, "go net/http server", cmd)}
	w.Close()
	ready := make(chan string, 1)
	go func() {
		defer out.Close()
		br := bufio.NewReader(out)
		line, _ := br.ReadString('\n')
		ready <- line
		// The rest (its shutdown line) goes to the test's stderr.
		for sc := bufio.NewScanner(br); sc.Scan(); {
			fmt.Fprintf(os.Stderr, "go server: %s\n", sc.Text())
		}
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "ready ") {
			t.Fatalf("go server: %q, want a ready line", line)
		}
		g.mptcp = strings.Contains(line, "proto=mptcp")
	case <-time.After(5 * time.Second):
		t.Fatal("go server: no ready line within 5s")
	}
	return g
}

// goServer listens on addr as a default Go server does (net.Listen "tcp",
// MPTCP where the kernel enables it), serves smallBody pages at every path,
// and on SIGTERM calls Server.Shutdown and exits 0.
func goServer(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("listen:", err)
		return 90
	}
	proto := "tcp"
	if rc, err := ln.(*net.TCPListener).SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if p, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL); p == unix.IPPROTO_MPTCP {
				proto = "mptcp"
			}
		})
	}
	return serveUntilTERM(ln, proto)
}

// runCLIProcess runs the CLI as a child process (this test binary with
// runAsCLI set) and waits for it, at most limit, killing it then.
func runCLIProcess(t *testing.T, limit time.Duration, args ...string) cliRun {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), runAsCLI+"=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	r := cliRun{args: args, took: time.Since(start), stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run the CLI %q: %v", args, err)
	}
	r.code = cmd.ProcessState.ExitCode()
	if ctx.Err() != nil {
		t.Fatalf("the CLI %q did not end within %s; stderr %q, stdout:\n%s", args, limit, r.stderr, r.stdout)
	}
	return r
}

// cliRun is how one run of the CLI ended.
type cliRun struct {
	args           []string
	code           int
	took           time.Duration
	stdout, stderr string
}

func (r cliRun) String() string {
	return fmt.Sprintf("sockdrain %s: exit %d after %s; stderr %q; stdout:\n%s",
		strings.Join(r.args, " "), r.code, r.took.Round(time.Millisecond), r.stderr, r.stdout)
}

// destroyPort destroys, from inside ns, every TCP socket whose local port
// is port (the server's side: listeners, connections and orphans), as
// `ss -K` does, and returns what ss listed.
func destroyPort(t *testing.T, ns *netns.NS, port string) string {
	t.Helper()
	ss := requireTool(t, "ss", "iproute2")
	cmd := exec.Command(ss, "-K", "-t", "-a", "-n", "sport = :"+port)
	var out []byte
	err := ns.Do(func() (err error) { out, err = cmd.CombinedOutput(); return err })
	if err != nil {
		t.Fatalf("ss -K sport = :%s: %v: %s", port, err, out)
	}
	return string(out)
}

// serveUntilTERM serves smallBody pages on ln until SIGTERM, then shuts
// the server down as Server.Shutdown's contract says: it closes the
// listener and idle connections, waits for active ones, and returns 0.
func serveUntilTERM(ln net.Listener, proto string) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	page := pageBody(smallBody)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write(page)
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("ready pid=%d proto=%s\n", os.Getpid(), proto)
	select {
	case <-sigs:
	case err := <-served:
		fmt.Println("serve:", err)
		return 91
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err := srv.Shutdown(ctx)
	fmt.Printf("shutdown after SIGTERM: %v in %s\n", err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		return 92
	}
	return 0
}
