// Package demoserver is a small HTTP/1.0 server for `sockdrain demo` and
// for tests: it answers every request on a new connection with a fixed body
// after a fixed delay, then closes the connection.
//
// It listens with one socket, or with K SO_REUSEPORT sockets that each have
// their own accept loop, over TCP or MPTCP, IPv4 or IPv6, inside whatever
// network namespace Config.Do puts it in.
package demoserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockdrain/sockdrain/sockdrain/loadgen"
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
	response  []byte
	kill      chan struct{} // closed when Stop gives up waiting

	accepts  sync.WaitGroup
	requests sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
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
		cfg:      cfg,
		response: response(cfg.BodySize),
		kill:     make(chan struct{}),
		conns:    map[net.Conn]struct{}{},
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

func response(size int) []byte {
	head := fmt.Appendf(nil, "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"+
		"Content-Length: %d\r\nConnection: close\r\n\r\n", size)
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
// accept queues, then waits up to StopTimeout for requests in flight to be
// answered. After that it closes the rest and returns ErrStopTimeout.
// Later calls return the first call's result.
func (s *Server) Stop() error {
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
	errs = append(errs, s.waitRequests())
	s.mu.Lock()
	s.stopErr = errors.Join(errs...)
	s.mu.Unlock()
	return s.stopErr
}

// waitRequests waits for the requests in flight, cutting them at the stop
// timeout.
func (s *Server) waitRequests() error {
	done := make(chan struct{})
	go func() {
		s.requests.Wait()
		close(done)
	}()
	t := time.NewTimer(s.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	}
	close(s.kill)
	n := s.closeConns()
	<-done
	return fmt.Errorf("stop demo server: cut %d after %v: %w", n, s.cfg.StopTimeout, ErrStopTimeout)
}

func (s *Server) closeConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	return len(s.conns)
}
