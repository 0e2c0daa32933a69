package sockdrain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// Phase is how far a drain has got. A drain passes through the phases in
// order; Drained and TimedOut are final.
type Phase string

// The phases of a drain.
const (
	// Gated: new connections are refused with a RST.
	Gated Phase = "gated"
	// BacklogEmpty: the accept queue and half-open handshakes are empty.
	BacklogEmpty Phase = "backlog_empty"
	// ConnectionsClosed: no accepted connection is ESTABLISHED or CLOSE_WAIT.
	ConnectionsClosed Phase = "connections_closed"
	// Flushed: closing sockets hold no unacknowledged bytes.
	Flushed Phase = "flushed"
	// Drained: all of the above at once. The gate stays armed.
	Drained Phase = "drained"
	// TimedOut: the timeout passed first.
	TimedOut Phase = "timeout"
)

// Options tune a drain. The zero value is usable.
type Options struct {
	// Backend picks the gate: "auto" (or empty), or a backend by name.
	Backend string
	// PID, if set, is the process that must hold the listening socket.
	PID int
	// Timeout bounds the whole drain; zero means none.
	Timeout time.Duration
	// Stall is how long an accept queue may stay the same before the drain
	// warns that no worker is accepting. Default 5s.
	Stall time.Duration
	// NoVerify skips the probe connection that checks the gate refuses.
	NoVerify bool
	// KeepGate leaves the gate armed when the drain fails, times out or is
	// cancelled. By default it is rolled back and the port accepts again.
	KeepGate bool
	// OnReport, if set, receives every Report as it happens.
	OnReport func(Report)
	// Sockets, if set, are listening sockets the caller holds, such as
	// those `sockdrain run` made. Gates that act on a socket use
	// duplicates of these instead of taking sockets from other processes.
	Sockets []*os.File

	// Idle is how long an accepted connection must have received no data
	// to count as idle (see Counts.Idle). Default 1s.
	Idle time.Duration
	// Stop, if set, hands the accepted connections over to the server's
	// own graceful stop. The drain calls it once, as soon as the backlog is
	// empty while the gate refuses, so the server can close its listener
	// without resetting anyone. Stop may return at once (sending a signal)
	// or when the server has exited. The drain then follows every socket
	// the listeners' addresses still hold, those the stopped server left
	// behind included, until each is closed and its bytes acknowledged; the
	// listener closing and the server exiting are expected. An error from
	// Stop fails the drain with ErrStop, and the context it gets is
	// cancelled when the drain ends first.
	Stop func(context.Context) error
	// StopSignal, if not zero, is sent at the same moment to the server's
	// main process: the process holding the listener whose parent does not
	// hold it, such as the nginx master or a Go server's only process.
	StopSignal syscall.Signal
	// CloseIdle ends idle connections on the server's behalf, for a server
	// that stays up: each one is duplicated from its process with
	// pidfd_getfd and shut down (SHUT_RDWR), so the client reads a FIN and
	// the server reads EOF, as when a client leaves. A connection with
	// data in flight is never touched. It suits request/response protocols
	// such as HTTP/1.1, not connections quiet by design (WebSocket, SSE,
	// database sessions, HTTP/2, gRPC), which need the server's own stop.
	CloseIdle bool
}

// Event says why a Report was made.
type Event string

// Events.
const (
	EventPhase    Event = "phase"    // the drain reached a new phase
	EventProgress Event = "progress" // the counts changed
	EventWarning  Event = "warning"  // something needs a person's attention
)

// Counts are the numbers a drain waits on, summed over the target's
// listeners.
type Counts struct {
	AcceptQueue int `json:"accept_queue"`
	SynRecv     int `json:"syn_recv"`
	Established int `json:"established"`
	// Idle counts the established connections at rest between requests:
	// nothing unread, unsent or unacknowledged, no data received for
	// Options.Idle, and the server spoke last.
	Idle         int   `json:"idle"`
	CloseWait    int   `json:"close_wait"`
	Closing      int   `json:"closing"`
	UnackedBytes int64 `json:"unacked_bytes"`
}

// Report is one step of a drain, as shown to people and pipelines.
type Report struct {
	Time    time.Time `json:"time"`
	Elapsed Duration  `json:"elapsed"`
	Event   Event     `json:"event"`
	Phase   Phase     `json:"phase"`
	Backend string    `json:"backend,omitempty"`
	Message string    `json:"message,omitempty"`
	Counts
	// Waiting says what the drain waits for, while it waits.
	Waiting string `json:"waiting_for,omitempty"`
	// ClosedIdle counts the idle connections the drain has closed so far
	// (Options.CloseIdle).
	ClosedIdle int `json:"closed_idle,omitempty"`
	// Stopping is set once the drain has handed over to the server's stop.
	Stopping bool `json:"stopping,omitempty"`
	// Remaining lists what was left when a drain timed out.
	Remaining []Conn `json:"remaining,omitempty"`
}

// Conn is a connection a drain still waits on.
type Conn struct {
	Peer     string `json:"peer"`
	State    string `json:"state"`
	Unacked  uint32 `json:"unacked_bytes"`
	Accepted bool   `json:"accepted"`
	// Idle is set for a connection at rest between requests.
	Idle bool `json:"idle"`
	// SinceRecv is how long ago the connection last received data, where
	// the OS tells.
	SinceRecv Duration `json:"since_recv,omitempty"`
}

// Duration marshals as seconds, with millisecond precision.
type Duration time.Duration

// MarshalJSON writes d as a number of seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%.3f", time.Duration(d).Seconds()), nil
}

// UnmarshalJSON reads a number of seconds, to the millisecond.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s float64
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want seconds: %w", b, err)
	}
	*d = Duration(time.Duration(s * float64(time.Second)).Round(time.Millisecond))
	return nil
}

func sum(ls []Listener) Counts {
	var c Counts
	for _, l := range ls {
		c.AcceptQueue += l.AcceptQueue
		c.SynRecv += l.SynRecv
		c.Established += l.Established
		c.Idle += l.Idle
		c.CloseWait += l.CloseWait
		c.Closing += l.Closing
		c.UnackedBytes += l.UnackedBytes
	}
	return c
}

// reached returns the furthest phase c satisfies, from Gated on. Flushed
// holds while the peers have every data byte but not yet our FIN.
func (c Counts) reached() Phase {
	switch {
	case c.AcceptQueue > 0 || c.SynRecv > 0:
		return Gated
	case c.Established > 0 || c.CloseWait > 0:
		return BacklogEmpty
	case c.UnackedBytes > 0:
		return ConnectionsClosed
	case c.Closing > 0:
		return Flushed
	}
	return Drained
}

func remaining(sockets []observe.Socket, idle time.Duration) []Conn {
	conns := make([]Conn, 0, len(sockets))
	for _, s := range sockets {
		c := Conn{Peer: s.Remote.String(), State: s.State.String(),
			Unacked: s.SendQ, Accepted: s.Inode != 0, Idle: s.IdleFor(idle)}
		if s.Activity {
			c.SinceRecv = Duration(s.SinceRecv)
		}
		conns = append(conns, c)
	}
	return conns
}

func (gs gates) disarm() error {
	var errs []error
	for _, g := range gs {
		errs = append(errs, g.Disarm())
	}
	return errors.Join(errs...)
}

func (gs gates) close() error {
	var errs []error
	for _, g := range gs {
		errs = append(errs, g.Close())
	}
	return errors.Join(errs...)
}

// Drain gates the listeners serving t, so new connections are refused with
// a RST, waits until their accept queues, half-open handshakes, accepted
// connections and unacknowledged bytes are all gone, and returns the final
// report with phase Drained. The gate then stays armed, even after the
// process exits, until Resume or (for the gates tied to it) until the
// listener closes.
//
// If the drain fails, times out or ctx is cancelled, the gate is rolled
// back unless opts.KeepGate; the error says what was left.
func Drain(ctx context.Context, t Target, opts Options) (Report, error) {
	if err := opts.validate(); err != nil {
		return Report{}, err
	}
	e, done, err := newEngine(t, opts)
	if err != nil {
		return Report{}, err
	}
	defer done()
	return e.run(ctx)
}

// DefaultIdle is how long an accepted connection must have received no
// data to count as idle.
const DefaultIdle = time.Second

// DefaultStall is how long an accept queue may stand still before a drain
// warns that no worker is accepting.
const DefaultStall = 5 * time.Second

func (o *Options) validate() error {
	if o.Backend == "" {
		o.Backend = "auto"
	}
	if o.Stall == 0 {
		o.Stall = DefaultStall
	}
	if o.Idle == 0 {
		o.Idle = DefaultIdle
	}
	switch {
	case o.Idle < 0:
		return invalidf("idle %s: want a positive duration", o.Idle)
	case o.StopSignal != 0 && unix.SignalName(o.StopSignal) == "":
		return invalidf("stop signal %d: not a signal", int(o.StopSignal))
	case o.Timeout < 0:
		return invalidf("timeout %s: want a positive duration", o.Timeout)
	case o.Stall < 0:
		return invalidf("stall %s: want a positive duration", o.Stall)
	case o.PID < 0:
		return invalidf("pid %d: want a process id", o.PID)
	}
	return nil
}
