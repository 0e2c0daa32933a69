package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/benchmark"
	"github.com/sockdrain/sockdrain/internal/rig/haproxyctl"
	"github.com/sockdrain/sockdrain/internal/rig/httpclients"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
)

// Shape of table 7 (issue 12): keep-alive clients behind HAProxy, and the
// time from the start of a backend's drain until it is safe to stop.
const (
	lbPause    = 100 * time.Millisecond // mean pause between a client's requests
	lbPageSize = 2048
	lbCap      = 70 * time.Second // beyond nginx's keepalive_timeout 65s
	lbSettle   = time.Second      // after a backend is UP again, before the next run
	lbCLILimit = 45 * time.Second // every sockdrain run is killed after this
	lbPoll     = 10 * time.Millisecond
	lbUpLimit  = 10 * time.Second
	lbDrained  = 1 // index of the backend every strategy takes out
)

// lbClientCounts are the loads: keep-alive clients talking to HAProxy.
var lbClientCounts = []int{32, 128}

// lbBackends are the nginx backends, by HAProxy server name.
var lbBackends = []struct{ name, addr string }{
	{"b1", "127.0.0.2:8080"}, {"b2", "127.0.0.3:8080"}, {"b3", "127.0.0.4:8080"},
}

var lbFront = netip.MustParseAddrPort("127.0.0.1:8000")

// lbRig is one setup: nginx backends, HAProxy, clients, in one namespace.
type lbRig struct {
	ctx      context.Context
	cli      string
	ns       *netns.NS
	backends []*lbNginx
	h        *lbHAProxy
	load     *httpclients.Clients
	obs      *sockdrain.Observer // on the drained backend

	sessionsGone time.Duration // HAProxy's own: when scur first read 0; -1 if never
}

// lbStrategy takes the drained backend out of service (run, timed) and
// puts it back (restore, not timed).
type lbStrategy struct {
	name    string
	run     func(r *lbRig, b *lbNginx) (took time.Duration, capped bool, err error)
	restore func(r *lbRig, b *lbNginx) error
}

var lbStrategies = []lbStrategy{
	{"`sockdrain drain --close-idle` (nginx stays up)", drainCloseIdle, resumeAndUp},
	{"`sockdrain drain --stop 'nginx -s quit'`", drainStop, restartAndUp},
	{"HAProxy's own: `disable server`, then wait for its sessions", haproxyDisable, haproxyEnable},
}

// lbHAProxyOwn is the index of HAProxy's own strategy, the ratios' base.
const lbHAProxyOwn = 2

// lbRun is one timed run.
type lbRun struct {
	took   time.Duration
	capped bool
	pooled int // connections ESTABLISHED on the backend when it began
	// sessionsGone is when HAProxy's scur first read 0 (HAProxy's own
	// only; -1 otherwise).
	sessionsGone time.Duration
	counts       httpclients.Counts // the clients' outcomes from its start until the backend served again
	err          error
}

// lbCell is one client count and strategy over the rounds.
type lbCell struct {
	runs   []lbRun
	ratios []float64 // took ÷ HAProxy's own in the same round
}

func runLB(ctx context.Context, cfg config, _ kernelLock) (*benchmark.Table, error) {
	for _, tool := range []string{"nginx", "haproxy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("table 7 needs %s (Debian packages nginx-light, haproxy): %w", tool, err)
		}
	}
	cells := map[[2]int]*lbCell{}
	var firstBad []string
	for ci, clients := range lbClientCounts {
		r, err := newLBRig(ctx, cfg.cli, clients, cfg.lbRounds)
		if err != nil {
			return nil, err
		}
		err = r.rounds(ci, cfg.lbRounds, cells)
		if s := r.load.Samples(); len(s) > 0 {
			firstBad = append(firstBad, fmt.Sprintf("%d clients: %s", clients, s[0]))
		}
		r.close()
		if err != nil {
			return nil, fmt.Errorf("%d clients: %w", clients, err)
		}
	}
	return lbTable(cfg.lbRounds, cells, firstBad), nil
}

// rounds runs every strategy once per round, the order rotated per round,
// and fills cells[{ci, strategy}].
func (r *lbRig) rounds(ci, rounds int, cells map[[2]int]*lbCell) error {
	b := r.backends[lbDrained]
	for round := range rounds {
		runs := make([]lbRun, len(lbStrategies))
		for k := range lbStrategies {
			si := (round + k) % len(lbStrategies)
			s := lbStrategies[si]
			if err := r.sleep(lbSettle); err != nil {
				return err
			}
			run := lbRun{pooled: r.established()}
			before := r.load.Counts()
			r.sessionsGone = -1
			run.took, run.capped, run.err = s.run(r, b)
			run.sessionsGone = r.sessionsGone
			if err := s.restore(r, b); err != nil {
				return fmt.Errorf("round %d, after %s: %w", round+1, s.name, err)
			}
			run.counts = r.load.Counts().Sub(before)
			if !r.load.Running() {
				return fmt.Errorf("round %d: the clients reached their time limit", round+1)
			}
			progress("table 7: %d clients, round %d: %s: %s (scur 0 after %s, pooled %d, clients %+v, err %v)",
				lbClientCounts[ci], round+1, s.name, run.took.Round(time.Millisecond), run.sessionsGone.Round(time.Millisecond),
				run.pooled, run.counts, run.err)
			runs[si] = run
		}
		base := runs[lbHAProxyOwn]
		for si, run := range runs {
			c := cells[[2]int{ci, si}]
			if c == nil {
				c = &lbCell{}
				cells[[2]int{ci, si}] = c
			}
			c.runs = append(c.runs, run)
			if run.err == nil && base.err == nil && base.took > 0 {
				c.ratios = append(c.ratios, run.took.Seconds()/base.took.Seconds())
			}
		}
	}
	return nil
}

// newLBRig starts the backends, HAProxy and the clients in a fresh
// namespace, and waits until the clients are served.
func newLBRig(ctx context.Context, cli string, clients, rounds int) (r *lbRig, err error) {
	ns, err := newNS()
	if err != nil {
		return nil, err
	}
	r = &lbRig{ctx: ctx, cli: cli, ns: ns}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	// 127.0.0.0/8 is all on loopback: every backend address is local.
	page := make([]byte, lbPageSize)
	loadgen.FillBody(page)
	for _, b := range lbBackends {
		n, err := newLBNginx(ns, b.name, netip.MustParseAddrPort(b.addr), page)
		if err != nil {
			return r, err
		}
		r.backends = append(r.backends, n)
	}
	if r.h, err = startLBHAProxy(ns, lbFront, r.backends); err != nil {
		return r, err
	}
	d := r.backends[lbDrained].addr
	if r.obs, err = sockdrain.NewObserver(sockdrain.Target{Addr: d.Addr(), Port: d.Port(), NetNS: ns.Path()}); err != nil {
		return r, err
	}
	// Bounded in time by the worst case of every run, in count by twice
	// the requests that time allows; stopped when the rounds end.
	limit := time.Duration(rounds) * time.Duration(len(lbStrategies)) * (lbCap + lbCLILimit + 2*lbUpLimit + lbSettle)
	r.load = httpclients.Start(ns, httpclients.Config{URL: "http://" + lbFront.String() + lbPagePath, Clients: clients,
		Pause: lbPause, Jitter: true, Requests: int(2 * limit / lbPause), Duration: limit, Body: page})
	return r, waitServed(ctx, r.load, int64(4*clients), 10*time.Second)
}

// waitServed waits up to limit until the clients have n complete answers.
func waitServed(ctx context.Context, k *httpclients.Clients, n int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for k.Counts().Complete < n {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the keep-alive clients got %d complete answers in %s, want %d", k.Counts().Complete, limit, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (r *lbRig) close() {
	if r.load != nil {
		r.load.Close()
	}
	if r.obs != nil {
		r.obs.Close()
	}
	if r.h != nil {
		r.h.close()
	}
	for _, b := range r.backends {
		b.close()
	}
	r.ns.Remove()
}

// sleep waits d unless the run is interrupted.
func (r *lbRig) sleep(d time.Duration) error {
	select {
	case <-r.ctx.Done():
		return context.Cause(r.ctx)
	case <-time.After(d):
		return nil
	}
}

// established counts the drained backend's accepted connections that are
// ESTABLISHED or CLOSE_WAIT (all of them HAProxy's: the clients talk to
// HAProxy only); -1 if it cannot tell (no listener).
func (r *lbRig) established() int {
	ls, err := r.obs.Listeners()
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range ls {
		n += l.Established + l.CloseWait
	}
	return n
}

// sockdrain runs the CLI on the backend and returns how long it took from
// exec to exit, and its last --json report.
func (r *lbRig) sockdrain(b *lbNginx, args ...string) (time.Duration, map[string]any, error) {
	ctx, cancel := context.WithTimeout(r.ctx, lbCLILimit)
	defer cancel()
	args = append(args[:1:1], append([]string{"--listen", b.addr.String(), "--netns", r.ns.Path(), "--json"}, args[1:]...)...)
	cmd := exec.CommandContext(ctx, r.cli, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var last map[string]any
	json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if err != nil {
		return took, last, fmt.Errorf("sockdrain %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return took, last, nil
}

// drained checks that a drain ended with a drained report.
func drained(took time.Duration, last map[string]any, err error) (time.Duration, bool, error) {
	if err == nil && last["phase"] != "drained" {
		err = fmt.Errorf("sockdrain drain exited 0 with last report %v, want phase drained", last)
	}
	return took, false, err
}

func drainCloseIdle(r *lbRig, b *lbNginx) (time.Duration, bool, error) {
	return drained(r.sockdrain(b, "drain", "--close-idle", "--timeout", "30s"))
}

func drainStop(r *lbRig, b *lbNginx) (time.Duration, bool, error) {
	return drained(r.sockdrain(b, "drain", "--stop", b.quitCommand(), "--timeout", "30s"))
}

// resumeAndUp opens the gate and waits until HAProxy serves from the
// backend again.
func resumeAndUp(r *lbRig, b *lbNginx) error {
	return r.backInService(b, func() error {
		_, _, err := r.sockdrain(b, "resume")
		return err
	})
}

// restartAndUp waits for the stopped nginx to exit (killing it after 5s),
// runs resume (idempotent: the drain removed its gate when the listener
// closed), starts nginx again and waits until HAProxy serves from it.
func restartAndUp(r *lbRig, b *lbNginx) error {
	var errs []error
	if !b.proc.waitExit(5 * time.Second) {
		errs = append(errs, fmt.Errorf("nginx %s still runs 5s after its drain", b.name))
		b.proc.kill()
	}
	err := r.backInService(b, func() error {
		if _, _, err := r.sockdrain(b, "resume"); err != nil {
			return err
		}
		return b.start()
	})
	return errors.Join(append(errs, err)...)
}

// haproxyDisable puts the backend in maintenance through the admin socket
// and waits, at most lbCap, until HAProxy has no session on it and nginx
// no connection from HAProxy: until it is safe to stop. It notes in
// r.sessionsGone when scur first read 0.
func haproxyDisable(r *lbRig, b *lbNginx) (time.Duration, bool, error) {
	r.sessionsGone = -1
	start := time.Now()
	if out, err := haproxyctl.Command(r.h.dir, "disable server be/"+b.name); err != nil || strings.TrimSpace(out) != "" {
		return 0, false, fmt.Errorf("haproxy disable server: %v %q", err, out)
	}
	lastLog := start
	for {
		s, err := r.h.stats(b.name)
		if err != nil {
			return 0, false, err
		}
		conns := r.established()
		if s["scur"] == "0" && r.sessionsGone < 0 {
			r.sessionsGone = time.Since(start)
		}
		if s["scur"] == "0" && conns == 0 {
			return time.Since(start), false, nil
		}
		if time.Since(start) > lbCap {
			return lbCap, true, nil
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			progress("table 7: %s after disable server: scur %s, %d connections from HAProxy", time.Since(start).Round(time.Second), s["scur"], conns)
		}
		if err := r.sleep(lbPoll); err != nil {
			return 0, false, err
		}
	}
}

func haproxyEnable(r *lbRig, b *lbNginx) error {
	return r.backInService(b, func() error {
		if out, err := haproxyctl.Command(r.h.dir, "enable server be/"+b.name); err != nil || strings.TrimSpace(out) != "" {
			return fmt.Errorf("haproxy enable server: %v %q", err, out)
		}
		return nil
	})
}

// lbServedAgain is how many new sessions HAProxy must send a restored
// backend before the next run.
const lbServedAgain = 10

// backInService runs restore, then waits until HAProxy shows b UP and has
// sent it lbServedAgain new sessions: UP alone may be a status read before
// HAProxy noticed the backend go.
func (r *lbRig) backInService(b *lbNginx, restore func() error) error {
	stot := func() (int, error) {
		s, err := r.h.stats(b.name)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(s["stot"])
	}
	before, err := stot()
	if err != nil {
		return err
	}
	if err := restore(); err != nil {
		return err
	}
	if _, err := r.h.waitStatus(b.name, "UP", lbUpLimit); err != nil {
		return err
	}
	for deadline := time.Now().Add(lbUpLimit); ; {
		n, err := stot()
		if err != nil {
			return err
		}
		if n >= before+lbServedAgain {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("haproxy sent %s %d new sessions in %s after it was UP, want %d", b.name, n-before, lbUpLimit, lbServedAgain)
		}
		if err := r.sleep(lbPoll); err != nil {
			return err
		}
	}
}

func lbTable(rounds int, cells map[[2]int]*lbCell, firstBad []string) *benchmark.Table {
	t := &benchmark.Table{
		Title: "7. Keep-alive clients behind HAProxy: time until a backend is safe to stop",
		Notes: []string{
			fmt.Sprintf("Three nginx backends (Debian's nginx-light, 1 worker each, default keep-alive: keepalive_timeout 65s) behind HAProxy "+
				"(2 threads; `http-reuse always`, `option httpchk`, `check inter 200ms fall 1 rise 2`, `retries 3`, `option redispatch 1`, "+
				"`retry-on conn-failure empty-response response-timeout`, `timeout http-keep-alive 30s`, admin socket), in one netns. "+
				"Go keep-alive HTTP clients (one connection each) GET a %d-byte page from HAProxy, checked byte by byte, pausing %s–%s between requests. "+
				"Each strategy takes backend b2 out, %d rounds per client count, the order of the three rotated per round.",
				lbPageSize, lbPause/2, 3*lbPause/2, rounds),
			fmt.Sprintf("The time is until b2 is safe to stop. sockdrain rows: from the exec of `sockdrain drain --listen B2 --netns NS --json` "+
				"(`--close-idle`, or `--stop 'nginx ... -s quit'`; default `--idle 1s`) to its exit 0 after the `drained` report. "+
				"HAProxy's own: from `disable server be/b2` on the admin socket until `show stat` shows scur 0 for b2 and nginx b2 has "+
				"no connection ESTABLISHED or in CLOSE_WAIT (sockdrain's observer, polled every %s), capped at %s. "+
				"Then, untimed: `sockdrain resume` (close-idle); nginx restarted and `resume` (stop); `enable server` (HAProxy's own); "+
				"each until HAProxy shows b2 UP, then %s before the next run.", lbPoll, lbCap, lbSettle),
			"The ratio is per round: the strategy's time ÷ HAProxy's own in the same round. \"HAProxy's scur 0 after\" is when `show stat` first showed " +
				"no session on b2 after `disable server`: the wait beyond it is for HAProxy's connections to nginx to close. " +
				"\"Pooled\" is b2's connections from HAProxy when the run began. " +
				"Client outcomes are summed over the runs, each from its start until b2 was UP again: \"bad\" is an error or a wrong answer, " +
				"\"refused\" an ECONNREFUSED from HAProxy (none expected: HAProxy stays up). HAProxy's own window is the shortest " +
				"(nothing to restart or re-check), so its clients made the fewest requests in it.",
			"What bounds the figures: sockdrain's include its exec, finding the listener and arming the gate with a verify probe " +
				"(table 2), and, for `--close-idle`, `--idle 1s`: a pooled connection is closed only once it has received nothing for that long. " +
				"Where HAProxy's two columns are equal, its first poll after `disable server` already found b2 with no session and no connection: " +
				"HAProxy closed its idle pooled connections to b2 as it put it in maintenance, and the figure is the time of that one poll " +
				"(the admin-socket round trip and one inet_diag dump).",
		},
		Header: []string{"clients", "strategy", "to safe to stop: median [min–max] (N)", "÷ HAProxy's own, per round",
			"HAProxy's scur 0 after", "pooled at start", "client requests: complete / bad / refused", "failed runs"},
	}
	for _, s := range firstBad {
		t.Notes = append(t.Notes, "First bad outcome, "+s)
	}
	var failures []string
	for ci, clients := range lbClientCounts {
		for si, s := range lbStrategies {
			c := cells[[2]int{ci, si}]
			if c == nil {
				continue
			}
			var took []time.Duration
			var pooled []float64
			var gone []time.Duration
			var sum httpclients.Counts
			capped, failed := 0, 0
			for _, run := range c.runs {
				pooled = append(pooled, float64(run.pooled))
				sum.Complete += run.counts.Complete
				sum.Bad += run.counts.Bad
				sum.Refused += run.counts.Refused
				if run.err != nil {
					failed++
					if len(failures) < 3 {
						failures = append(failures, fmt.Sprintf("%d clients, %s: `%v`", clients, s.name, run.err))
					}
					continue
				}
				if run.capped {
					capped++
				}
				if run.sessionsGone >= 0 {
					gone = append(gone, run.sessionsGone)
				}
				took = append(took, run.took)
			}
			safe := benchmark.SummarizeDurations(took).Format(benchmark.Seconds)
			if capped > 0 {
				safe += fmt.Sprintf("; > %s (the cap, counted as %s) in %d", lbCap, lbCap, capped)
			}
			ratio := "1 (the base)"
			if si != lbHAProxyOwn {
				ratio = benchmark.Summarize(c.ratios).Format(benchmark.Ratio)
			}
			t.AddRow(fmt.Sprint(clients), s.name, safe, ratio, benchmark.SummarizeDurations(gone).Format(benchmark.Seconds),
				short(benchmark.Summarize(pooled)),
				fmt.Sprintf("%d / %d / %d", sum.Complete, sum.Bad, sum.Refused), fmt.Sprintf("%d/%d", failed, len(c.runs)))
		}
	}
	for _, f := range failures {
		t.Notes = append(t.Notes, "Failed run, "+f)
	}
	return t
}
