package sockdrain

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// fakeClock advances only when the engine sleeps, and records each sleep.
// A frozen clock never wakes the engine.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
	frozen bool
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.sleeps = append(c.sleeps, d)
	ch := make(chan time.Time, 1)
	if !c.frozen {
		c.now = c.now.Add(d)
		ch <- c.now
	}
	return ch
}

// fakeWatcher replays a script of counts, repeating the last.
type fakeWatcher struct {
	script []Counts
	polls  int
	err    error // returned once the script is done, if set; ErrNoListener only until the drain follows
	onPoll func(n int)
	// pending is what every poll returns as pending; a default if nil.
	pending []observe.Socket
	// follows records, per poll, whether the engine followed closed listeners.
	follows []bool
	// closesOnFollow: once followed, the listener is closed (Sockets 0).
	closesOnFollow bool
}

func (w *fakeWatcher) poll(follow []netip.AddrPort, _ bool) ([]Listener, []observe.Socket, error) {
	w.polls++
	w.follows = append(w.follows, follow != nil)
	if w.onPoll != nil {
		w.onPoll(w.polls)
	}
	if w.err != nil && w.polls > len(w.script) && (follow == nil || !errors.Is(w.err, ErrNoListener)) {
		return nil, nil, w.err
	}
	c := w.script[min(w.polls, len(w.script))-1]
	pending := w.pending
	if pending == nil {
		pending = []observe.Socket{{State: observe.Established, Remote: netip.MustParseAddrPort("127.0.0.1:5000"), Inode: 7, SendQ: 3}}
	}
	sockets := 1
	if follow != nil && w.closesOnFollow {
		sockets = 0
	}
	return []Listener{{Listen: netip.MustParseAddrPort("127.0.0.1:80"), Sockets: sockets, AcceptQueue: c.AcceptQueue,
		SynRecv: c.SynRecv, Established: c.Established, Idle: c.Idle, CloseWait: c.CloseWait, Closing: c.Closing,
		UnackedBytes: c.UnackedBytes}}, pending, nil
}

// fakeGate records what was done to it.
type fakeGate struct {
	armed, closed bool
	arms, disarms int
	armErr        error
}

func (g *fakeGate) Arm() error {
	if g.armErr != nil {
		return g.armErr
	}
	g.arms++
	g.armed = true
	return nil
}
func (g *fakeGate) Disarm() error        { g.disarms++; g.armed = false; return nil }
func (g *fakeGate) Armed() (bool, error) { return g.armed, nil }
func (g *fakeGate) Close() error         { g.closed = true; return nil }

func newTestEngine(w *fakeWatcher, g *fakeGate, opts Options) (*engine, *[]Report) {
	var reps []Report
	opts.OnReport = func(r Report) { reps = append(reps, r) }
	if opts.Stall == 0 {
		opts.Stall = 5 * time.Second
	}
	gs := gates{g}
	return &engine{opts: opts, watch: w, gates: gs, backend: "fake", reason: "test",
		release: func() { gs.close() }, rollback: gs.disarm,
		clock: &fakeClock{now: time.Unix(1e9, 0)}}, &reps
}

func phasesOf(reps []Report) []Phase {
	var ps []Phase
	for _, r := range reps {
		if r.Event == EventPhase {
			ps = append(ps, r.Phase)
		}
	}
	return ps
}

func TestEnginePassesEveryPhaseInOrder(t *testing.T) {
	w := &fakeWatcher{script: []Counts{
		{AcceptQueue: 5, SynRecv: 1, Established: 3},
		{AcceptQueue: 2, Established: 6},
		{Established: 2, CloseWait: 1},
		{Closing: 2, UnackedBytes: 900},
		{Closing: 1},
		{},
	}}
	g := &fakeGate{}
	e, reps := newTestEngine(w, g, Options{Timeout: time.Minute})
	rep, err := e.run(t.Context())
	if err != nil || rep.Phase != Drained {
		t.Fatalf("run = %+v, %v; want drained", rep, err)
	}
	want := []Phase{Gated, BacklogEmpty, ConnectionsClosed, Flushed, Drained}
	if got := phasesOf(*reps); !slices.Equal(got, want) {
		t.Errorf("phases %v, want %v", got, want)
	}
	if !g.armed || g.disarms != 0 || !g.closed {
		t.Errorf("gate after drain: armed %v, %d disarms, closed %v; want armed, never disarmed, handles released",
			g.armed, g.disarms, g.closed)
	}
	if w.polls != 6 {
		t.Errorf("%d polls, want 6", w.polls)
	}
}

func TestEngineDrainedAtOnceSkipsNoPhase(t *testing.T) {
	e, reps := newTestEngine(&fakeWatcher{script: []Counts{{}}}, &fakeGate{}, Options{})
	if _, err := e.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []Phase{Gated, BacklogEmpty, ConnectionsClosed, Flushed, Drained}
	if got := phasesOf(*reps); !slices.Equal(got, want) {
		t.Errorf("phases %v, want %v", got, want)
	}
}

func TestEngineNeverGoesBack(t *testing.T) {
	w := &fakeWatcher{script: []Counts{{Established: 1}, {SynRecv: 1, Established: 1}, {}}}
	e, reps := newTestEngine(w, &fakeGate{}, Options{})
	if _, err := e.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []Phase{Gated, BacklogEmpty, ConnectionsClosed, Flushed, Drained}
	if got := phasesOf(*reps); !slices.Equal(got, want) {
		t.Errorf("phases %v, want %v", got, want)
	}
}

func TestEngineTimeoutRollsBackAndListsWhatRemains(t *testing.T) {
	g := &fakeGate{}
	e, reps := newTestEngine(&fakeWatcher{script: []Counts{{Established: 1}}}, g, Options{Timeout: 2 * time.Second})
	rep, err := e.run(t.Context())
	if !errors.Is(err, ErrTimeout) || rep.Phase != TimedOut {
		t.Fatalf("run = %+v, %v; want ErrTimeout", rep, err)
	}
	if got := err.Error(); got != "drain timed out after 2s: wait for established=0 (1 left)" {
		t.Errorf("error %q", got)
	}
	if len(rep.Remaining) != 1 || rep.Remaining[0].Peer != "127.0.0.1:5000" || rep.Remaining[0].State != "ESTABLISHED" {
		t.Errorf("remaining = %+v", rep.Remaining)
	}
	if last := (*reps)[len(*reps)-1]; last.Phase != TimedOut {
		t.Errorf("last report %+v, want the timeout", last)
	}
	if g.armed || g.disarms != 1 {
		t.Errorf("gate after timeout: armed %v, %d disarms; want rolled back once", g.armed, g.disarms)
	}
	if el := time.Duration(rep.Elapsed); el != 2*time.Second {
		t.Errorf("timed out after %s, want exactly 2s of clock", el)
	}
}

func TestEngineKeepGateOnTimeout(t *testing.T) {
	g := &fakeGate{}
	e, _ := newTestEngine(&fakeWatcher{script: []Counts{{AcceptQueue: 1}}}, g, Options{Timeout: time.Second, KeepGate: true})
	if _, err := e.run(t.Context()); !errors.Is(err, ErrTimeout) {
		t.Fatal(err)
	}
	if !g.armed || g.disarms != 0 {
		t.Errorf("KeepGate: armed %v, %d disarms", g.armed, g.disarms)
	}
}

func TestEngineCancelRollsBack(t *testing.T) {
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("interrupt")
	w := &fakeWatcher{script: []Counts{{Established: 1}}, onPoll: func(n int) {
		if n == 3 {
			cancel(cause)
		}
	}}
	g := &fakeGate{}
	e, _ := newTestEngine(w, g, Options{})
	if _, err := e.run(ctx); !errors.Is(err, cause) {
		t.Fatalf("run error %v, want the cancel cause", err)
	}
	if g.armed || w.polls != 3 {
		t.Errorf("after cancel: armed %v after %d polls; want rolled back after 3", g.armed, w.polls)
	}
}

func TestEngineWarnsOnStall(t *testing.T) {
	w := &fakeWatcher{script: []Counts{{AcceptQueue: 4}}}
	e, reps := newTestEngine(w, &fakeGate{}, Options{Timeout: 30 * time.Second, Stall: 5 * time.Second})
	e.run(t.Context())
	var warnings []Report
	for _, r := range *reps {
		if r.Event == EventWarning {
			warnings = append(warnings, r)
		}
	}
	if len(warnings) != 1 {
		t.Fatalf("%d warnings, want one stall warning: %+v", len(warnings), warnings)
	}
	if at := time.Duration(warnings[0].Elapsed); at < 5*time.Second || at > 5*time.Second+maxPoll {
		t.Errorf("stall warned at %s, want at 5s", at)
	}
}

func TestEngineNoStallWhileQueueShrinks(t *testing.T) {
	var script []Counts
	for q := 200; q > 0; q-- {
		script = append(script, Counts{AcceptQueue: q}, Counts{AcceptQueue: q})
	}
	e, reps := newTestEngine(&fakeWatcher{script: append(script, Counts{})}, &fakeGate{}, Options{Stall: 50 * time.Millisecond})
	if _, err := e.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, r := range *reps {
		if r.Event == EventWarning {
			t.Errorf("warned while the queue shrank: %+v", r)
		}
	}
}

func TestEngineListenerClosed(t *testing.T) {
	g := &fakeGate{}
	w := &fakeWatcher{script: []Counts{{AcceptQueue: 3}}, err: ErrNoListener}
	e, _ := newTestEngine(w, g, Options{})
	_, err := e.run(t.Context())
	if !errors.Is(err, ErrListenerClosed) || errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v, want ErrListenerClosed (not bad input)", err)
	}
	if g.armed {
		t.Error("gate left armed after the listener closed")
	}
}

func TestEngineArmFailureChangesNothing(t *testing.T) {
	g := &fakeGate{armErr: errors.New("boom")}
	w := &fakeWatcher{script: []Counts{{}}}
	e, reps := newTestEngine(w, g, Options{})
	if _, err := e.run(t.Context()); err == nil {
		t.Fatal("run succeeded with a failing gate")
	}
	if w.polls != 0 || len(*reps) != 0 {
		t.Errorf("after a failed arm: %d polls, %d reports; want none", w.polls, len(*reps))
	}
}

// TestEngineArmErrorsSayWhoIsAtFault: an arm that fails for the kernel is
// ErrNotSupported (exit 4), for the listener ErrInvalid (exit 2), as an
// open's failure is; a drain that skips the full probe still exits so.
func TestEngineArmErrorsSayWhoIsAtFault(t *testing.T) {
	for _, tc := range []struct {
		cause error
		want  error
	}{
		{fmt.Errorf("load: %w", gate.ErrNotSupported), ErrNotSupported},
		{fmt.Errorf("group runs another program: %w", gate.ErrNotEligible), ErrInvalid},
	} {
		e, _ := newTestEngine(&fakeWatcher{script: []Counts{{}}}, &fakeGate{armErr: tc.cause}, Options{})
		if _, err := e.run(t.Context()); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "arm") {
			t.Errorf("arm failing with %v: run = %v; want %v, saying it was the arm", tc.cause, err, tc.want)
		}
	}
}

func TestEngineVerifyFailureRollsBack(t *testing.T) {
	g := &fakeGate{}
	e, _ := newTestEngine(&fakeWatcher{script: []Counts{{}}}, g, Options{})
	e.verify = func() error { return errors.New("probe connection was accepted") }
	if _, err := e.run(t.Context()); err == nil {
		t.Fatal("run succeeded though verification failed")
	}
	if g.armed || g.disarms != 1 {
		t.Errorf("armed %v, %d disarms; want rolled back", g.armed, g.disarms)
	}
}

// Connections falling idle are reported, but only other changes make the
// engine poll fast again.
func TestMovedIgnoresOnlyIdle(t *testing.T) {
	last := Counts{Established: 50, Idle: 10}
	if moved(Counts{Established: 50, Idle: 30}, last) {
		t.Error("a change of the idle count alone counts as movement")
	}
	for _, c := range []Counts{{Established: 49, Idle: 10}, {Established: 50, Idle: 10, AcceptQueue: 1},
		{Established: 50, Idle: 10, CloseWait: 1}, {Established: 50, Idle: 10, UnackedBytes: 1}} {
		if !moved(c, last) {
			t.Errorf("%+v from %+v does not count as movement", c, last)
		}
	}
}
