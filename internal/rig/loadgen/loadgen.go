// Package loadgen drives closed-loop HTTP load at a listener and classifies
// every attempt, to show what a server's clients lose when it stops.
//
// Each attempt opens a new TCP connection, sends one HTTP/1.0 GET, reads
// the whole response and closes: a drain is about new connections, so every
// attempt is one. Each attempt ends in exactly one Outcome.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero fields of Config.
const (
	DefaultWorkers        = 16
	DefaultDuration       = 10 * time.Second
	DefaultAttemptTimeout = 2 * time.Second
	DefaultRefusedBackoff = 2 * time.Millisecond
	DefaultSamples        = 8
)

// DialFunc opens a connection, as net.Dialer.DialContext does. The context
// carries the attempt's deadline.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config describes a load. Only Addr is required.
type Config struct {
	// Addr is the server's host:port, with a literal IP.
	Addr string
	// Path is the request path; "/" when empty.
	Path string
	// Workers is the number of concurrent clients; DefaultWorkers when 0.
	Workers int
	// Duration bounds the run; DefaultDuration when 0, unbounded (until
	// the context ends or MaxAttempts) when negative.
	Duration time.Duration
	// MaxAttempts bounds the number of attempts; unbounded when 0.
	MaxAttempts int64
	// AttemptTimeout bounds each attempt, connect and read together;
	// DefaultAttemptTimeout when 0.
	AttemptTimeout time.Duration
	// Rate caps new connections per second across all workers; 0 means
	// as fast as the workers go.
	Rate float64
	// RefusedBackoff is how long a worker pauses after a refused attempt,
	// so a refusing port does not burn the CPU; DefaultRefusedBackoff
	// when 0, no pause when negative.
	RefusedBackoff time.Duration
	// KeepAlive makes each worker an HTTP/1.1 client that keeps its
	// connection for the next request, as browsers and proxies do, until
	// the server closes it. An attempt is then one request. A request that
	// fails on a reused connection before any response byte is sent once
	// more on a new connection, as HTTP clients do with idempotent
	// requests (RFC 9112, section 9.3.1): the server may have closed the
	// idle connection as the request left.
	KeepAlive bool
	// Pause is how long a worker waits after each attempt, on average:
	// each wait is drawn uniformly from [Pause/2, 3*Pause/2], so workers do
	// not move in step. None when 0.
	Pause time.Duration
	// CheckBody makes a body that differs from BodyByte's pattern an
	// Other outcome.
	CheckBody bool
	// Samples is how many bad outcomes to keep details of;
	// DefaultSamples when 0, none when negative.
	Samples int
	// Dial opens each connection; a net.Dialer without MPTCP and
	// keep-alives when nil.
	Dial DialFunc
	// Do, when set, runs each worker's whole loop, so it can pin the
	// worker to an OS thread inside a network namespace: pass
	// (*netns.NS).Do and every socket the worker makes belongs to it.
	// Dial set to DialIn does the same without pinned threads, and
	// reaches more connections per second (BenchmarkLoadDemoServer).
	Do func(fn func() error) error
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Duration, DefaultDuration)
	def(&c.AttemptTimeout, DefaultAttemptTimeout)
	def(&c.RefusedBackoff, DefaultRefusedBackoff)
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Samples == 0 {
		c.Samples = DefaultSamples
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.Dial == nil {
		c.Dial = plainDialer().DialContext
	}
	if c.Do == nil {
		c.Do = func(fn func() error) error { return fn() }
	}
	return c
}

func plainDialer() *net.Dialer {
	d := &net.Dialer{KeepAlive: -1}
	d.SetMultipathTCP(false)
	return d
}

func (c Config) validate() error {
	host, _, err := net.SplitHostPort(c.Addr)
	switch {
	case err != nil:
		return fmt.Errorf("check load address %q: %w", c.Addr, err)
	case net.ParseIP(host) == nil:
		return fmt.Errorf("check load address %q: host is not a literal IP", c.Addr)
	case c.Workers < 0, c.MaxAttempts < 0, c.Rate < 0, c.AttemptTimeout < 0, c.Pause < 0:
		return errors.New("check load config: negative workers, attempts, rate, timeout or pause")
	}
	return nil
}

// Load is a running load.
type Load struct {
	cfg   Config
	req   []byte
	start time.Time
	stop  chan struct{}
	pace  *pacer

	started      atomic.Int64
	running      atomic.Int32
	counts       [numOutcomes]atomic.Int64
	sinceMark    [numOutcomes]atomic.Int64 // attempts that ended at or after mark
	mark         atomic.Int64              // ns since start
	firstRefused atomic.Int64              // ns since start, -1 until one after mark

	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []Sample
	errs    []error
	end     time.Time
}

// Start starts the workers and returns at once. The load stops starting
// attempts when ctx ends, Duration passes or MaxAttempts have started;
// attempts in flight then finish, each within AttemptTimeout.
func Start(ctx context.Context, cfg Config) (*Load, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l := &Load{
		cfg:   cfg,
		req:   request(cfg.Addr, cfg.Path, cfg.KeepAlive),
		start: time.Now(),
		stop:  make(chan struct{}),
		pace:  newPacer(cfg.Rate),
	}
	l.firstRefused.Store(-1)
	go l.watch(ctx)
	l.wg.Add(cfg.Workers)
	l.running.Store(int32(cfg.Workers))
	for range cfg.Workers {
		go l.runWorker()
	}
	return l, nil
}

// Run runs a load to its end and returns its result.
func Run(ctx context.Context, cfg Config) (Result, error) {
	l, err := Start(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	return l.Wait()
}

// watch closes l.stop when ctx ends or the duration passes.
func (l *Load) watch(ctx context.Context) {
	var timeout <-chan time.Time
	if l.cfg.Duration > 0 {
		t := time.NewTimer(l.cfg.Duration)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
	case <-timeout:
	case <-l.stop:
		return
	}
	l.Stop()
}

// Stop asks the workers to start no more attempts. Attempts in flight
// finish. Stop may be called more than once.
func (l *Load) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
}

// Wait waits for every worker to finish and returns the result. The error
// reports a worker that Config.Do could not run.
func (l *Load) Wait() (Result, error) {
	l.wg.Wait()
	l.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.end.IsZero() {
		l.end = time.Now()
	}
	return l.result(), errors.Join(l.errs...)
}

// Counts returns the counts so far; safe to call while the load runs.
func (l *Load) Counts() Counts { return load(&l.counts) }

func load(c *[numOutcomes]atomic.Int64) Counts {
	var n [numOutcomes]int64
	for i := range n {
		n[i] = c[i].Load()
	}
	return countsOf(&n)
}

// Mark records now as the point Result.TimeToRefuse is measured from, such
// as the moment a gate was armed, and starts Result.SinceMark and
// Result.Samples afresh. A later Mark replaces an earlier one.
func (l *Load) Mark() {
	l.mu.Lock()
	l.samples = nil
	l.mu.Unlock()
	l.firstRefused.Store(-1)
	for i := range l.sinceMark {
		l.sinceMark[i].Store(0)
	}
	l.mark.Store(int64(time.Since(l.start)))
}

// record counts one finished attempt.
func (l *Load) record(o Outcome, s *Sample) {
	l.counts[o].Add(1)
	at := int64(time.Since(l.start))
	if at < l.mark.Load() {
		return
	}
	l.sinceMark[o].Add(1)
	if o == Refused {
		l.firstRefused.CompareAndSwap(-1, at)
	}
	if s != nil && o != Complete && o != Refused {
		l.keepSample(s)
	}
}

func (l *Load) keepSample(s *Sample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) < l.cfg.Samples {
		s.At = s.start.Sub(l.start)
		s.Took = time.Since(s.start)
		l.samples = append(l.samples, *s)
	}
}

// claim reserves one attempt, or reports that the load is over.
func (l *Load) claim() bool {
	select {
	case <-l.stop:
		return false
	default:
	}
	if l.cfg.MaxAttempts > 0 && l.started.Add(1) > l.cfg.MaxAttempts {
		l.Stop()
		return false
	}
	return true
}
