package sockdrain

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// notifyingWatcher is a fakeWatcher that also reports destroyed sockets on
// events, or fails to subscribe with err.
type notifyingWatcher struct {
	*fakeWatcher
	events  chan struct{}
	err     error
	stopped bool
}

func (w *notifyingWatcher) destroyed() (<-chan struct{}, func(), error) {
	if w.err != nil {
		return nil, nil, w.err
	}
	return w.events, func() { w.stopped = true }, nil
}

func newNotifyingEngine(w *notifyingWatcher, opts Options) (*engine, *fakeClock) {
	e, _ := newTestEngine(w.fakeWatcher, &fakeGate{}, opts)
	e.watch = w
	return e, e.clock.(*fakeClock)
}

func TestEngineBacksOffFurtherWithEvents(t *testing.T) {
	tests := []struct {
		name   string
		counts Counts
		events bool
		want   time.Duration
	}{
		{"connections, events", Counts{Established: 1}, true, eventPoll},
		{"connections, no events", Counts{Established: 1}, false, maxPoll},
		{"accept queue, events", Counts{AcceptQueue: 1, Established: 1}, true, maxPoll},
		{"syn_recv, events", Counts{SynRecv: 1}, true, maxPoll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &notifyingWatcher{fakeWatcher: &fakeWatcher{script: []Counts{tt.counts}}, events: make(chan struct{})}
			if !tt.events {
				w.err = errors.ErrUnsupported
			}
			e, clk := newNotifyingEngine(w, Options{Timeout: time.Minute})
			if _, err := e.run(t.Context()); !errors.Is(err, ErrTimeout) {
				t.Fatalf("run error %v, want a timeout", err)
			}
			if got := slices.Max(clk.sleeps); got != tt.want {
				t.Errorf("longest wait between polls %s, want %s", got, tt.want)
			}
			if w.stopped != tt.events {
				t.Errorf("subscription stopped %v, want %v", w.stopped, tt.events)
			}
		})
	}
}

func TestEnginePollsOnEvent(t *testing.T) {
	w := &notifyingWatcher{events: make(chan struct{}, 1)}
	w.fakeWatcher = &fakeWatcher{
		script: []Counts{{Established: 2}, {Established: 1}, {}},
		onPoll: func(int) { w.events <- struct{}{} }, // a socket goes after each poll
	}
	e, clk := newNotifyingEngine(w, Options{})
	clk.frozen = true // only the events can wake the engine
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rep, err := e.run(ctx)
	if err != nil || rep.Phase != Drained {
		t.Fatalf("run = %+v, %v; want drained by events alone", rep, err)
	}
	if w.polls != 3 || !w.stopped {
		t.Errorf("%d polls, subscription stopped %v; want 3 polls and stopped", w.polls, w.stopped)
	}
}

func TestEngineEventsEndedFallsBackToPolling(t *testing.T) {
	events := make(chan struct{})
	close(events)
	w := &notifyingWatcher{fakeWatcher: &fakeWatcher{script: []Counts{{Established: 1}}}, events: events}
	e, clk := newNotifyingEngine(w, Options{Timeout: time.Minute})
	if _, err := e.run(t.Context()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("run error %v, want a timeout", err)
	}
	if got := slices.Max(clk.sleeps); got != maxPoll {
		t.Errorf("longest wait between polls %s after the events ended, want %s", got, maxPoll)
	}
}

func TestEngineSubscribeFailureIsNotAnError(t *testing.T) {
	w := &notifyingWatcher{fakeWatcher: &fakeWatcher{script: []Counts{{Established: 1}, {Established: 1}, {}}},
		err: errors.New("join sock_diag group 1: operation not permitted")}
	e, _ := newNotifyingEngine(w, Options{})
	if rep, err := e.run(t.Context()); err != nil || rep.Phase != Drained {
		t.Fatalf("run = %+v, %v; want drained by polling", rep, err)
	}
}
