package sockdrain

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/inetdiag"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

type received struct {
	gone []observe.Socket
	err  error
}

// scriptedReceiver returns one result per Receive, then net.ErrClosed. On
// each call after the first it records whether the previous result was
// signalled, and takes the signal.
type scriptedReceiver struct {
	script    []received
	events    chan struct{}
	calls     int
	signalled []bool
}

func (r *scriptedReceiver) Receive() ([]observe.Socket, error) {
	if r.calls > 0 {
		select {
		case <-r.events:
			r.signalled = append(r.signalled, true)
		default:
			r.signalled = append(r.signalled, false)
		}
	}
	r.calls++
	if r.calls > len(r.script) {
		return nil, net.ErrClosed
	}
	return r.script[r.calls-1].gone, r.script[r.calls-1].err
}

func TestForwardDestroyed(t *testing.T) {
	sock := []observe.Socket{{State: observe.Close, Local: netip.MustParseAddrPort("127.0.0.1:80")}}
	r := &scriptedReceiver{events: make(chan struct{}, 1), script: []received{
		{gone: sock},
		{}, // only other ports' sockets were in the batch
		{err: inetdiag.ErrOverrun},
		{gone: sock},
	}}
	forwardDestroyed(r, r.events)
	if want := []bool{true, false, true, true}; !slices.Equal(r.signalled, want) {
		t.Errorf("signalled %v, want %v", r.signalled, want)
	}
	if _, ok := <-r.events; ok {
		t.Error("events still open after the receiver failed")
	}
	if r.calls != len(r.script)+1 {
		t.Errorf("%d receives, want %d: it must stop at the first real error", r.calls, len(r.script)+1)
	}
}

func TestObserverReportsDestroyedSockets(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	obs, err := NewObserver(Target{Port: port, NetNS: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	events, stop, err := obs.destroyed()
	if err != nil {
		t.Fatal(err)
	}
	c := nstest.Dial(t, ns, ln.Addr().String())
	ln.SetDeadline(time.Now().Add(2 * time.Second))
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	s.Close()
	select {
	case <-events:
	case <-time.After(2 * time.Second):
		t.Fatal("no event within 2s of closing a connection on the port")
	}
	stop()
	for range events { // a late signal may still be buffered
	}
}
