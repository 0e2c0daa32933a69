package sockdrain

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// fakeServers stands for the processes that held the listener.
type fakeServers struct{ gone bool }

func (s fakeServers) exited(time.Duration) bool { return s.gone }
func (fakeServers) signal(syscall.Signal) error { return nil }
func (fakeServers) Close() error                { return nil }

func TestEngineTellsServerExitFromListenerClose(t *testing.T) {
	for _, tc := range []struct {
		servers     servers
		want, wrong error
	}{
		{fakeServers{gone: true}, ErrServerExited, ErrListenerClosed},
		{fakeServers{gone: false}, ErrListenerClosed, ErrServerExited},
		{nil, ErrListenerClosed, ErrServerExited}, // nobody known to watch
	} {
		g := &fakeGate{}
		e, reps := newTestEngine(&fakeWatcher{script: []Counts{{AcceptQueue: 3}}, err: ErrNoListener}, g, Options{})
		e.servers = tc.servers
		_, err := e.run(t.Context())
		if !errors.Is(err, tc.want) || errors.Is(err, tc.wrong) {
			t.Errorf("servers %v: error %v, want %v only", tc.servers, err, tc.want)
		}
		if last := (*reps)[len(*reps)-1]; last.Event != EventWarning || last.AcceptQueue != 3 {
			t.Errorf("servers %v: last report %+v, want a warning with the last counts", tc.servers, last)
		}
		if g.armed {
			t.Errorf("servers %v: gate left armed", tc.servers)
		}
	}
}

// A drain that joined a gate armed before it began leaves it armed,
// whichever way it ends.
func TestEngineJoinedNeverDisarms(t *testing.T) {
	fail := errors.New("probe connection was accepted")
	for name, setup := range map[string]func(*engine){
		"timeout":      func(e *engine) { e.opts.Timeout = time.Second },
		"verify fails": func(e *engine) { e.verify = func() error { return fail } },
		"arm fails":    func(e *engine) { e.gates[0].(*fakeGate).armErr = fail },
	} {
		g := &fakeGate{armed: true}
		e, _ := newTestEngine(&fakeWatcher{script: []Counts{{AcceptQueue: 1}}}, g, Options{})
		e.joined = true
		setup(e)
		if _, err := e.run(t.Context()); err == nil {
			t.Fatalf("%s: run succeeded", name)
		}
		if !g.armed || g.disarms != 0 {
			t.Errorf("%s: armed %v after %d disarms; want the joined gate left armed", name, g.armed, g.disarms)
		}
	}
}
