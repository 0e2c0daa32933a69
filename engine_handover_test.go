package sockdrain

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// idleConn is an accepted connection at rest for 3s, from peer.
func idleConn(peer string) observe.Socket {
	return observe.Socket{State: observe.Established, Remote: netip.MustParseAddrPort(peer), Inode: 9,
		Activity: true, SinceRecv: 3 * time.Second, SinceSent: 3 * time.Second}
}

// Flushed is reached on its own when every data byte is acknowledged but
// a FIN is not yet: a report says so before the drain ends.
func TestEngineFlushedIsAPhaseOfItsOwn(t *testing.T) {
	w := &fakeWatcher{script: []Counts{{Closing: 2, UnackedBytes: 900}, {Closing: 1}, {Closing: 1}, {}}}
	e, reps := newTestEngine(w, &fakeGate{}, Options{})
	if _, err := e.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	var flushed, drained int = -1, -1
	for i, r := range *reps {
		if r.Event == EventPhase && r.Phase == Flushed {
			flushed = i
			if r.Closing != 1 || r.UnackedBytes != 0 || !strings.Contains(r.Waiting, "FIN") {
				t.Errorf("flushed report %+v, want 1 closing socket, no unacked bytes, waiting for its FIN", r)
			}
		}
		if r.Phase == Drained {
			drained = i
		}
	}
	if flushed < 0 || drained < 0 || (*reps)[flushed].Time.Equal((*reps)[drained].Time) {
		t.Errorf("flushed at report %d, drained at %d: want flushed reported alone, earlier", flushed, drained)
	}
}

// A stop runs once, when the backlog is empty; the drain then follows the
// closed listener's connections and ends drained, not with an error.
func TestEngineHandsOverAtBacklogEmpty(t *testing.T) {
	w := &fakeWatcher{script: []Counts{
		{AcceptQueue: 3, Established: 5},
		{Established: 6},
		{Established: 2},
		{Closing: 1, UnackedBytes: 10},
		{},
	}, err: ErrNoListener}
	var calls atomic.Int32
	var atPoll int
	opts := Options{Stop: func(context.Context) error {
		calls.Add(1)
		return nil
	}}
	e, reps := newTestEngine(w, &fakeGate{}, opts)
	w.onPoll = func(n int) {
		if calls.Load() > 0 && atPoll == 0 {
			atPoll = n
		}
	}
	rep, err := e.run(t.Context())
	if err != nil || rep.Phase != Drained {
		t.Fatalf("run = %+v, %v; want drained", rep, err)
	}
	if calls.Load() != 1 {
		t.Errorf("stop called %d times, want once", calls.Load())
	}
	if atPoll < 3 {
		t.Errorf("stop seen by poll %d; want it after poll 2, the first with an empty backlog", atPoll)
	}
	if !slices.Equal(w.follows[:2], []bool{false, false}) || !w.follows[len(w.follows)-1] {
		t.Errorf("follow per poll %v: want none before the stop, and following after", w.follows)
	}
	if !rep.Stopping || !strings.Contains(rep.Message, "server stopped") {
		t.Errorf("final report %+v, want one that says the server stopped", rep)
	}
	for _, r := range *reps {
		if r.Phase == Gated && r.Stopping {
			t.Errorf("stopping while gated: %+v", r)
		}
	}
}

// A drain with a stop is not drained before the stop returns, even when
// nothing is left on the port.
func TestEngineWaitsForTheStopToReturn(t *testing.T) {
	release := make(chan struct{})
	w := &fakeWatcher{script: []Counts{{}}}
	w.onPoll = func(n int) {
		if n == 5 {
			close(release)
		}
	}
	e, _ := newTestEngine(w, &fakeGate{}, Options{Stop: func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	rep, err := e.run(t.Context())
	if err != nil || rep.Phase != Drained {
		t.Fatalf("run = %+v, %v; want drained", rep, err)
	}
	if w.polls < 5 {
		t.Errorf("drained after %d polls, before the stop returned (poll 5)", w.polls)
	}
}

func TestEngineStopFailureIsErrStop(t *testing.T) {
	g := &fakeGate{}
	w := &fakeWatcher{script: []Counts{{Established: 1}}}
	e, _ := newTestEngine(w, g, Options{Stop: func(context.Context) error { return errors.New("exit status 3") }})
	_, err := e.run(t.Context())
	if !errors.Is(err, ErrStop) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("error %v, want ErrStop with the stop's reason", err)
	}
	if g.armed || g.disarms != 1 {
		t.Errorf("gate: armed %v after %d disarms; want rolled back", g.armed, g.disarms)
	}
}

// A timeout while the stop runs cancels it.
func TestEngineTimeoutCancelsTheStop(t *testing.T) {
	cancelled := make(chan struct{})
	w := &fakeWatcher{script: []Counts{{Established: 1}}}
	e, _ := newTestEngine(w, &fakeGate{}, Options{Timeout: time.Second, Stop: func(ctx context.Context) error {
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	}})
	if _, err := e.run(t.Context()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("error %v, want ErrTimeout", err)
	}
	select {
	case <-cancelled:
	default:
		t.Error("the stop was still running after the drain returned")
	}
}

// recordingServers records the signals sent to the server.
type recordingServers struct {
	fakeServers
	sent []syscall.Signal
}

func (s *recordingServers) signal(sig syscall.Signal) error { s.sent = append(s.sent, sig); return nil }

func TestEngineSendsStopSignal(t *testing.T) {
	srv := &recordingServers{}
	w := &fakeWatcher{script: []Counts{{AcceptQueue: 1}, {Established: 1}, {}}, err: ErrNoListener}
	e, _ := newTestEngine(w, &fakeGate{}, Options{StopSignal: syscall.SIGQUIT})
	e.servers = srv
	if _, err := e.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(srv.sent, []syscall.Signal{syscall.SIGQUIT}) {
		t.Errorf("signals sent %v, want one SIGQUIT", srv.sent)
	}
}

// fakeCloser closes whatever it is given.
type fakeCloser struct{ given []observe.Socket }

func (c *fakeCloser) closeIdle(conns []observe.Socket, _ time.Duration) (int, int, error) {
	c.given = append(c.given, conns...)
	return len(conns), 0, nil
}

// The drain closes only the idle connections, and counts them.
func TestEngineClosesOnlyIdleConnections(t *testing.T) {
	busy := observe.Socket{State: observe.Established, Remote: netip.MustParseAddrPort("127.0.0.1:6000"), Inode: 8,
		Activity: true, SinceRecv: 10 * time.Millisecond}
	w := &fakeWatcher{script: []Counts{{Established: 2, Idle: 1}, {Established: 1}, {}},
		pending: []observe.Socket{idleConn("127.0.0.1:5000"), busy}}
	c := &fakeCloser{}
	e, _ := newTestEngine(w, &fakeGate{}, Options{CloseIdle: true, Idle: time.Second})
	e.closer = c
	rep, err := e.run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.given) != 1 || c.given[0].Remote.Port() != 5000 {
		t.Errorf("closed %+v, want only the idle connection", c.given)
	}
	if rep.ClosedIdle != 1 {
		t.Errorf("final report counts %d closed, want 1", rep.ClosedIdle)
	}
}

// A plain drain left with idle connections says so once, naming peers and
// what ends them, and its timeout calls them idle.
func TestEngineSaysWhenOnlyIdleConnectionsAreLeft(t *testing.T) {
	w := &fakeWatcher{script: []Counts{{Established: 2, Idle: 2}},
		pending: []observe.Socket{idleConn("10.0.0.2:5000"), idleConn("10.0.0.2:5001")}}
	e, reps := newTestEngine(w, &fakeGate{}, Options{Timeout: 3 * time.Second, Idle: time.Second})
	rep, err := e.run(t.Context())
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "all idle") {
		t.Fatalf("error %v, want a timeout that calls the connections idle", err)
	}
	var notes []string
	for _, r := range *reps {
		if r.Event == EventWarning {
			notes = append(notes, r.Message)
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "2, from 10.0.0.2 (2)") || !strings.Contains(notes[0], "--close-idle") {
		t.Errorf("warnings %q, want one naming 2 idle connections from 10.0.0.2 and what ends them", notes)
	}
	if len(rep.Remaining) != 2 || !rep.Remaining[0].Idle || time.Duration(rep.Remaining[0].SinceRecv) != 3*time.Second {
		t.Errorf("remaining %+v, want both idle for 3s", rep.Remaining)
	}
}

// After a stop that closed the listener, the drain removes its gate: no
// pin or rule outlives the server. A listener still open keeps it.
func TestEngineRemovesTheGateOfAStoppedServer(t *testing.T) {
	for _, closes := range []bool{true, false} {
		g := &fakeGate{}
		w := &fakeWatcher{script: []Counts{{Established: 1}, {}}, closesOnFollow: closes}
		e, _ := newTestEngine(w, g, Options{Stop: func(context.Context) error { return nil }})
		rep, err := e.run(t.Context())
		if err != nil || rep.Phase != Drained {
			t.Fatalf("closes %v: run = %+v, %v", closes, rep, err)
		}
		if g.armed == closes {
			t.Errorf("listener closed %v: gate armed %v (%s)", closes, g.armed, rep.Message)
		}
	}
}
