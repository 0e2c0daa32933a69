package sockdrain

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// A drain ends the connections its server accepted in one of three ways:
// their clients close them; the drain hands over to the server's own stop
// (Options.Stop, Options.StopSignal); or it closes the idle ones itself
// (Options.CloseIdle), for a server that stays up.

// handsOver reports whether the drain hands over to the server's stop.
func (e *engine) handsOver() bool {
	return e.opts.Stop != nil || e.opts.StopSignal != 0
}

// startStop runs the server's stop, once the backlog is empty, and from
// then on follows the listeners' addresses after they close.
func (e *engine) startStop(ctx context.Context, c Counts) {
	e.follow = slices.Clone(e.listens)
	ctx, e.cancelStop = context.WithCancel(ctx)
	done := make(chan error, 1)
	e.stopDone = done
	sig, stop, srv := e.opts.StopSignal, e.opts.Stop, e.servers
	go func() {
		if sig != 0 {
			if srv == nil {
				done <- fmt.Errorf("send %v: the server's processes are unknown", sig)
				return
			}
			if err := srv.signal(sig); err != nil {
				done <- err
				return
			}
		}
		if stop != nil {
			done <- stop(ctx)
			return
		}
		done <- nil
	}()
	e.emit(EventProgress, c, fmt.Sprintf("the backlog is empty: handing over to the server's stop; following %d connections", c.Established+c.CloseWait))
}

// endStop cancels a stop still running when the drain ends, and waits for
// it to return.
func (e *engine) endStop() {
	if e.cancelStop == nil {
		return
	}
	e.cancelStop()
	if e.stopDone != nil {
		<-e.stopDone
		e.stopDone = nil
	}
}

// closeIdle ends the idle connections among pending, with Options.CloseIdle.
func (e *engine) closeIdle(c Counts, pending []observe.Socket) error {
	if e.closer == nil || c.Idle == 0 {
		return nil
	}
	idle := slices.DeleteFunc(slices.Clone(pending), func(s observe.Socket) bool { return !s.IdleFor(e.opts.Idle) })
	closed, crossed, err := e.closer.closeIdle(idle, e.opts.Idle)
	e.closedIdle += closed
	if crossed > 0 {
		e.emit(EventWarning, c, fmt.Sprintf("%d idle connection(s) received data as they were closed: the server may read it, but cannot answer", crossed))
	}
	if err != nil {
		return fmt.Errorf("close idle connections: %w", err)
	}
	return nil
}

// noteIdle says, once, when only idle connections are left and nothing
// will end them but their clients.
func (e *engine) noteIdle(c Counts, pending []observe.Socket) {
	if e.idleNoted || e.closer != nil || e.handsOver() || c.Established == 0 ||
		c.Idle < c.Established || c.AcceptQueue+c.SynRecv+c.CloseWait > 0 {
		return
	}
	e.idleNoted = true
	e.emit(EventWarning, c, idleNote(pending, e.opts.Idle))
}

// idleNote describes the idle connections among pending: how many, which
// peers hold them, for how long, and what will end them.
func idleNote(pending []observe.Socket, idle time.Duration) string {
	peers := map[string]int{}
	var least, most time.Duration
	n := 0
	for _, s := range pending {
		if !s.IdleFor(idle) {
			continue
		}
		if n == 0 || s.SinceRecv < least {
			least = s.SinceRecv
		}
		most = max(most, s.SinceRecv)
		peers[s.Remote.Addr().String()]++
		n++
	}
	byCount := slices.SortedFunc(maps.Keys(peers), func(a, b string) int {
		return cmp.Or(peers[b]-peers[a], strings.Compare(a, b))
	})
	var list []string
	for i, p := range byCount {
		if i == 3 {
			list = append(list, fmt.Sprintf("%d more", len(byCount)-3))
			break
		}
		list = append(list, fmt.Sprintf("%s (%d)", p, peers[p]))
	}
	return fmt.Sprintf("only idle connections are left: %d, from %s, idle %s to %s. "+
		"Their clients close them when they like (keep-alive); to end them now, hand over to the server's stop (--stop, --stop-signal) or close them (--close-idle)",
		n, strings.Join(list, ", "), least.Round(100*time.Millisecond), most.Round(100*time.Millisecond))
}
