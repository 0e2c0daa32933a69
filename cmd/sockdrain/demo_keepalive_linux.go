package main

import (
	"context"
	"errors"
	"time"

	"github.com/sockdrain/sockdrain"
)

// The keep-alive part of the demo.
const (
	// keepAlivePause is how long a keep-alive client waits between
	// requests on its connection.
	keepAlivePause = 300 * time.Millisecond
	// keepAliveIdle is how long a connection must have been quiet for the
	// drain to count it idle.
	keepAliveIdle = 100 * time.Millisecond
	// keepAliveWait is how long the demo lets a drain alone wait on
	// keep-alive connections.
	keepAliveWait = 2 * time.Second
)

// demoWait is what a drain alone, without the server's stop, did with
// keep-alive clients: it waited on their connections.
type demoWait struct {
	Gate         string             `json:"gate"`
	Gated        sockdrain.Duration `json:"gated"`
	BacklogEmpty sockdrain.Duration `json:"backlog_empty"`
	// Waited is how long the drain ran; TimedOut is set when it gave up
	// then, with Established connections left, Idle of them idle.
	Waited      sockdrain.Duration `json:"waited"`
	TimedOut    bool               `json:"timed_out"`
	Established int                `json:"established"`
	Idle        int                `json:"idle"`
}

// drainAlone loads a keep-alive server and drains it without stopping it,
// for keepAliveWait at most: the drain waits for clients that do not
// leave. A timeout is the expected result, not an error; the gate is then
// rolled back, and the load and the server end.
func (d *demo) drainAlone(ctx context.Context) (demoWait, error) {
	srv, _, end, err := d.start(ctx, true)
	if err != nil {
		return demoWait{}, err
	}
	defer end()
	var w demoWait
	t := sockdrain.Target{Addr: srv.Addr().Addr(), Port: srv.Addr().Port(), NetNS: d.ns.Path()}
	r, err := sockdrain.Drain(ctx, t, sockdrain.Options{Backend: d.cfg.backend, Timeout: keepAliveWait,
		Idle: keepAliveIdle, OnReport: func(r sockdrain.Report) {
			if r.Event == sockdrain.EventPhase && r.Phase == sockdrain.Gated {
				w.Gated = r.Elapsed
			}
			if r.Event == sockdrain.EventPhase && r.Phase == sockdrain.BacklogEmpty {
				w.BacklogEmpty = r.Elapsed
			}
		}})
	w.Gate, w.Waited, w.Established, w.Idle = r.Backend, r.Elapsed, r.Established, r.Idle
	if errors.Is(err, sockdrain.ErrTimeout) {
		w.TimedOut, err = true, nil
	}
	_, rerr := sockdrain.Resume(context.WithoutCancel(ctx), t) // a drained gate stays armed
	return w, errors.Join(err, rerr)
}
