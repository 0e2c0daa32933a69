package sockdrain

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
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

// watcher is what the engine observes.
type watcher interface {
	// poll observes the target once: its listeners and the sockets a drain
	// still waits on. With follow, it keeps those listening addresses
	// after their listeners close, with the sockets left on them, and
	// never returns ErrNoListener. Without activity, sockets may come
	// without SinceRecv and SinceSent, and none counts as idle.
	poll(follow []netip.AddrPort, activity bool) ([]Listener, []observe.Socket, error)
}

// idleCloser ends idle connections on the server's behalf: it shuts each
// of conns down if it is still idle for idle, and returns how many it
// closed and how many received data just as they were shut down.
type idleCloser interface {
	closeIdle(conns []observe.Socket, idle time.Duration) (closed, crossed int, err error)
}

// notifier is a watcher that can also say when a socket the drain waits
// on may have gone: destroyed returns a channel that receives when the
// kernel frees a socket on the target's port or loses such reports, and is
// closed if the reports stop; stop ends them. Accepting a connection and
// request sockets in SYN_RECV are not reported.
type notifier interface {
	destroyed() (events <-chan struct{}, stop func(), err error)
}

// narrower is a watcher that can poll more cheaply once the gate refuses:
// it counts the connections that arrive from then on (countArrivals), and
// once the backlog is empty it polls only what it knows (narrowPolls). See
// Observer.narrowPolls.
type narrower interface {
	countArrivals()
	narrowPolls()
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
	// settle, if set, does what can wait until the gate refuses: it finds
	// the servers and the warnings.
	settle func() error
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
	// closer ends idle connections; set with Options.CloseIdle.
	closer idleCloser
	clock  clock

	// listens are the addresses of the target's listeners; follow, once
	// the drain hands over to the server's stop.
	listens, follow []netip.AddrPort
	// stopDone receives the stop's result while it runs; stopped is set
	// when it returned nil.
	stopDone   chan error
	cancelStop context.CancelFunc
	stopped    bool
	closedIdle int
	idleNoted  bool

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
	if err := e.arm(); err != nil {
		return rep, classify("arm", e.backend, err)
	}
	if e.settle != nil {
		if err := e.settle(); err != nil {
			if e.joined {
				return rep, err
			}
			return rep, errors.Join(err, e.gates.disarm())
		}
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
	if n, ok := e.watch.(narrower); ok {
		n.countArrivals()
	}
	return e.wait(ctx)
}

// arm arms every gate. If one fails, those armed are disarmed, unless the
// drain joined them: a joined gate stays armed whatever happens.
func (e *engine) arm() error {
	for _, g := range e.gates {
		if err := g.Arm(); err != nil {
			if e.joined {
				return err
			}
			return errors.Join(err, e.gates.disarm())
		}
	}
	return nil
}

func (e *engine) wait(ctx context.Context) (Report, error) {
	events, stop := e.subscribe()
	defer stop()
	defer e.endStop()
	interval := minPoll
	for first := true; ; first = false {
		if ctx.Err() != nil {
			return e.finish(EventWarning, e.last, "cancelled"), context.Cause(ctx)
		}
		// While the backlog empties, nothing can be idle yet: spare the
		// kernel each socket's tcp_info until then.
		ls, pending, err := e.watch.poll(e.follow, e.phase != Gated)
		if errors.Is(err, ErrNoListener) {
			return e.listenerGone()
		}
		if err != nil {
			return e.finish(EventWarning, e.last, err.Error()), err
		}
		e.remember(ls)
		c := sum(ls)
		if err := e.closeIdle(c, pending); err != nil {
			return e.finish(EventWarning, c, err.Error()), err
		}
		if e.advance(c) == Drained {
			return e.finish(EventPhase, c, e.drainedMessage(ls)), nil
		}
		if n, ok := e.watch.(narrower); ok && e.phase != Gated {
			n.narrowPolls()
		}
		handedOver := false
		if e.phase != Gated && e.stopDone == nil && !e.stopped && e.handsOver() {
			e.startStop(ctx, c) // which reports the counts, saying so
			handedOver = true
		}
		if (first || c != e.last) && !handedOver {
			e.emit(EventProgress, c, "")
		}
		if first || handedOver || moved(c, e.last) {
			interval = minPoll
		} else {
			interval = min(2*interval, e.pollCap(c, events != nil))
		}
		e.noteIdle(c, pending)
		e.checkStall(c)
		e.last = c
		left := e.left()
		if left <= 0 {
			return e.timedOut(c, pending)
		}
		select {
		case <-ctx.Done():
		case <-e.clock.After(min(interval, left)):
		case _, ok := <-events:
			if !ok {
				events = nil // the reports stopped: poll as if there were none
			}
		case err := <-e.stopDone:
			e.stopDone = nil
			if err != nil {
				err = fmt.Errorf("%w: %w", ErrStop, err)
				return e.finish(EventWarning, e.last, err.Error()), err
			}
			e.stopped = true
			interval = minPoll
		}
	}
}

// moved reports whether anything but the idle count changed from last to
// c. Connections falling idle one by one are reported, but they do not
// make the engine poll fast again: nothing is draining faster for it.
func moved(c, last Counts) bool {
	c.Idle = last.Idle
	return c != last
}

// remember records the addresses of the target's listeners, which the
// drain follows once it has handed over to the server's stop.
func (e *engine) remember(ls []Listener) {
	for _, l := range ls {
		if !slices.Contains(e.listens, l.Listen) {
			e.listens = append(e.listens, l.Listen)
		}
	}
}

// drainedMessage says how a drain ended. After a stop that closed every
// listener, nothing is left for the gate to guard: it is removed, so no
// pin or rule outlives the server.
func (e *engine) drainedMessage(ls []Listener) string {
	if !e.stopped {
		return "the gate stays armed until resume"
	}
	msg := "the server stopped and every connection is closed and acknowledged"
	if slices.ContainsFunc(ls, func(l Listener) bool { return l.Sockets > 0 }) {
		return msg + "; its listener is still open, so the gate stays armed until resume"
	}
	if e.joined {
		return msg
	}
	if err := e.rollback(); err != nil {
		return fmt.Sprintf("%s; removing the gate failed (run resume): %v", msg, err)
	}
	return msg + "; the listener is closed and the gate removed"
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
// completes or expires, so while the queues hold any it stays at maxPoll;
// nor when a connection falls idle, so it stays there too while the drain
// closes idle connections.
func (e *engine) pollCap(c Counts, events bool) time.Duration {
	switch {
	case e.closer != nil && c.Established > 0:
		return min(maxPoll, e.opts.Idle/4)
	case events && c.AcceptQueue == 0 && c.SynRecv == 0:
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
// reports each phase passed on the way to Drained. A drain that hands over
// to the server's stop is not drained before the stop has returned.
func (e *engine) advance(c Counts) Phase {
	reached := c.reached()
	if reached == Drained && e.handsOver() && !e.stopped {
		reached = Flushed
	}
	for slices.Index(phases, e.phase) < slices.Index(phases, reached) {
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

func (e *engine) timedOut(c Counts, pending []observe.Socket) (Report, error) {
	e.phase = TimedOut
	rep := e.report(EventPhase, c, "")
	rep.Remaining = remaining(pending, e.opts.Idle)
	e.send(rep)
	err := fmt.Errorf("%w after %s: wait for %s", ErrTimeout, e.opts.Timeout, e.waitingFor(c))
	if c.Idle > 0 && e.closer == nil && !e.handsOver() {
		err = fmt.Errorf("%w; idle connections end when their clients close them: hand over to the server's stop (--stop, --stop-signal) or close them (--close-idle)", err)
	}
	return rep, err
}

// waitingFor names the first condition c does not meet, or the stop.
func (e *engine) waitingFor(c Counts) string {
	switch {
	case c.AcceptQueue > 0:
		return fmt.Sprintf("accept_queue=0 (%d left)", c.AcceptQueue)
	case c.SynRecv > 0:
		return fmt.Sprintf("syn_recv=0 (%d left)", c.SynRecv)
	case c.Established > 0 && c.Idle == c.Established:
		return fmt.Sprintf("established=0 (%d left, all idle)", c.Established)
	case c.Established > 0 && c.Idle > 0:
		return fmt.Sprintf("established=0 (%d left, %d idle)", c.Established, c.Idle)
	case c.Established > 0:
		return fmt.Sprintf("established=0 (%d left)", c.Established)
	case c.CloseWait > 0:
		return fmt.Sprintf("close_wait=0 (%d left)", c.CloseWait)
	case c.UnackedBytes > 0:
		return fmt.Sprintf("unacked_bytes=0 (%d left)", c.UnackedBytes)
	case c.Closing > 0:
		return fmt.Sprintf("closing=0 (%d FINs not yet acknowledged)", c.Closing)
	case e.stopDone != nil:
		return "the server's stop to return"
	}
	return ""
}

func (e *engine) report(ev Event, c Counts, msg string) Report {
	now := e.clock.Now()
	rep := Report{Time: now, Elapsed: Duration(now.Sub(e.start)), Event: ev, Phase: e.phase,
		Backend: e.backend, Message: msg, Counts: c, ClosedIdle: e.closedIdle,
		Stopping: e.stopDone != nil || e.stopped}
	if e.phase != Drained && e.phase != TimedOut {
		rep.Waiting = e.waitingFor(c)
	}
	return rep
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
