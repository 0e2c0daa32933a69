package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/control"
	"github.com/sockdrain/sockdrain/internal/sockfd"
)

// carriedExitCode is the exit code err carries, if it chooses its own: a
// server's status passed on by `sockdrain run`. A remote drain's error
// matches the library's errors, and takes their codes.
func carriedExitCode(err error) (int, bool) {
	if e, ok := errors.AsType[childError](err); ok {
		return e.code, true
	}
	return 0, false
}

// Outcomes of drains through `sockdrain run`, with the library's errors
// and so the same exit codes.
var (
	errServerExited = fmt.Errorf("%w: sockdrain run's server exited", sockdrain.ErrServerExited)
	errBusy         = fmt.Errorf("%w: another drain of this sockdrain run is under way", sockdrain.ErrBusy)
)

// runner serves drains of the sockets a `sockdrain run` owns.
type runner struct {
	files []*os.File
	busy  sync.Mutex
	// exited ends when the server exits; serverExited ends it.
	exited       context.Context
	serverExited context.CancelFunc
	// drained are the targets whose gates a drain left armed.
	drained []sockdrain.Target
	// child is the server, once started.
	child atomic.Pointer[os.Process]
}

func newRunner(files []*os.File) *runner {
	r := &runner{files: files}
	r.exited, r.serverExited = context.WithCancel(context.Background())
	return r
}

// drain is the control.Handler: it drains the target the request names
// among the owned sockets, with the gates acting on them.
func (r *runner) drain(ctx context.Context, req control.Request, report func(sockdrain.Report)) (sockdrain.Report, error) {
	if !r.busy.TryLock() {
		return sockdrain.Report{}, errBusy
	}
	defer r.busy.Unlock()
	t, err := r.target(req)
	if err != nil {
		return sockdrain.Report{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The server exiting ends the drain, unless the drain stopped it.
	var stopping atomic.Bool
	stop := context.AfterFunc(r.exited, func() {
		if !stopping.Load() {
			cancel(errServerExited)
		}
	})
	defer stop()
	opts := sockdrain.Options{Backend: req.Backend, Timeout: req.Timeout, Stall: req.Stall,
		NoVerify: req.NoVerify, KeepGate: req.KeepGate, OnReport: report, Sockets: r.files,
		CloseIdle: req.CloseIdle, Idle: req.Idle}
	if req.Stop != "" || req.StopSignal != 0 {
		opts.Stop = func(ctx context.Context) error {
			stopping.Store(true)
			return r.stopChild(ctx, req)
		}
	}
	rep, err := sockdrain.Drain(ctx, t, opts)
	if err == nil || req.KeepGate {
		r.drained = append(r.drained, t)
	}
	return rep, err
}

// stopChild is a drain's hand-over to the server: the request's signal,
// sent to the server itself rather than to `sockdrain run`, which holds the
// listener too, and its command.
func (r *runner) stopChild(ctx context.Context, req control.Request) error {
	if req.StopSignal != 0 {
		p := r.child.Load()
		if p == nil {
			return errors.New("the server has not started")
		}
		if err := p.Signal(syscall.Signal(req.StopSignal)); err != nil {
			return fmt.Errorf("send %v to the server: %w", syscall.Signal(req.StopSignal), err)
		}
	}
	if req.Stop != "" {
		return shellStop(req.Stop)(ctx)
	}
	return nil
}

// resumeDrained opens the gates drains left armed, once the server and
// its sockets are gone: nothing listens there any more, and a gate left
// behind would refuse the port's next server.
func (r *runner) resumeDrained(ctx context.Context) error {
	r.busy.Lock()
	defer r.busy.Unlock()
	var errs []error
	for _, t := range r.drained {
		_, err := sockdrain.Resume(ctx, t)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// target is what req names, which must be among the owned sockets: by
// default every socket, when they share one port.
func (r *runner) target(req control.Request) (sockdrain.Target, error) {
	var addrs []netip.AddrPort
	for _, f := range r.files {
		if a, err := sockfd.LocalAddr(f); err == nil {
			addrs = append(addrs, a)
		}
	}
	t, err := requestTarget(req, addrs)
	if err != nil {
		return t, err
	}
	if !slices.ContainsFunc(addrs, func(a netip.AddrPort) bool {
		return a.Port() == t.Port && (!t.Addr.IsValid() || a.Addr() == t.Addr)
	}) {
		return t, badInput("this sockdrain run does not serve %s; it serves %v", t, addrs)
	}
	return t, nil
}

func requestTarget(req control.Request, addrs []netip.AddrPort) (sockdrain.Target, error) {
	switch {
	case req.Listen != "" && req.Port != "":
		return sockdrain.Target{}, badInput("give --listen or --port, not both")
	case req.Listen != "":
		return sockdrain.ParseListen(req.Listen)
	case req.Port != "":
		p, err := sockdrain.ParsePort(req.Port)
		return sockdrain.Target{Port: p}, err
	}
	ports := map[uint16]bool{}
	for _, a := range addrs {
		ports[a.Port()] = true
	}
	if len(ports) != 1 {
		return sockdrain.Target{}, badInput("this sockdrain run serves %v: give --port or --listen", addrs)
	}
	return sockdrain.Target{Port: addrs[0].Port()}, nil
}

// drainControl is `sockdrain drain --control`: the drain runs in the
// `sockdrain run` process that owns the sockets, and its reports are shown
// here as a local drain's would be.
func drainControl(c *cli.Context, e env) error {
	if c.IsSet("netns") || c.IsSet("pid") {
		return badInput("--netns and --pid do not apply with --control: the sockdrain run process owns the sockets")
	}
	if c.NArg() > 0 {
		return badInput("unexpected argument %q", c.Args().First())
	}
	if c.Duration("timeout") <= 0 || c.Duration("stall") <= 0 {
		return badInput("--timeout and --stall must be positive")
	}
	stop, err := parseStop(c)
	if err != nil {
		return err
	}
	out := newDrainOutput(e, c.Bool("json"))
	out.timeout = c.Duration("timeout")
	_, err = control.Drain(c.Context, control.Path(c.String("control")), control.Request{
		Listen: c.String("listen"), Port: c.String("port"), Backend: c.String("backend"),
		Timeout: c.Duration("timeout"), Stall: c.Duration("stall"),
		NoVerify: c.Bool("no-verify"), KeepGate: c.Bool("keep-gate"),
		Stop: stop.command, StopSignal: int(stop.signal), CloseIdle: stop.closeIdle, Idle: stop.idle,
	}, out.report)
	out.end()
	return err
}
