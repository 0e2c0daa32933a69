// Package supervisor is `sockdrain run`: it runs a server on sockets it
// made, forwards signals to it, serves drains of those sockets over the
// control socket, one at a time, and opens the gates they left armed once
// the server is gone.
package supervisor

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

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/control"
	"github.com/sockdrain/sockdrain/internal/sockfd"
)

// Outcomes of drains through `sockdrain run`, with the library's errors
// and so the same exit codes.
var (
	ErrServerExited = fmt.Errorf("%w: sockdrain run's server exited", sockdrain.ErrServerExited)
	ErrBusy         = fmt.Errorf("%w: another drain of this sockdrain run is under way", sockdrain.ErrBusy)
)

// Supervisor serves drains of the sockets a `sockdrain run` owns, to the
// server it runs.
type Supervisor struct {
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

// New returns the Supervisor of files, the sockets made for the server.
func New(files []*os.File) *Supervisor {
	r := &Supervisor{files: files}
	r.exited, r.serverExited = context.WithCancel(context.Background())
	return r
}

// Drain is the control.Handler: it drains the target the request names
// among the owned sockets, with the gates acting on them.
func (r *Supervisor) Drain(ctx context.Context, req control.Request, report func(sockdrain.Report)) (sockdrain.Report, error) {
	if !r.busy.TryLock() {
		return sockdrain.Report{}, ErrBusy
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
			cancel(ErrServerExited)
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
func (r *Supervisor) stopChild(ctx context.Context, req control.Request) error {
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
		return ShellStop(req.Stop)(ctx)
	}
	return nil
}

// ResumeDrained opens the gates drains left armed, once the server and
// its sockets are gone: nothing listens there any more, and a gate left
// behind would refuse the port's next server.
func (r *Supervisor) ResumeDrained(ctx context.Context) error {
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
func (r *Supervisor) target(req control.Request) (sockdrain.Target, error) {
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
		return t, invalidf("this sockdrain run does not serve %s; it serves %v", t, addrs)
	}
	return t, nil
}

func requestTarget(req control.Request, addrs []netip.AddrPort) (sockdrain.Target, error) {
	if req.Listen != "" || req.Port != "" {
		return sockdrain.ParseTarget(req.Listen, req.Port)
	}
	ports := map[uint16]bool{}
	for _, a := range addrs {
		ports[a.Port()] = true
	}
	if len(ports) != 1 {
		return sockdrain.Target{}, invalidf("this sockdrain run serves %v: give --port or --listen", addrs)
	}
	return sockdrain.Target{Port: addrs[0].Port()}, nil
}

// inputError is bad input: it matches sockdrain.ErrInvalid.
type inputError struct{ error }

func (e inputError) Unwrap() error      { return e.error }
func (inputError) Is(target error) bool { return target == sockdrain.ErrInvalid }

func invalidf(format string, args ...any) error { return inputError{fmt.Errorf(format, args...)} }
