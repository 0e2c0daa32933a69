package demoserver

import (
	"bytes"
	"errors"
	"net"
	"time"
)

// maxRequest bounds a request's head.
const maxRequest = 8 << 10

// acceptLoop accepts until l closes, and serves each connection in its own
// goroutine.
func (s *Server) acceptLoop(l *net.TCPListener) {
	defer s.accepts.Done()
	for {
		c, err := l.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Such as EMFILE: wait for connections to end, then retry.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		s.accepted.Add(1)
		s.track(c)
		go s.serve(c)
	}
}

func (s *Server) track(c net.Conn) {
	s.requests.Add(1)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) release(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.requests.Done()
}

// serve reads one request head, waits the delay, writes the response and
// closes the connection.
func (s *Server) serve(c net.Conn) {
	defer s.release(c)
	if err := c.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout)); err != nil {
		return
	}
	if !readRequest(c) || !s.wait() {
		return
	}
	if _, err := c.Write(s.response); err == nil {
		s.served.Add(1)
	}
}

// readRequest reads until the blank line that ends a request head.
func readRequest(c net.Conn) bool {
	var buf [maxRequest]byte
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		start := max(n-3, 0)
		n += k
		if bytes.Contains(buf[start:n], []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// wait sleeps the configured delay, or reports false if Stop gave up.
func (s *Server) wait() bool {
	if s.cfg.Delay <= 0 {
		return true
	}
	t := time.NewTimer(s.cfg.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.kill:
		return false
	}
}
