package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/sockdrain/demoserver"
	"github.com/sockdrain/sockdrain/sockdrain/loadgen"
	"github.com/sockdrain/sockdrain/sockdrain/netns"
	"github.com/urfave/cli/v2"
)

// demoConfig is one demo: the built-in server under closed-loop load, in a
// private network namespace.
type demoConfig struct {
	backend   string
	clients   int
	delay     time.Duration
	warmup    time.Duration
	listeners int
	mptcp     bool
}

func demoCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "stop a loaded server twice in a private netns, without and with sockdrain, and count what clients saw",
		Description: "Creates a network namespace, starts the built-in HTTP server in it with a small delay per\n" +
			"request, and drives closed-loop load at it. Round one stops the server the usual way (closing\n" +
			"its listeners); round two drains it with sockdrain first. Prints each round's outcomes:\n" +
			"complete, refused, reset, timeout, partial. Exits 1 if the drained round lost a client.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "backend", Value: "auto", Usage: "gate for the drained round"},
			&cli.IntFlag{Name: "clients", Value: 64, Usage: "closed-loop clients"},
			&cli.DurationFlag{Name: "delay", Value: 5 * time.Millisecond, Usage: "server's delay per request"},
			&cli.DurationFlag{Name: "warmup", Value: 2 * time.Second, Usage: "load before each stop"},
			&cli.StringFlag{Name: "server", Value: "reuseport", Usage: "reuseport (4 sockets), plain, or mptcp (Go's default)"},
			&cli.BoolFlag{Name: "json", Usage: "print the outcomes as JSON"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := demoFlags(c)
			if err != nil {
				return err
			}
			rows, err := runDemo(c.Context, e, cfg, c.Bool("json"))
			if err != nil {
				return err
			}
			if err := printDemo(e, rows, c.Bool("json")); err != nil {
				return err
			}
			if bad := rows[1].Result.Counts.Bad(); bad > 0 {
				return fmt.Errorf("the drained round lost %d clients", bad)
			}
			return nil
		},
	}
}

func demoFlags(c *cli.Context) (demoConfig, error) {
	cfg := demoConfig{backend: c.String("backend"), clients: c.Int("clients"), delay: c.Duration("delay"),
		warmup: c.Duration("warmup"), listeners: 1}
	switch c.String("server") {
	case "reuseport":
		cfg.listeners = 4
	case "mptcp":
		cfg.mptcp = true
	case "plain":
	default:
		return cfg, badInput("--server %q: want reuseport, plain or mptcp", c.String("server"))
	}
	if cfg.clients < 1 || cfg.clients > 1024 || cfg.delay < 0 || cfg.warmup <= 0 || cfg.warmup > time.Minute {
		return cfg, badInput("--clients must be 1 to 1024, --delay not negative, --warmup up to 1m")
	}
	return cfg, nil
}

func runDemo(ctx context.Context, e env, cfg demoConfig, quiet bool) ([]loadgen.Row, error) {
	ns, err := netns.Create("sockdrain-demo-" + strconv.Itoa(os.Getpid()))
	if err != nil {
		return nil, err
	}
	defer ns.Remove()
	var rows []loadgen.Row
	for _, drained := range []bool{false, true} {
		label := "plain stop"
		if drained {
			label = "sockdrain, then stop"
		}
		if !quiet {
			fmt.Fprintf(e.stdout, "== %s: %d clients, %s per request\n", label, cfg.clients, cfg.delay)
		}
		res, err := demoRound(ctx, e, ns, cfg, drained, quiet)
		if err != nil {
			return nil, fmt.Errorf("%s round: %w", label, err)
		}
		rows = append(rows, loadgen.Row{Label: label, Result: res})
	}
	return rows, nil
}

// demoRound loads the server, stops it (after a drain when drained), and
// returns what the clients saw.
func demoRound(ctx context.Context, e env, ns *netns.NS, cfg demoConfig, drained, quiet bool) (loadgen.Result, error) {
	srv, err := demoserver.Start(demoserver.Config{Addr: "127.0.0.1:0", Listeners: cfg.listeners,
		MPTCP: cfg.mptcp, Delay: cfg.delay, Do: ns.Do})
	if err != nil {
		return loadgen.Result{}, err
	}
	defer srv.Stop()
	load, err := loadgen.Start(ctx, loadgen.Config{Addr: srv.Addr().String(), Workers: cfg.clients,
		Duration: cfg.warmup + time.Minute, MaxAttempts: 5_000_000, CheckBody: true, Dial: loadgen.DialIn(ns)})
	if err != nil {
		return loadgen.Result{}, err
	}
	defer load.Stop()
	select {
	case <-time.After(cfg.warmup):
	case <-ctx.Done():
		return loadgen.Result{}, context.Cause(ctx)
	}
	if drained {
		if err := demoDrain(ctx, e, ns, srv.Addr(), cfg.backend, quiet); err != nil {
			return loadgen.Result{}, err
		}
	}
	if err := srv.Stop(); err != nil && !errors.Is(err, demoserver.ErrStopTimeout) {
		return loadgen.Result{}, err
	}
	time.Sleep(300 * time.Millisecond) // clients keep knocking on the stopped port
	load.Stop()
	return load.Wait()
}

func demoDrain(ctx context.Context, e env, ns *netns.NS, addr netip.AddrPort, backend string, quiet bool) error {
	t := sockdrain.Target{Addr: addr.Addr(), Port: addr.Port(), NetNS: ns.Path()}
	out := newDrainOutput(e, false)
	opts := sockdrain.Options{Backend: backend, Timeout: 20 * time.Second}
	if !quiet {
		opts.OnReport = out.report
	}
	_, err := sockdrain.Drain(ctx, t, opts)
	out.end()
	// The demo's namespace goes away; open the gate so nothing of ours
	// outlives it (a pinned gate would keep the namespace alive).
	_, rerr := sockdrain.Resume(ctx, t)
	return errors.Join(err, rerr)
}

func printDemo(e env, rows []loadgen.Row, asJSON bool) error {
	if asJSON {
		out := map[string]loadgen.Result{"plain_stop": rows[0].Result, "sockdrain": rows[1].Result}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	fmt.Fprintln(e.stdout)
	if err := loadgen.WriteTable(e.stdout, rows...); err != nil {
		return err
	}
	c := rows[1].Result.Counts
	fmt.Fprintf(e.stdout, "\nwith sockdrain: %d bad outcomes (resets, timeouts, partial answers); every other client got a complete response or ECONNREFUSED\n", c.Bad())
	return nil
}
