package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/sockdrain/sockdrain/internal/control"
	"github.com/sockdrain/sockdrain/internal/listenfd"
	"github.com/sockdrain/sockdrain/internal/supervisor"
)

func runCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a server on listening sockets sockdrain makes, and drain them on request",
		UsageText: "sockdrain run --listen HOST:PORT [--listen HOST:PORT ...] [--name NAME] [--control PATH] [--reuseport] -- CMD [ARGS...]",
		Description: "sockdrain run makes the listening sockets and starts CMD with them as file descriptors\n" +
			"3, 4, ... by the systemd convention (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES=NAME). It keeps\n" +
			"its own duplicates, and serves `sockdrain drain --control NAME` on a control socket only\n" +
			"root can reach (" + control.DefaultDir + "/NAME.sock), running the drain on the sockets it owns. It\n" +
			"forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to CMD and exits with CMD's\n" +
			"status, or 128+N if a signal N killed it. NAME defaults to the first socket's port.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "listen", Aliases: []string{"l"}, Usage: "make a listening socket on `HOST:PORT` (repeatable; :PORT is every address)"},
			&cli.StringFlag{Name: "name", Usage: "the sockets' name in LISTEN_FDNAMES and the control socket's (default: the first port)"},
			&cli.StringFlag{Name: "control", Usage: "control socket `PATH` (default " + control.DefaultDir + "/NAME.sock)"},
			&cli.BoolFlag{Name: "reuseport", Usage: "set SO_REUSEPORT, which the reuseport gate needs"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := parseRun(c)
			if err != nil {
				return err
			}
			return runServer(c.Context, e, cfg)
		},
	}
}

// runConfig is what `sockdrain run` was asked to do.
type runConfig struct {
	addrs     []netip.AddrPort
	name      string
	control   string
	reusePort bool
	path      string   // the server's program, resolved
	argv      []string // its arguments, argv[0] as given
}

func parseRun(c *cli.Context) (runConfig, error) {
	cfg := runConfig{reusePort: c.Bool("reuseport"), argv: c.Args().Slice()}
	if len(cfg.argv) == 0 {
		return cfg, badInput("give the server to run after --, as in: sockdrain run --listen :8080 -- CMD ARGS")
	}
	if len(c.StringSlice("listen")) == 0 {
		return cfg, badInput("give at least one --listen HOST:PORT")
	}
	for _, s := range c.StringSlice("listen") {
		a, err := listenfd.ParseAddr(s)
		if err != nil {
			return cfg, inputError{err}
		}
		cfg.addrs = append(cfg.addrs, a)
	}
	cfg.name = c.String("name")
	if cfg.name == "" {
		cfg.name = fmt.Sprint(cfg.addrs[0].Port())
	}
	if err := listenfd.ValidName(cfg.name); err != nil || strings.Contains(cfg.name, "/") {
		return cfg, badInput("--name %q: want printable ASCII without spaces, ':' or '/'", cfg.name)
	}
	cfg.control = c.String("control")
	if cfg.control == "" {
		cfg.control = control.Path(cfg.name)
	}
	path, err := exec.LookPath(cfg.argv[0])
	if err != nil {
		return cfg, badInput("find the server %q: %v", cfg.argv[0], err)
	}
	cfg.path = path
	return cfg, nil
}

// runServer makes the sockets and the control socket, runs the server, and
// returns its exit status as an error (nil for 0).
func runServer(ctx context.Context, e env, cfg runConfig) error {
	files, err := listenfd.Listen(cfg.addrs, listenfd.Options{ReusePort: cfg.reusePort})
	if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL) {
		return inputError{err}
	}
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		closeFiles(files)
		return fmt.Errorf("find sockdrain's own executable: %w", err)
	}
	r := supervisor.New(files)
	srv, err := control.Listen(cfg.control, r.Drain)
	if err != nil {
		closeFiles(files)
		if errors.Is(err, control.ErrInUse) {
			return inputError{err}
		}
		return err
	}
	ctx = context.WithoutCancel(ctx) // signals go to the server, not to us
	go srv.Serve(ctx)
	cmd := listenfd.Command(self, files, cfg.name, cfg.path, cfg.argv)
	fmt.Fprintf(e.stderr, "sockdrain run: serving %s to %s; drain with: sockdrain drain --control %s\n",
		fileNames(files), cfg.argv[0], cfg.control)
	err = r.Run(cmd)
	srv.Close()
	closeFiles(files)
	if rerr := r.ResumeDrained(ctx); rerr != nil {
		fmt.Fprintf(e.stderr, "sockdrain run: %s\n", oneLine(rerr))
	}
	return err
}

func fileNames(files []*os.File) string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = fmt.Sprintf("%s (fd %d)", f.Name(), listenfd.FirstFD+i)
	}
	return strings.Join(names, ", ")
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
