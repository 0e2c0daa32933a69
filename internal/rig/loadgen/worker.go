package loadgen

import (
	"context"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"
)

// worker is one closed-loop client. Its buffers are reused across attempts.
type worker struct {
	l    *Load
	buf  []byte
	resp response
	conn net.Conn // a keep-alive worker's open connection, if any
}

func (l *Load) runWorker() {
	defer l.workerDone()
	w := &worker{l: l, buf: make([]byte, 16<<10)}
	w.resp.checkBody = l.cfg.CheckBody
	if err := l.cfg.Do(w.loop); err != nil {
		l.mu.Lock()
		l.errs = append(l.errs, err)
		l.mu.Unlock()
	}
}

// workerDone stops the clock when the last worker ends.
func (l *Load) workerDone() {
	if l.running.Add(-1) == 0 {
		l.mu.Lock()
		l.end = time.Now()
		l.mu.Unlock()
	}
	l.wg.Done()
}

func (w *worker) loop() error {
	defer w.hangUp()
	for w.l.pace.wait(w.l.stop) && w.l.claim() {
		var o Outcome
		var s *Sample
		if w.l.cfg.KeepAlive {
			o, s = w.keepAliveAttempt()
		} else {
			o, s = w.attempt()
		}
		w.l.record(o, s)
		if o == Refused && w.l.cfg.RefusedBackoff > 0 {
			w.l.sleep(w.l.cfg.RefusedBackoff)
		}
		if p := w.l.cfg.Pause; p > 0 {
			w.l.sleep(p/2 + rand.N(p))
		}
	}
	return nil
}

// hangUp closes a keep-alive worker's connection.
func (w *worker) hangUp() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// sleep pauses for d, or until the load stops.
func (l *Load) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.stop:
	}
}

// attempt makes one connection and one request, and classifies the end.
// The load's stop does not cut it short: its own deadline bounds it.
func (w *worker) attempt() (Outcome, *Sample) {
	w.resp.reset()
	start := time.Now()
	deadline := start.Add(w.l.cfg.AttemptTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	conn, err := w.l.cfg.Dial(ctx, "tcp", w.l.cfg.Addr)
	if err != nil {
		return w.outcome(start, err, nil)
	}
	defer conn.Close()
	return w.outcome(start, w.exchange(conn, deadline), conn)
}

// keepAliveAttempt sends one request on the worker's connection, dialing
// one when it has none, and keeps the connection unless the server said it
// closes it or the request failed. A request that failed on a reused
// connection before any response byte goes once more on a new one.
func (w *worker) keepAliveAttempt() (Outcome, *Sample) {
	start := time.Now()
	deadline := start.Add(w.l.cfg.AttemptTimeout)
	for retry := true; ; retry = false {
		w.resp.reset()
		reused := w.conn != nil
		if !reused {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			conn, err := w.l.cfg.Dial(ctx, "tcp", w.l.cfg.Addr)
			cancel()
			if err != nil {
				return w.outcome(start, err, nil)
			}
			w.conn = conn
		}
		conn := w.conn
		err := w.exchange(conn, deadline)
		if err != nil || w.resp.close {
			conn.Close() // its addresses stay readable for a Sample
			w.conn = nil
		}
		if err == nil {
			return Complete, nil
		}
		if !(reused && retry && w.resp.n == 0 && !isTimeout(err)) {
			return w.outcome(start, err, conn)
		}
	}
}

// outcome classifies err and, for a bad outcome, describes it.
func (w *worker) outcome(start time.Time, err error, conn net.Conn) (Outcome, *Sample) {
	n := w.resp.n
	o := Classify(err, n)
	if o == Complete || o == Refused {
		return o, nil
	}
	s := &Sample{Outcome: o, Peer: w.l.cfg.Addr, Error: err.Error(), Bytes: n, start: start}
	if conn != nil {
		s.Local = conn.LocalAddr().String()
	}
	return o, s
}

// exchange sends the request and reads the response until the server
// closes, or for a keep-alive client until the response is complete. A
// response already complete stays complete whatever follows.
func (w *worker) exchange(conn net.Conn, deadline time.Time) error {
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := conn.Write(w.l.req); err != nil {
		return err
	}
	for {
		k, err := conn.Read(w.buf)
		if k > 0 {
			if ferr := w.resp.feed(w.buf[:k]); ferr != nil {
				return ferr
			}
			if w.l.cfg.KeepAlive && w.resp.complete() {
				return nil
			}
		}
		if err != nil {
			if w.resp.complete() {
				return nil
			}
			return err
		}
	}
}

// pacer spaces attempts across all workers to a target rate. It hands out
// time slots; a slot never lies in the past, so a late load does not burst.
type pacer struct {
	start    time.Time
	interval int64        // ns between slots
	next     atomic.Int64 // ns since start of the next free slot
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return nil
	}
	return &pacer{start: time.Now(), interval: int64(float64(time.Second) / rate)}
}

// wait blocks until the caller's slot, and reports false if stop closed.
func (p *pacer) wait(stop <-chan struct{}) bool {
	if p == nil {
		return true
	}
	d := p.take(int64(time.Since(p.start)))
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// take reserves the next slot for a caller at now, in ns since start, and
// returns how long until it.
func (p *pacer) take(now int64) time.Duration {
	slot := p.next.Load()
	for !p.next.CompareAndSwap(slot, max(slot, now)+p.interval) {
		slot = p.next.Load()
	}
	return time.Duration(max(slot, now) - now)
}
