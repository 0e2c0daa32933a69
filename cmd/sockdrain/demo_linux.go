package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/demoserver"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/rig/stoploss"
	"github.com/urfave/cli/v2"
)

const (
	// demoAfter is how long clients keep knocking on the port after a stop.
	demoAfter = 300 * time.Millisecond
	// demoAttempt bounds each client's attempt: one that hangs this long
	// counts as lost (timed out). Real clients wait at least as long; a
	// shorter bound would count a server slowed by a busy machine as a
	// loss.
	demoAttempt = 5 * time.Second
)

// demoConfig is one demo: the built-in server under closed-loop load, in a
// private network namespace, stopped several times each way.
type demoConfig struct {
	backend   string
	clients   int
	delay     time.Duration
	warmup    time.Duration
	stops     int
	server    string
	listeners int
	mptcp     bool
}

func demoCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "stop a loaded server in a private netns, without and with sockdrain, and count what clients saw",
		Description: "Creates a network namespace and stops the built-in HTTP server in it, under closed-loop load,\n" +
			"--stops times each way: the usual way (closing its listeners), then after a sockdrain drain.\n" +
			"Each stop starts a fresh server, loads it for --warmup, stops it, and counts what the clients\n" +
			"in flight at the stop, or arriving after it, saw: complete, refused, reset, timeout, partial.\n" +
			"Then keep-alive clients: a drain alone waits on their connections (the demo gives up after 2s),\n" +
			"and a drain that hands over to the server's own stop (Options.Stop) ends them, --stops times.\n" +
			"Exits 1 if a client of a drained server saw anything but a complete response or a refusal.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "backend", Value: "auto", Usage: "gate for the drained stops"},
			&cli.IntFlag{Name: "clients", Value: 64, Usage: "closed-loop clients"},
			&cli.DurationFlag{Name: "delay", Value: 5 * time.Millisecond, Usage: "server's delay per request"},
			&cli.DurationFlag{Name: "warmup", Value: 500 * time.Millisecond, Usage: "load before each stop"},
			&cli.IntFlag{Name: "stops", Value: 5, Usage: "stops each way"},
			&cli.StringFlag{Name: "server", Value: "reuseport", Usage: "reuseport (4 sockets), plain, or mptcp (Go's default)"},
			&cli.BoolFlag{Name: "json", Usage: "print the outcomes as one JSON object"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := demoFlags(c)
			if err != nil {
				return err
			}
			out := newDemoOutput(e, c.Bool("json"))
			res, err := runDemo(c.Context, cfg, out)
			if err != nil {
				return err
			}
			if err := out.result(res); err != nil {
				return err
			}
			var errs []error
			for _, d := range res.Strategies[1:] {
				if d.Lost > 0 {
					errs = append(errs, fmt.Errorf("%s: %d of %d stops lost %d clients", d.Name, d.StopsWithLosses, d.Stops, d.Lost))
				}
			}
			return errors.Join(errs...)
		},
	}
}

func demoFlags(c *cli.Context) (demoConfig, error) {
	cfg := demoConfig{backend: c.String("backend"), clients: c.Int("clients"), delay: c.Duration("delay"),
		warmup: c.Duration("warmup"), stops: c.Int("stops"), server: c.String("server"), listeners: 1}
	switch cfg.server {
	case "reuseport":
		cfg.listeners = 4
	case "mptcp":
		cfg.mptcp = true
	case "plain":
	default:
		return cfg, badInput("--server %q: want reuseport, plain or mptcp", cfg.server)
	}
	if cfg.clients < 1 || cfg.clients > 1024 || cfg.delay < 0 || cfg.warmup <= 0 || cfg.warmup > time.Minute ||
		cfg.stops < 1 || cfg.stops > 100 {
		return cfg, badInput("--clients must be 1 to 1024, --delay not negative, --warmup up to 1m, --stops 1 to 100")
	}
	return cfg, nil
}

// demo is a running demo and its namespace.
type demo struct {
	cfg demoConfig
	ns  *netns.NS
}

func runDemo(ctx context.Context, cfg demoConfig, out *demoOutput) (demoResult, error) {
	ns, err := netns.Create("sockdrain-demo-" + strconv.Itoa(os.Getpid()))
	if err != nil {
		return demoResult{}, err
	}
	defer ns.Remove()
	d := &demo{cfg: cfg, ns: ns}
	res := demoResult{Namespace: ns.Path(), Server: cfg.server, Clients: cfg.clients,
		Delay: sockdrain.Duration(cfg.delay), Warmup: sockdrain.Duration(cfg.warmup),
		Pause: sockdrain.Duration(keepAlivePause)}
	out.intro(res, cfg.stops)
	for _, k := range []demoKind{plainStop, drainThenStop, handOver} {
		if k == handOver {
			out.keepAliveIntro(res)
			w, err := d.drainAlone(ctx)
			if err != nil {
				return res, fmt.Errorf("keep-alive drain alone: %w", err)
			}
			res.DrainAlone = &w
			out.drainAlone(w)
		}
		st, err := d.strategy(ctx, k, out)
		if err != nil {
			return res, err
		}
		res.Strategies = append(res.Strategies, st)
	}
	res.Summary = demoSummary(res.Strategies)
	return res, nil
}

// strategy stops a server cfg.stops times the way k says.
func (d *demo) strategy(ctx context.Context, k demoKind, out *demoOutput) (demoStrategy, error) {
	st := newDemoStrategy(k)
	out.strategy(st)
	for i := range d.cfg.stops {
		s, err := d.stopOnce(ctx, k)
		if err != nil {
			return st, fmt.Errorf("%s, stop %d: %w", st.Name, i+1, err)
		}
		st.add(s)
		out.stop(st, i, d.cfg.stops)
	}
	return st, nil
}

// start starts a server and its load, and waits the warm-up: keep-alive
// ones when keepAlive. stop stops both.
func (d *demo) start(ctx context.Context, keepAlive bool) (srv *demoserver.Server, load *loadgen.Load, stop func(), err error) {
	srv, err = demoserver.Start(demoserver.Config{Addr: "127.0.0.1:0", Listeners: d.cfg.listeners,
		MPTCP: d.cfg.mptcp, Delay: d.cfg.delay, KeepAlive: keepAlive, Do: d.ns.Do})
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := loadgen.Config{Addr: srv.Addr().String(), Workers: d.cfg.clients, Duration: d.cfg.warmup + time.Minute,
		AttemptTimeout: demoAttempt, CheckBody: true, Dial: loadgen.DialIn(d.ns)}
	if keepAlive {
		cfg.KeepAlive, cfg.Pause = true, keepAlivePause
	}
	load, err = loadgen.Start(ctx, cfg)
	if err != nil {
		srv.Stop()
		return nil, nil, nil, err
	}
	stop = func() {
		load.Stop()
		load.Wait()
		srv.Stop()
	}
	select {
	case <-time.After(d.cfg.warmup):
		return srv, load, stop, nil
	case <-ctx.Done():
		stop()
		return nil, nil, nil, context.Cause(ctx)
	}
}

// stopOnce starts a server, loads it for the warm-up, stops it the way k
// says, and returns what the clients saw from the stop on.
func (d *demo) stopOnce(ctx context.Context, k demoKind) (demoStop, error) {
	srv, load, end, err := d.start(ctx, k == handOver)
	if err != nil {
		return demoStop{}, err
	}
	defer end()
	var s demoStop
	stop := func() error { return ignoreStopTimeout(srv.Stop()) }
	switch k {
	case drainThenStop:
		plain := stop
		stop = func() error { return d.drain(ctx, srv, plain, &s) }
	case handOver:
		stop = func() error { return d.drain(ctx, srv, nil, &s) }
	}
	res, err := stoploss.Measure(load, stop, demoAfter)
	s.Counts, s.Lost, s.Samples = res.SinceMark, res.SinceMark.Bad(), res.Samples
	return s, err
}

// drain drains srv and stops it: after the drain with stop, or with stop
// nil by handing over to srv.Shutdown once the backlog is empty. Only then
// it opens the gate. It notes in s when the gate refused, when the server
// began to stop and when the port was drained.
func (d *demo) drain(ctx context.Context, srv *demoserver.Server, stop func() error, s *demoStop) error {
	t := sockdrain.Target{Addr: srv.Addr().Addr(), Port: srv.Addr().Port(), NetNS: d.ns.Path()}
	opts := sockdrain.Options{Backend: d.cfg.backend, Timeout: 20 * time.Second, Idle: keepAliveIdle,
		OnReport: s.note}
	if stop == nil {
		opts.Stop = func(ctx context.Context) error { return ignoreStopTimeout(srv.Shutdown(ctx)) }
	}
	r, err := stoploss.DrainThenStop(ctx, t, opts, stop)
	s.Gate, s.Drained = r.Backend, r.Elapsed
	return err
}

// note takes what a stop's drain reports.
func (s *demoStop) note(r sockdrain.Report) {
	switch {
	case r.Event == sockdrain.EventPhase && r.Phase == sockdrain.Gated:
		s.Gated, s.GateMessage = r.Elapsed, r.Message
	case r.Event == sockdrain.EventWarning:
		s.Warnings = append(s.Warnings, r.Message)
	}
	if r.Stopping && s.Stopped == 0 {
		s.Stopped = r.Elapsed
	}
}

// ignoreStopTimeout: a stop that had to cut requests is what the clients
// report (as resets), not a failure of the demo.
func ignoreStopTimeout(err error) error {
	if errors.Is(err, demoserver.ErrStopTimeout) {
		return nil
	}
	return err
}
