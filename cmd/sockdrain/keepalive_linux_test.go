package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/httpclients"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// Persistent connections (issue 12): real servers with keep-alive clients,
// drained by the CLI as a process of its own, with --stop, --stop-signal
// and --close-idle. A drain must not wait out nginx's 65s keep-alive:
// drainBound is the correctness bound on how long one may take.
const drainBound = 10 * time.Second

// keepAliveClients is the load of issue 12: 32 Go clients with keep-alive,
// 50 ms between requests, bounded by count and time.
func keepAliveClients(url string) httpclients.Config {
	return httpclients.Config{URL: url, Clients: 32, Pause: 50 * time.Millisecond,
		Requests: 2000, Duration: 40 * time.Second, Body: pageBody(smallBody)}
}

// drainReports parses a drain's --json lines.
func drainReports(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var reps []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		reps = append(reps, r)
	}
	if len(reps) == 0 {
		t.Fatal("the drain printed no JSON line")
	}
	return reps
}

// maxCount is the largest value of a count across reports; -1 if no
// report carries it.
func maxCount(reps []map[string]any, key string) float64 {
	m := -1.0
	for _, r := range reps {
		if v, ok := r[key].(float64); ok && v > m {
			m = v
		}
	}
	return m
}

// requireDrained checks that a drain exited 0 within drainBound with a
// final "drained" report, and returns its reports.
func requireDrained(t *testing.T, r cliRun) []map[string]any {
	t.Helper()
	t.Logf("drain took %s (exit %d)", r.took.Round(time.Millisecond), r.code)
	if r.code != exitOK {
		t.Fatalf("want exit 0: %s", r)
	}
	if r.took > drainBound {
		t.Errorf("the drain took %s, want < %s (it must not wait out keep-alive): %s", r.took, drainBound, r)
	}
	reps := drainReports(t, r.stdout)
	if last := reps[len(reps)-1]; last["phase"] != "drained" {
		t.Errorf("last report %v, want phase drained", last)
	}
	return reps
}

// resumeAfter runs `sockdrain resume` on addr, as an operator does after
// a drain whose gate stays armed, whether or not the listener is still
// there; nstest then checks that nothing of the gate is left pinned.
func resumeAfter(t *testing.T, ns *netns.NS, addr string) {
	t.Helper()
	r := runCLIProcess(t, 20*time.Second, "resume", "--listen", addr, "--netns", ns.Path(), "--json")
	if r.code != exitOK {
		t.Errorf("resume after the drain: %s", r)
	}
	t.Logf("resume %s: %s", addr, strings.TrimSpace(r.stdout))
}

// afterDrain lets the clients run on for a while after a drain, stops
// them, and returns what they got in that while.
func afterDrain(k keepAlive, d time.Duration) httpclients.Counts {
	before := k.Counts()
	time.Sleep(d)
	k.Stop()
	k.Wait()
	return k.Counts().Sub(before)
}

// nginx with its default keepalive_timeout 65s and 32 keep-alive clients:
// `drain --stop 'nginx -s quit'` ends in seconds, and every request gets a
// complete answer or ECONNREFUSED on a new connection.
func TestKeepAliveNginxStop(t *testing.T) {
	ns := nstest.New(t)
	const addr = "127.0.0.1:8080"
	n := startNginx(t, ns, addr, nil)
	k := startKeepAlive(t, ns, keepAliveClients("http://"+addr+"/"))
	k.waitConnections(t, 32, 5*time.Second)
	before := k.Counts()
	r := runCLIProcess(t, 40*time.Second, "drain", "--listen", addr, "--netns", ns.Path(),
		"--stop", n.quitCommand(), "--timeout", "30s", "--json")
	during := k.Counts().Sub(before)
	t.Logf("during the drain: %s", during)
	if r.code != exitOK {
		t.Logf("nginx error log:\n%s", n.errorLog())
	}
	requireDrained(t, r)
	if !n.waitExit(5 * time.Second) {
		t.Errorf("nginx is still running 5s after the drain ran its stop command")
	}
	after := afterDrain(k, time.Second)
	t.Logf("in the second after the drain: %s", after)
	t.Logf("in all: %s", k.Counts())
	if after.Refused == 0 || after.Complete != 0 {
		t.Errorf("after the drain and the stop: %s; want only refused connects", after)
	}
	k.requireNoBad(t)
	resumeAfter(t, ns, addr)
}

// nginx keeps running while the drain closes its idle keep-alive
// connections itself (--close-idle). The clients pause from 0.75 to 2.25
// times --idle, so a request may cross the FIN sockdrain sends: Go's
// Transport retries such a GET (counted as a retry), and no client sees a
// bad outcome. After the drain nginx still listens, refusing behind the
// gate until `resume`, and then serves again.
func TestKeepAliveNginxCloseIdle(t *testing.T) {
	ns := nstest.New(t)
	const addr = "127.0.0.1:8080"
	n := startNginx(t, ns, addr, nil)
	cfg := keepAliveClients("http://" + addr + "/")
	cfg.Pause, cfg.Jitter = 300*time.Millisecond, true
	k := startKeepAlive(t, ns, cfg)
	k.waitConnections(t, 32, 5*time.Second)
	before := k.Counts()
	r := runCLIProcess(t, 40*time.Second, "drain", "--listen", addr, "--netns", ns.Path(),
		"--close-idle", "--idle", "200ms", "--timeout", "30s", "--json")
	during := k.Counts().Sub(before)
	reps := requireDrained(t, r)
	closed := maxCount(reps[len(reps)-1:], "closed_idle")
	t.Logf("clients during the drain: %s; sockdrain closed %v idle connections", during, closed)
	if closed != 32 {
		t.Errorf("final report %v: want closed_idle 32, one per client", reps[len(reps)-1])
	}
	if n.exited() {
		t.Fatal("nginx exited; --close-idle must leave the server running")
	}
	gates := statusGates(t, ns, addr)
	gated := afterDrain(k, 500*time.Millisecond)
	t.Logf("clients while gated after the drain: %s", gated)
	if gated.Refused == 0 || gated.Complete != 0 {
		t.Errorf("while gated after the drain: %s; want only refused connects", gated)
	}
	if len(gates) != 1 {
		t.Fatalf("status shows gates %q, want one armed", gates)
	}
	resume(t, ns, addr, gates[0])
	requireServedHTTP(t, ns, addr)
	t.Logf("in all: %s", k.Counts())
	k.requireNoBad(t)
}

// requireServedHTTP checks that a new client gets a complete page from addr.
func requireServedHTTP(t *testing.T, ns *netns.NS, addr string) {
	t.Helper()
	cfg := keepAliveClients("http://" + addr + "/")
	cfg.Clients, cfg.Requests = 1, 2
	k := startKeepAlive(t, ns, cfg)
	k.Wait()
	if c := k.Counts(); c.Complete != 2 {
		t.Errorf("a new client of %s got %s; want 2 complete answers", addr, c)
	}
}

// HAProxy pools keep-alive connections to three nginx backends. Draining
// a with --stop, then b with --close-idle while it keeps running, loses
// no request of HAProxy's clients; after `resume`, HAProxy marks b UP and
// sends it requests again.
func TestKeepAliveHAProxy(t *testing.T) {
	ns := nstest.New(t)
	backends := [][2]string{{"a", "127.0.0.2:8080"}, {"b", "127.0.0.3:8080"}, {"c", "127.0.0.4:8080"}}
	servers := map[string]*nginx{}
	for _, b := range backends {
		servers[b[0]] = startNginx(t, ns, b[1], nil)
	}
	const front = "127.0.0.1:8000"
	h := startHAProxy(t, ns, front, backends)
	k := startKeepAlive(t, ns, keepAliveClients("http://"+front+"/"))
	k.waitConnections(t, 32, 5*time.Second)
	time.Sleep(500 * time.Millisecond) // HAProxy fills its pools
	logServers(t, ns, h, backends, "before the drains")

	t.Run("stop a", func(t *testing.T) {
		before := k.Counts()
		r := runCLIProcess(t, 40*time.Second, "drain", "--listen", backends[0][1], "--netns", ns.Path(),
			"--stop", servers["a"].quitCommand(), "--timeout", "30s", "--json")
		requireDrained(t, r)
		t.Logf("clients during the drain of a: %s", k.Counts().Sub(before))
		if !servers["a"].waitExit(5 * time.Second) {
			t.Errorf("nginx a is still running 5s after the drain ran its stop command")
		}
		h.waitStatus(t, "a", "DOWN", 2*time.Second)
		logServers(t, ns, h, backends, "after the drain of a")
		resumeAfter(t, ns, backends[0][1]) // a is gone: its gate's pins go too
	})
	t.Run("close idle b", func(t *testing.T) {
		before := k.Counts()
		r := runCLIProcess(t, 40*time.Second, "drain", "--listen", backends[1][1], "--netns", ns.Path(),
			"--close-idle", "--timeout", "30s", "--json")
		reps := requireDrained(t, r)
		closed := maxCount(reps[len(reps)-1:], "closed_idle")
		t.Logf("clients during the drain of b: %s; sockdrain closed %v idle connections", k.Counts().Sub(before), closed)
		if closed <= 0 {
			t.Errorf("final report %v: want closed_idle > 0 (HAProxy pooled connections to b)", reps[len(reps)-1])
		}
		if servers["b"].exited() {
			t.Fatal("nginx b exited; --close-idle must leave the server running")
		}
		gates := statusGates(t, ns, backends[1][1]) // b still listens, gated
		requireRefused(t, ns, backends[1][1])
		logServers(t, ns, h, backends, "after the drain of b")
		if len(gates) != 1 {
			t.Fatalf("status of b shows gates %q, want one armed", gates)
		}
		resume(t, ns, backends[1][1], gates[0])
		t.Logf("HAProxy marked b UP %s after the resume", h.waitStatus(t, "b", "UP", 5*time.Second).Round(time.Millisecond))
		stot := func() int { n, _ := strconv.Atoi(h.stats(t, "b")["stot"]); return n }
		served := stot()
		if !nstest.WaitFor(3*time.Second, func() bool { return stot() > served }) {
			t.Errorf("b was UP but HAProxy sent it no new connection within 3s")
		}
	})
	after := afterDrain(k, 500*time.Millisecond)
	t.Logf("clients after both drains: %s; in all %s", after, k.Counts())
	if after.Complete == 0 || after.Refused != 0 {
		t.Errorf("after the drains HAProxy's clients got %s; want complete answers only", after)
	}
	k.requireNoBad(t)
}

// logServers logs HAProxy's view of each backend server (status,
// retries, redispatches, response and connection errors) and how many
// connections to it are open (ESTABLISHED on its side, from `sockdrain
// status`): HAProxy's pool.
func logServers(t *testing.T, ns *netns.NS, h *haproxy, backends [][2]string, when string) {
	t.Helper()
	for _, b := range backends {
		s := h.stats(t, b[0])
		t.Logf("%s: haproxy server %s: status=%s stot=%s wretr=%s wredis=%s eresp=%s econ=%s; established=%s",
			when, b[0], s["status"], s["stot"], s["wretr"], s["wredis"], s["eresp"], s["econ"], established(t, ns, b[1]))
	}
}

// established is the count of connections ESTABLISHED on addr, as
// `sockdrain status --json` reports it, or why there is none.
func established(t *testing.T, ns *netns.NS, addr string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, "status", "--listen", addr, "--netns", ns.Path(), "--json")
	var l struct{ Established int }
	if err := json.Unmarshal([]byte(stdout), &l); code != 0 || err != nil {
		return strings.TrimSpace(stderr)
	}
	return strconv.Itoa(l.Established)
}

// A default Go net/http server (MPTCP where the kernel enables it), a
// process of its own that calls Server.Shutdown on SIGTERM: `drain
// --stop-signal TERM` ends in seconds with 0 bad outcomes, and the server
// exits 0.
func TestKeepAliveGoServerStopSignal(t *testing.T) {
	ns := nstest.New(t)
	const addr = "127.0.0.1:8080"
	srv := startGoHTTP(t, ns, addr)
	t.Logf("go server listens with MPTCP: %v", srv.mptcp)
	if mptcpEnabled(t, ns) && !srv.mptcp {
		t.Errorf("net.mptcp.enabled=1 in the namespace, yet Go's net.Listen made a plain TCP socket")
	}
	k := startKeepAlive(t, ns, keepAliveClients("http://"+addr+"/"))
	k.waitConnections(t, 32, 5*time.Second)
	before := k.Counts()
	r := runCLIProcess(t, 40*time.Second, "drain", "--listen", addr, "--netns", ns.Path(),
		"--stop-signal", "TERM", "--timeout", "30s", "--json")
	t.Logf("clients during the drain: %s", k.Counts().Sub(before))
	requireDrained(t, r)
	if !srv.waitExit(5 * time.Second) {
		t.Fatal("the Go server is still running 5s after the drain sent SIGTERM")
	}
	if srv.err != nil {
		t.Errorf("the Go server ended %v, want exit 0 from Shutdown", srv.err)
	}
	after := afterDrain(k, time.Second)
	t.Logf("in the second after the drain: %s; in all %s", after, k.Counts())
	if after.Refused == 0 || after.Complete != 0 {
		t.Errorf("after the drain: %s; want only refused connects", after)
	}
	k.requireNoBad(t)
	resumeAfter(t, ns, addr)
}

// mptcpEnabled reads net.mptcp.enabled inside ns.
func mptcpEnabled(t *testing.T, ns *netns.NS) bool {
	var b []byte
	ns.Do(func() (err error) { b, err = os.ReadFile("/proc/sys/net/mptcp/enabled"); return err })
	return strings.TrimSpace(string(b)) == "1"
}

// Slow clients reading 8 MiB answers through small receive buffers:
// nginx quits with the ends of the answers still in its sockets, which
// the kernel keeps sending as orphans (FIN_WAIT1). The drain exits 0 only
// once every byte is acknowledged: destroying every socket of the port
// right after it exits costs no client a byte.
func TestKeepAliveSlowReadersLoseNoByte(t *testing.T) {
	ns := nstest.New(t)
	const addr, clients = "127.0.0.1:8080", 4
	big, sum := randomBody(8<<20, 12)
	n := startNginx(t, ns, addr, big)
	results := make(chan slowResult, clients)
	for range clients {
		// 32 KiB reads 5 ms apart: 8 MiB in about 3 s, nginx's last
		// writes at about 2 s, then some 3 MiB left in each orphan.
		go func() { results <- slowGet(ns, addr, "/big", 16<<10, 32<<10, 5*time.Millisecond, 30*time.Second) }()
	}
	time.Sleep(300 * time.Millisecond) // the answers are under way, send buffers full
	r := runCLIProcess(t, 40*time.Second, "drain", "--listen", addr, "--netns", ns.Path(),
		"--stop", n.quitCommand(), "--timeout", "30s", "--json")
	destroyed := destroyPort(t, ns, "8080") // at once: anything unacknowledged is lost
	t.Logf("ss -K right after the drain:\n%s", destroyed)
	reps := requireDrained(t, r)
	t.Logf("drain reports: at most closing=%v unacked_bytes=%v", maxCount(reps, "closing"), maxCount(reps, "unacked_bytes"))
	if maxCount(reps, "unacked_bytes") <= 0 {
		t.Errorf("no report showed unacknowledged bytes: the test did not drain bytes in flight")
	}
	for range clients {
		res := <-results
		switch {
		case res.err != nil:
			t.Errorf("a slow client got %d of %d bytes, then: %v", res.n, len(big), res.err)
		case res.n != int64(len(big)) || res.sum != sum:
			t.Errorf("a slow client got %d bytes (want %d), checksum match %v", res.n, len(big), res.sum == sum)
		}
	}
	if !n.waitExit(5 * time.Second) {
		t.Errorf("nginx is still running 5s after the drain ran its stop command")
	}
	resumeAfter(t, ns, addr)
}

// leftLine is one connection a timed-out drain lists.
var leftLine = regexp.MustCompile(`(?m)^\s*left: .*$`)

// A plain drain (no --stop, no --close-idle) with only idle keep-alive
// connections times out, calls them idle in its list, and says how to end
// them; with --json its reports count them as idle.
func TestKeepAliveIdleTimeoutNamesIdle(t *testing.T) {
	ns := nstest.New(t)
	const addr = "127.0.0.1:8080"
	startNginx(t, ns, addr, nil)
	cfg := keepAliveClients("http://" + addr + "/")
	cfg.Requests = 3
	k := startKeepAlive(t, ns, cfg)
	k.Wait() // the 32 connections stay open and idle in the clients' pools
	if c := k.Counts(); c.Dials != 32 || c.Bad != 0 {
		t.Fatalf("clients: %s; want 32 connections and no bad outcome", c)
	}
	r := runCLIProcess(t, 20*time.Second, "drain", "--listen", addr, "--netns", ns.Path(), "--timeout", "3s")
	t.Logf("%s", r)
	left := leftLine.FindAllString(r.stdout, -1)
	if r.code != exitTimeout || len(left) != 32 {
		t.Fatalf("exit %d with %d connections listed; want exit 3 listing 32", r.code, len(left))
	}
	for _, l := range left {
		if !strings.Contains(l, "ESTABLISHED") || !strings.Contains(l, "idle") {
			t.Errorf("%q: want an ESTABLISHED connection shown idle, with its idle time", l)
			break
		}
	}
	out := r.stdout + r.stderr
	if !strings.Contains(out, "--stop") && !strings.Contains(out, "--close-idle") {
		t.Errorf("the timed-out drain does not say how to end idle connections (--stop or --close-idle)")
	}

	r = runCLIProcess(t, 20*time.Second, "drain", "--listen", addr, "--netns", ns.Path(), "--timeout", "3s", "--json")
	if r.code != exitTimeout {
		t.Fatalf("with --json: %s; want exit 3", r)
	}
	reps := drainReports(t, r.stdout)
	last := reps[len(reps)-1]
	t.Logf("with --json: at most idle=%v established=%v; last report: phase %v, %d remaining",
		maxCount(reps, "idle"), maxCount(reps, "established"), last["phase"], len(last["remaining"].([]any)))
	if maxCount(reps, "idle") != 32 {
		t.Errorf("with --json: the reports count %v idle connections, want 32", maxCount(reps, "idle"))
	}
}

// Bad input for the new flags, and a stop that fails: one line on stderr,
// the documented exit code, and nothing changed in the kernel; the port
// accepts again.
func TestKeepAliveBadInput(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	serveEcho(ln)
	addr := ln.Addr().String()
	idle := nstest.Dial(t, ns, addr) // an idle client --close-idle would close
	if err := exchange(idle); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"empty stop", []string{"--stop", ""}, exitInvalid},
		{"unknown signal", []string{"--stop-signal", "NOPE"}, exitInvalid},
		{"failing stop", []string{"--stop", "exit 3"}, 8},
	} {
		before := snapshot(t, ns)
		r := runCLIProcess(t, 20*time.Second, append([]string{"drain", "--listen", addr, "--netns", ns.Path(), "--timeout", "5s"}, tc.args...)...)
		t.Logf("%s: exit %d, stderr %q", tc.name, r.code, r.stderr)
		if r.code != tc.code || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s: %s; want exit %d and one line on stderr", tc.name, r, tc.code)
		}
		requireServed(t, ns, addr)
		requireSnapshot(t, ns, before)
	}

	before := snapshot(t, ns)
	code, stderr := runCLIWithout(t, ns.Path(), "-sys_ptrace", "drain", "--listen", addr, "--close-idle", "--idle", "100ms", "--timeout", "5s")
	t.Logf("--close-idle without CAP_SYS_PTRACE: exit %d, stderr %q", code, stderr)
	if code != exitUnsupported || strings.Count(stderr, "\n") != 1 ||
		!(strings.Contains(strings.ToLower(stderr), "ptrace") || strings.Contains(stderr, "not permitted")) {
		t.Errorf("--close-idle without CAP_SYS_PTRACE: exit %d, stderr %q; want exit 4 and one line saying why", code, stderr)
	}
	requireServed(t, ns, addr)
	requireSnapshot(t, ns, before)
	if err := exchange(idle); err != nil {
		t.Errorf("the idle client is no longer served: %v", err)
	}
}
