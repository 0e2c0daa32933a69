package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/backend"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/benchmark"
	"github.com/sockdrain/sockdrain/internal/rig/demoserver"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
)

// refuseRounds is N for each time-to-refuse cell.
const refuseRounds = 10

var gateNames = backend.Names()

// refuseMode is one way to start refusing.
type refuseMode struct {
	name  string
	start func(r *refuseRun) error // arm the gate; Mark was just called
	end   func(r *refuseRun) error // wait for it and clean up
}

// refuseRun is one server under a prober, about to be gated.
type refuseRun struct {
	ctx  context.Context
	cli  string
	gate string
	ns   *netns.NS
	srv  *demoserver.Server
	cmd  *exec.Cmd
	out  bytes.Buffer
	// execd is when execDrain started the CLI.
	execd time.Time
	open  func() error // undo a library arm
	done  chan error
}

var refuseModes = []refuseMode{
	{name: "`sockdrain drain` exec, binary evicted from page cache", start: func(r *refuseRun) error { return r.execDrain(true) }, end: (*refuseRun).waitExec},
	{name: "`sockdrain drain` exec, binary in page cache", start: func(r *refuseRun) error { return r.execDrain(false) }, end: (*refuseRun).waitExec},
	{name: "library: gate.Gate.Arm", start: (*refuseRun).armGate, end: func(r *refuseRun) error { return r.open() }},
	{name: "library: sockdrain.Drain", start: (*refuseRun).startDrain, end: func(r *refuseRun) error { return <-r.done }},
}

func (r *refuseRun) target() sockdrain.Target {
	return sockdrain.Target{Addr: r.srv.Addr().Addr(), Port: r.srv.Addr().Port(), NetNS: r.ns.Path()}
}

// timeToRefuse measures one mode on one gate: from just before the arm
// until a prober's connect is first refused.
func timeToRefuse(ctx context.Context, cli, gate string, m refuseMode) (time.Duration, error) {
	refused, _, err := timeToRefuseAndArm(ctx, cli, gate, m)
	return refused, err
}

// timeToRefuseAndArm is timeToRefuse, and for a mode that execs the CLI,
// the time from exec to its `gated` report, by the report's own clock.
// The drain makes that report once its gate is armed and its own verify
// probe was refused, so it times sockdrain's part without the prober's.
func timeToRefuseAndArm(ctx context.Context, cli, gate string, m refuseMode) (refused, armed time.Duration, err error) {
	ns, srv, end, err := demoInNewNS()
	if err != nil {
		return 0, 0, err
	}
	defer end()
	r := &refuseRun{ctx: ctx, cli: cli, gate: gate, ns: ns, srv: srv, done: make(chan error, 1)}
	probe, err := loadgen.Start(ctx, loadgen.Config{Addr: srv.Addr().String(), Workers: 2,
		Duration: 20 * time.Second, AttemptTimeout: time.Second, Dial: loadgen.DialIn(ns)})
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(50 * time.Millisecond)
	probe.Mark()
	err = m.start(r)
	waitRefused(probe, 10*time.Second)
	probe.Stop()
	res, werr := probe.Wait()
	if err == nil {
		err = m.end(r)
	}
	_, rerr := sockdrain.Resume(ctx, r.target())
	if err = errors.Join(err, werr, rerr); err == nil && res.TimeToRefuse < 0 {
		err = fmt.Errorf("no connection was refused")
	}
	if err == nil && r.cmd != nil {
		armed, err = r.gatedAfterExec()
	}
	return res.TimeToRefuse, armed, err
}

// gatedAfterExec reads the time of the CLI's `gated` report from its
// JSON output, and returns it as a time since exec.
func (r *refuseRun) gatedAfterExec() (time.Duration, error) {
	for line := range bytes.Lines(r.out.Bytes()) {
		var rep struct {
			Time  time.Time `json:"time"`
			Event string    `json:"event"`
			Phase string    `json:"phase"`
		}
		if json.Unmarshal(line, &rep) == nil && rep.Event == "phase" && rep.Phase == "gated" {
			return rep.Time.Sub(r.execd), nil
		}
	}
	return 0, fmt.Errorf("no gated report in the drain's output: %s", r.out.String())
}

// waitRefused waits until the prober has seen a refusal, or limit.
func waitRefused(l *loadgen.Load, limit time.Duration) {
	for end := time.Now().Add(limit); time.Now().Before(end) && l.Counts().Refused == 0; {
		time.Sleep(100 * time.Microsecond)
	}
}

func (r *refuseRun) execDrain(evict bool) error {
	if evict {
		if err := evictPageCache(r.cli); err != nil {
			return err
		}
	}
	r.cmd = exec.Command(r.cli, "drain", "--listen", r.srv.Addr().String(), "--netns", r.ns.Path(),
		"--backend", r.gate, "--timeout", "20s", "--json")
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	r.execd = time.Now()
	return r.cmd.Start()
}

func (r *refuseRun) waitExec() error {
	if err := r.cmd.Wait(); err != nil {
		return fmt.Errorf("sockdrain drain: %w: %s", err, r.out.String())
	}
	return nil
}

// evictPageCache drops a file's pages from the page cache, so the next
// exec reads it from disk.
func evictPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return os.NewSyscallError("fadvise", unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED))
}

func (r *refuseRun) startDrain() error {
	go func() {
		_, err := sockdrain.Drain(r.ctx, r.target(), sockdrain.Options{Backend: r.gate, Timeout: 20 * time.Second})
		r.done <- err
	}()
	return nil
}

// runRefuse interleaves every gate and mode in each round.
func runRefuse(ctx context.Context, cfg config, lock kernelLock) (*benchmark.Table, error) {
	res := map[[2]int][]time.Duration{}
	for round := range refuseRounds {
		err := lock.hold(func() error {
			for gi, g := range gateNames {
				for mi, m := range refuseModes {
					d, err := timeToRefuse(ctx, cfg.cli, g, m)
					if err != nil {
						return fmt.Errorf("time to refuse, %s, %s: %w", g, m.name, err)
					}
					res[[2]int{gi, mi}] = append(res[[2]int{gi, mi}], d)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		progress("time to refuse: round %d/%d done", round+1, refuseRounds)
	}
	t := &benchmark.Table{
		Title: "2. Time to refuse",
		Notes: []string{"From just before the arm (the exec of `sockdrain drain --backend G --json`, or the library call) until a prober's " +
			"connect first fails with ECONNREFUSED. The prober is 2 closed-loop HTTP clients against the demo server in a fresh netns; " +
			"its resolution is one attempt (tens of µs). Every run starts with no pins and no programs: a drain's resume removes all of " +
			"a gate's kernel state, so there is no warmer gate state to start from. \"Evicted\" runs drop the binary's pages with " +
			"posix_fadvise(DONTNEED) first. The CLI verifies with a probe connect before it reports; the prober may see the RST before that."},
		Header: []string{"gate", "how", "time to first RST: median [min–max] (N)"},
	}
	for gi, g := range gateNames {
		for mi, m := range refuseModes {
			t.AddRow(g, m.name, benchmark.SummarizeDurations(res[[2]int{gi, mi}]).Format(benchmark.Seconds))
		}
	}
	return t, nil
}
