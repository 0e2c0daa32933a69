package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sockdrain/sockdrain"
	"golang.org/x/sys/unix"
)

// tick is how often the live line redraws its clock between reports.
const tick = 200 * time.Millisecond

// drainOutput shows a drain's reports: JSON lines; or phases and warnings
// as lines, with, on a terminal, one live line below them rewritten in
// place: the clock against the timeout, the phase, the counts, and what
// the drain waits for.
type drainOutput struct {
	w       io.Writer
	json    bool
	tty     bool
	timeout time.Duration

	mu      sync.Mutex
	last    *sockdrain.Report // shown on the live line
	shownAt time.Time         // when last arrived
	live    bool              // a live line is on screen
	stop    chan struct{}     // ends the ticker
}

func newDrainOutput(e env, asJSON bool) *drainOutput {
	return &drainOutput{w: e.stdout, json: asJSON, tty: e.tty}
}

func (o *drainOutput) report(r sockdrain.Report) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.json:
		b, _ := json.Marshal(r)
		fmt.Fprintf(o.w, "%s\n", b)
		return
	case r.Event != sockdrain.EventProgress || r.Message != "":
		o.clear()
		fmt.Fprintln(o.w, eventLine(r))
	}
	if !o.tty || r.Phase == sockdrain.Drained || r.Phase == sockdrain.TimedOut {
		return
	}
	o.last, o.shownAt = &r, time.Now()
	o.draw()
	if o.stop == nil {
		o.stop = make(chan struct{})
		go o.ticker(o.stop)
	}
}

// ticker redraws the live line so its clock moves while the counts stand.
func (o *drainOutput) ticker(stop <-chan struct{}) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			o.mu.Lock()
			o.draw()
			o.mu.Unlock()
		}
	}
}

// draw writes the live line over the one on screen.
func (o *drainOutput) draw() {
	if o.last == nil {
		return
	}
	r := *o.last
	r.Elapsed += sockdrain.Duration(time.Since(o.shownAt))
	fmt.Fprintf(o.w, "\r\033[K%s", fit(liveLine(r, o.timeout), terminalWidth()))
	o.live = true
}

// clear removes the live line, so a permanent line can take its place.
func (o *drainOutput) clear() {
	if o.live {
		fmt.Fprint(o.w, "\r\033[K")
		o.live = false
	}
}

// end stops the live line and leaves the screen with permanent lines only.
func (o *drainOutput) end() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stop != nil {
		close(o.stop)
		o.stop = nil
	}
	o.clear()
	o.last = nil
}

// liveLine is one line: clock, phase, counts, and what the drain waits for.
func liveLine(r sockdrain.Report, timeout time.Duration) string {
	clock := fmt.Sprintf("%5.1fs", time.Duration(r.Elapsed).Seconds())
	if timeout > 0 {
		clock += fmt.Sprintf(" of %s", timeout)
	}
	s := fmt.Sprintf("%s  %-18s queue %d  syn %d  established %d", clock, phaseName(r), r.AcceptQueue, r.SynRecv, r.Established)
	if r.Idle > 0 {
		s += fmt.Sprintf(" (%d idle)", r.Idle)
	}
	s += fmt.Sprintf("  close_wait %d  closing %d  unacked %dB", r.CloseWait, r.Closing, r.UnackedBytes)
	if r.ClosedIdle > 0 {
		s += fmt.Sprintf("  closed idle %d", r.ClosedIdle)
	}
	if r.Waiting != "" {
		s += "  · waiting for " + r.Waiting
	}
	return s
}

func phaseName(r sockdrain.Report) string {
	if r.Stopping && r.Phase != sockdrain.Drained {
		return string(r.Phase) + "+stop"
	}
	return string(r.Phase)
}

// fit cuts s to width columns.
func fit(s string, width int) string {
	if r := []rune(s); len(r) > width {
		return string(r[:width-1]) + "…"
	}
	return s
}

// terminalWidth is stdout's width, or 120 where it cannot tell.
func terminalWidth() int {
	ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col < 40 {
		return 120
	}
	return int(ws.Col)
}

func eventLine(r sockdrain.Report) string {
	s := fmt.Sprintf("%7.3fs %s", time.Duration(r.Elapsed).Seconds(), r.Phase)
	switch {
	case r.Event == sockdrain.EventWarning:
		s = fmt.Sprintf("%7.3fs warning", time.Duration(r.Elapsed).Seconds())
	case r.Event == sockdrain.EventProgress:
		s = fmt.Sprintf("%7.3fs %s", time.Duration(r.Elapsed).Seconds(), phaseName(r))
	}
	if r.Message != "" {
		s += ": " + r.Message
	}
	if r.Phase == sockdrain.Drained && r.ClosedIdle > 0 {
		s += fmt.Sprintf(" (closed %d idle connections)", r.ClosedIdle)
	}
	if r.Phase == sockdrain.TimedOut && r.Waiting == "" && len(r.Remaining) > 0 {
		s += fmt.Sprintf(": %d connections left", len(r.Remaining))
	}
	for _, c := range r.Remaining {
		s += "\n  left: " + connLine(c)
	}
	return s
}

// connLine describes a connection a timed-out drain left.
func connLine(c sockdrain.Conn) string {
	s := fmt.Sprintf("%s %s", c.Peer, c.State)
	switch {
	case c.Idle:
		s += fmt.Sprintf(" idle %.1fs", time.Duration(c.SinceRecv).Seconds())
	case c.SinceRecv > 0:
		s += fmt.Sprintf(" busy (last data %.1fs ago)", time.Duration(c.SinceRecv).Seconds())
	}
	return s + fmt.Sprintf(" unacked=%d", c.Unacked)
}
