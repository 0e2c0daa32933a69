// Package stoploss counts what a loaded server's clients lose when the
// server stops: one stop at a time, from the moment the stop begins. Both
// `sockdrain demo` and the bench's loss table count this way.
package stoploss

import (
	"context"
	"errors"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
)

// Measure marks load, runs stop, lets the clients keep knocking on the
// stopped port for after, then ends the load and returns its result. The
// result's SinceMark and Samples hold the attempts that ended at or after
// the mark: those in flight when the stop began or started later, the only
// ones a stop can touch. A nil stop measures the load alone, as a control.
func Measure(load *loadgen.Load, stop func() error, after time.Duration) (loadgen.Result, error) {
	load.Mark()
	var err error
	if stop != nil {
		err = stop()
	}
	time.Sleep(after)
	load.Stop()
	res, werr := load.Wait()
	return res, errors.Join(err, werr)
}

// DrainThenStop drains t with opts, stops the server with stop, and only
// then opens the gate again with sockdrain.Resume (even when ctx was
// cancelled), so that nothing of the drain outlives the server. The order
// matters: a gate opened before the stop lets the listener queue new
// connections, and the stop resets them. stop runs even when the drain
// fails, so the server is stopped either way; it may be nil when
// opts.Stop hands the server's stop to the drain.
func DrainThenStop(ctx context.Context, t sockdrain.Target, opts sockdrain.Options, stop func() error) (sockdrain.Report, error) {
	r, err := sockdrain.Drain(ctx, t, opts)
	if stop != nil {
		err = errors.Join(err, stop())
	}
	_, rerr := sockdrain.Resume(context.WithoutCancel(ctx), t)
	return r, errors.Join(err, rerr)
}

// Tally sums the stops of one way of stopping a server.
type Tally struct {
	// Stops is the number of stops added.
	Stops int `json:"stops"`
	// StopsWithLosses counts the stops with at least one bad outcome
	// (loadgen.Counts.Bad).
	StopsWithLosses int `json:"stops_with_losses"`
	// Counts sums the stops' outcomes.
	Counts loadgen.Counts `json:"counts"`
}

// Add counts one stop's outcomes.
func (t *Tally) Add(c loadgen.Counts) {
	t.Stops++
	if c.Bad() > 0 {
		t.StopsWithLosses++
	}
	t.Counts = add(t.Counts, c)
}

// Lost is the number of bad outcomes over all the stops.
func (t Tally) Lost() int64 { return t.Counts.Bad() }

func add(a, b loadgen.Counts) loadgen.Counts {
	return loadgen.Counts{
		Complete:            a.Complete + b.Complete,
		Refused:             a.Refused + b.Refused,
		ResetBeforeResponse: a.ResetBeforeResponse + b.ResetBeforeResponse,
		ResetMidResponse:    a.ResetMidResponse + b.ResetMidResponse,
		Timeout:             a.Timeout + b.Timeout,
		Partial:             a.Partial + b.Partial,
		Other:               a.Other + b.Other,
	}
}
