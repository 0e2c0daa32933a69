// Package demoserver is a small HTTP server for `sockdrain demo` and for
// tests: it answers every request with a fixed body after a fixed delay,
// then closes the connection (HTTP/1.0), or with Config.KeepAlive waits
// for the next request on it (HTTP/1.1).
//
// It listens with one socket, or with K SO_REUSEPORT sockets that each have
// their own accept loop, over TCP or MPTCP, IPv4 or IPv6, inside whatever
// network namespace Config.Do puts it in.
package demoserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
)

// Defaults for zero fields of Config.
const (
	DefaultAddr        = "127.0.0.1:0"
	DefaultBodySize    = 1024
	DefaultReadTimeout = 5 * time.Second
	DefaultStopTimeout = 5 * time.Second
)

// ErrStopTimeout reports a Stop that had to cut requests in flight.
var ErrStopTimeout = errors.New("requests still in flight at stop timeout")

// Config describes a server. The zero Config is one plain TCP socket on
// 127.0.0.1 at a port the kernel picks.
type Config struct {
	// Addr is the host:port to listen on, with a literal IP; port 0
	// picks one. Use "[::1]:0" for IPv6. DefaultAddr when empty.
	Addr string
	// Listeners is the number of sockets. More than one implies ReusePort.
	Listeners int
	// ReusePort sets SO_REUSEPORT on every socket before bind.
	ReusePort bool
	// MPTCP asks for Multipath TCP sockets, as Go's net.Listen does by
	// default since Go 1.24. The kernel may give TCP instead: see
	// Server.Protocol.
	MPTCP bool
	// Delay is how long the server waits between reading a request and
	// answering it.
	Delay time.Duration
	// BodySize is the response body's length; DefaultBodySize when 0,
	// empty when negative. The body follows loadgen.BodyByte's pattern.
	BodySize int
	// ReadTimeout bounds reading a request; DefaultReadTimeout when 0.
	ReadTimeout time.Duration
	// KeepAlive answers HTTP/1.1 requests, keeping each connection open
	// for the client's next request until the client closes it, or the
	// server stops. ReadTimeout then also bounds how long a connection may
	// stay idle.
	KeepAlive bool
	// StopTimeout bounds how long Stop waits for requests in flight;
	// DefaultStopTimeout when 0.
	StopTimeout time.Duration
	// Do, when set, runs the code that creates the sockets: pass
	// (*netns.NS).Do to listen inside a network namespace.
	Do func(fn func() error) error
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Listeners <= 0 {
		c.Listeners = 1
	}
	c.ReusePort = c.ReusePort || c.Listeners > 1
	if c.BodySize == 0 {
		c.BodySize = DefaultBodySize
	}
	c.BodySize = max(c.BodySize, 0)
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.Do == nil {
		c.Do = func(fn func() error) error { return fn() }
	}
	return c
}

// Server is a running demo server.
type Server struct {
	cfg       Config
	listeners []*net.TCPListener
	response  []byte        // the response, keeping the connection open
	last      []byte        // the response, closing the connection
	kill      chan struct{} // closed when Stop gives up waiting

	accepts  sync.WaitGroup
	requests sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool // open connections: true while idle between requests
	stopping bool
	stopped  bool
	stopErr  error

	accepted atomic.Int64
	served   atomic.Int64
}

// Stats counts a server's connections.
type Stats struct {
	// Accepted is the number of connections accepted.
	Accepted int64 `json:"accepted"`
	// Served is the number of complete responses written.
	Served int64 `json:"served"`
	// Active is the number of connections open now.
	Active int `json:"active"`
}

// Start listens and starts one accept loop per socket.
func Start(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:   cfg,
		last:  response(cfg.BodySize, false),
		kill:  make(chan struct{}),
		conns: map[net.Conn]bool{},
	}
	s.response = s.last
	if cfg.KeepAlive {
		s.response = response(cfg.BodySize, true)
	}
	if err := cfg.Do(s.listen); err != nil {
		return nil, err
	}
	for _, l := range s.listeners {
		s.accepts.Add(1)
		go s.acceptLoop(l)
	}
	return s, nil
}

// response is the whole response: HTTP/1.1 that keeps the connection open
// when keepAlive, HTTP/1.0 that closes it otherwise.
func response(size int, keepAlive bool) []byte {
	version, conn := "1.0", "close"
	if keepAlive {
		version, conn = "1.1", "keep-alive"
	}
	head := fmt.Appendf(nil, "HTTP/%s 200 OK\r\nContent-Type: application/octet-stream\r\n"+
		"Content-Length: %d\r\nConnection: %s\r\n\r\n", version, size, conn)
	body := make([]byte, size)
	loadgen.FillBody(body)
	return append(head, body...)
}

// Addr is the address every socket listens on.
func (s *Server) Addr() netip.AddrPort {
	return s.listeners[0].Addr().(*net.TCPAddr).AddrPort()
}

// Listeners are the listening sockets, one per accept loop. Closing one
// stops its loop.
func (s *Server) Listeners() []*net.TCPListener { return s.listeners }

// Files returns duplicates of the listening sockets, for code that acts on
// the socket, such as a gate. The caller closes them.
func (s *Server) Files() ([]*os.File, error) {
	var files []*os.File
	for _, l := range s.listeners {
		f, err := l.File()
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("duplicate listener %s: %w", l.Addr(), err)
		}
		files = append(files, f)
	}
	return files, nil
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	active := len(s.conns)
	s.mu.Unlock()
	return Stats{Accepted: s.accepted.Load(), Served: s.served.Load(), Active: active}
}

// Stop closes the listeners, which resets any connection still in their
// accept queues, and closes idle keep-alive connections; then it waits up
// to StopTimeout for requests in flight to be answered, each with
// Connection: close. After that it closes the rest and returns
// ErrStopTimeout. Later calls return the first call's result.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StopTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown stops the server the way net/http's Server.Shutdown does, and
// is what a drain's Options.Stop should call once the accept queues are
// empty: it closes the listeners (resetting whatever they still queue) and
// the idle keep-alive connections, lets each request in flight finish with
// Connection: close, and waits until every connection has closed. If ctx
// ends first it cuts the rest and returns ErrStopTimeout. Later calls
// return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		defer s.mu.Unlock()
		return s.stopErr
	}
	s.stopped = true
	s.mu.Unlock()

	var errs []error
	for _, l := range s.listeners {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close listener %s: %w", l.Addr(), err))
		}
	}
	s.accepts.Wait()
	s.closeIdle()
	errs = append(errs, s.waitRequests(ctx))
	s.mu.Lock()
	s.stopErr = errors.Join(errs...)
	s.mu.Unlock()
	return s.stopErr
}

// closeIdle marks the server stopping and closes the connections idle
// between requests.
func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping = true
	for c, idle := range s.conns {
		if idle {
			c.Close()
		}
	}
}

// waitRequests waits for the requests in flight, cutting them when ctx
// ends.
func (s *Server) waitRequests(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.requests.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	close(s.kill)
	n := s.closeConns()
	<-done
	return fmt.Errorf("stop demo server: cut %d: %w", n, ErrStopTimeout)
}

func (s *Server) closeConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	return len(s.conns)
}
