package sockdrain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// Poll intervals: the engine polls fast while the counts move and backs off
// while they stand still, as net/http's Shutdown does. It backs off to
// maxPoll while a queue may empty unseen, and to eventPoll while it waits
// only on connections whose end the kernel reports (see notifier).
const (
	minPoll   = time.Millisecond
	maxPoll   = 200 * time.Millisecond
	eventPoll = 2 * time.Second
)

// forever is the time left when there is no timeout.
const forever = time.Duration(1<<63 - 1)

// watcher is what the engine observes: the target's listeners, and on
// timeout the connections still pending.
type watcher interface {
	Listeners() ([]Listener, error)
	Pending() ([]observe.Socket, error)
}

// notifier is a watcher that can also say when a socket the drain waits
// on may have gone: destroyed returns a channel that receives when the
// kernel frees a socket on the target's port or loses such reports, and is
// closed if the reports stop; stop ends them. Accepting a connection and
// request sockets in SYN_RECV are not reported.
type notifier interface {
	destroyed() (events <-chan struct{}, stop func(), err error)
}

// clock is time, injectable for tests.
type clock interface {
	Now() time.Time
	After(time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// engine runs one drain: it owns all state in one goroutine, in a select
// loop where the timeout and cancellation are just other cases.
type engine struct {
	opts    Options
	watch   watcher
	gates   gates
	backend string
	reason  string // why backend was chosen
	// warnings about the chosen gate, reported once it is armed
	warnings []string
	verify   func() error // checks the gate refuses; nil to skip
	// release lets go of the listener's sockets and the gates' handles once
	// the gate is armed: a server that closes its listener or exits
	// mid-drain must see it close, not kept open by our duplicate.
	release func()
	// rollback opens the gates again after release, finding them anew.
	rollback func() error
	// joined: the gates were armed before this drain began. It leaves
	// them armed, whatever happens.
	joined bool
	// servers are the processes that held the listeners; nil if unknown.
	servers servers
	clock   clock

	start time.Time
	phase Phase
	last  Counts
	// stall tracking: the accept queue has not shrunk since queueSince.
	queueSince time.Time
	warned     bool
}

// run arms the gates, waits for the target to drain, and returns the final
// report. On any failure the gates are rolled back unless opts.KeepGate.
func (e *engine) run(ctx context.Context) (rep Report, err error) {
	e.start = e.clock.Now()
	if err := e.gates.arm(); err != nil {
		return rep, fmt.Errorf("arm %s gate: %w", e.backend, err)
	}
	if e.verify != nil {
		if err := e.verify(); err != nil {
			err = fmt.Errorf("verify %s gate: %w", e.backend, err)
			if e.joined {
				return rep, err
			}
			return rep, errors.Join(err, e.gates.disarm())
		}
	}
	e.release()
	defer func() {
		if err != nil && !e.opts.KeepGate && !e.joined {
			if rerr := e.rollback(); rerr != nil {
				err = fmt.Errorf("%w (and roll back %s gate: %v)", err, e.backend, rerr)
			}
		}
	}()
	e.phase = Gated
	e.emit(EventPhase, Counts{}, fmt.Sprintf("new connections refused by the %s gate (%s)", e.backend, e.reason))
	for _, w := range e.warnings {
		e.emit(EventWarning, Counts{}, w)
	}
	return e.wait(ctx)
}

func (e *engine) wait(ctx context.Context) (Report, error) {
	events, stop := e.subscribe()
	defer stop()
	interval := minPoll
	for first := true; ; first = false {
		if ctx.Err() != nil {
			return e.finish(EventWarning, e.last, "cancelled"), context.Cause(ctx)
		}
		ls, err := e.watch.Listeners()
		if errors.Is(err, ErrNoListener) {
			return e.listenerGone()
		}
		if err != nil {
			return e.finish(EventWarning, e.last, err.Error()), err
		}
		c := sum(ls)
		if e.advance(c) == Drained {
			return e.finish(EventPhase, c, "the gate stays armed until resume"), nil
		}
		if first || c != e.last {
			e.emit(EventProgress, c, "")
			interval = minPoll
		} else {
			interval = min(2*interval, pollCap(c, events != nil))
		}
		e.checkStall(c)
		e.last = c
		left := e.left()
		if left <= 0 {
			return e.timedOut(c)
		}
		select {
		case <-ctx.Done():
		case <-e.clock.After(min(interval, left)):
		case _, ok := <-events:
			if !ok {
				events = nil // the reports stopped: poll as if there were none
			}
		}
	}
}

// listenerGone reports the end of a drain whose listeners all closed: by
// the server's exit, or while the server kept running.
func (e *engine) listenerGone() (Report, error) {
	lost := fmt.Sprintf("the kernel reset the %d queued and %d half-open connections it last had",
		e.last.AcceptQueue, e.last.SynRecv)
	if e.servers != nil && e.servers.exited(serverExitWait) {
		return e.finish(EventWarning, e.last, "the server exited"), fmt.Errorf("%w: %s", ErrServerExited, lost)
	}
	return e.finish(EventWarning, e.last, "the listener closed"), fmt.Errorf("%w: %s", ErrListenerClosed, lost)
}

// subscribe asks the watcher for destroy reports. Without them the drain
// still completes, polling, so a failure is not the user's concern.
func (e *engine) subscribe() (<-chan struct{}, func()) {
	n, ok := e.watch.(notifier)
	if !ok {
		return nil, func() {}
	}
	events, stop, err := n.destroyed()
	if err != nil {
		return nil, func() {}
	}
	return events, stop
}

// pollCap is the longest the engine waits between polls given counts c.
// No event comes when a queued connection is accepted or a request socket
// completes or expires, so while the queues hold any it stays at maxPoll.
func pollCap(c Counts, events bool) time.Duration {
	if events && c.AcceptQueue == 0 && c.SynRecv == 0 {
		return eventPoll
	}
	return maxPoll
}

// left is the time before the timeout, or forever when there is none.
func (e *engine) left() time.Duration {
	if e.opts.Timeout <= 0 {
		return forever
	}
	return e.opts.Timeout - e.clock.Now().Sub(e.start)
}

// phases are the phases a drain passes through, in order.
var phases = []Phase{Gated, BacklogEmpty, ConnectionsClosed, Flushed, Drained}

// advance moves the phase forward as far as c allows, never back, and
// reports each phase passed on the way to Drained.
func (e *engine) advance(c Counts) Phase {
	for slices.Index(phases, e.phase) < slices.Index(phases, c.reached()) {
		e.phase = phases[slices.Index(phases, e.phase)+1]
		if e.phase != Drained {
			e.emit(EventPhase, c, "")
		}
	}
	return e.phase
}

func (e *engine) checkStall(c Counts) {
	now := e.clock.Now()
	if c.AcceptQueue == 0 || c.AcceptQueue < e.last.AcceptQueue || e.queueSince.IsZero() {
		e.queueSince, e.warned = now, false
		return
	}
	if !e.warned && now.Sub(e.queueSince) >= e.opts.Stall {
		e.warned = true
		e.emit(EventWarning, c, fmt.Sprintf("no worker is accepting: the accept queue has held %d for %s",
			c.AcceptQueue, now.Sub(e.queueSince).Round(time.Millisecond)))
	}
}

func (e *engine) timedOut(c Counts) (Report, error) {
	e.phase = TimedOut
	rep := e.report(EventPhase, c, "")
	if pending, err := e.watch.Pending(); err == nil {
		rep.Remaining = remaining(pending)
	}
	e.send(rep)
	return rep, fmt.Errorf("%w after %s: wait for %s", ErrTimeout, e.opts.Timeout, c.waitingFor())
}

// waitingFor names the first condition c does not meet.
func (c Counts) waitingFor() string {
	switch {
	case c.AcceptQueue > 0:
		return fmt.Sprintf("accept_queue=0 (%d left)", c.AcceptQueue)
	case c.SynRecv > 0:
		return fmt.Sprintf("syn_recv=0 (%d left)", c.SynRecv)
	case c.Established > 0:
		return fmt.Sprintf("established=0 (%d left)", c.Established)
	case c.CloseWait > 0:
		return fmt.Sprintf("close_wait=0 (%d left)", c.CloseWait)
	}
	return fmt.Sprintf("unacked_bytes=0 (%d left)", c.UnackedBytes)
}

func (e *engine) report(ev Event, c Counts, msg string) Report {
	now := e.clock.Now()
	return Report{Time: now, Elapsed: Duration(now.Sub(e.start)), Event: ev, Phase: e.phase,
		Backend: e.backend, Message: msg, Counts: c}
}

func (e *engine) emit(ev Event, c Counts, msg string) { e.send(e.report(ev, c, msg)) }

// finish reports the last step of a drain and returns it.
func (e *engine) finish(ev Event, c Counts, msg string) Report {
	rep := e.report(ev, c, msg)
	e.send(rep)
	return rep
}

func (e *engine) send(rep Report) {
	if e.opts.OnReport != nil {
		e.opts.OnReport(rep)
	}
}
