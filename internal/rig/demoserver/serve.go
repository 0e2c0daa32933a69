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
	s.conns[c] = false
	s.mu.Unlock()
}

func (s *Server) release(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.requests.Done()
}

// serve answers requests on c: one, or with KeepAlive each until the
// client closes, the read timeout passes or the server stops.
func (s *Server) serve(c net.Conn) {
	defer s.release(c)
	for first := true; first || s.cfg.KeepAlive; first = false {
		if !first && !s.setIdle(c, true) {
			return
		}
		if err := c.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout)); err != nil {
			return
		}
		if !readRequest(c, func() { s.setIdle(c, false) }) || !s.wait() {
			return
		}
		resp, last := s.responseNow()
		if _, err := c.Write(resp); err != nil {
			return
		}
		s.served.Add(1)
		if last {
			return
		}
	}
}

// setIdle marks c idle between requests, or busy with one, and reports
// false if the server is stopping, which closes idle connections.
func (s *Server) setIdle(c net.Conn, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = idle
	return !s.stopping
}

// responseNow is the response to write, and whether it is the last on its
// connection: it is once the server is stopping.
func (s *Server) responseNow() ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || !s.cfg.KeepAlive {
		return s.last, true
	}
	return s.response, false
}

// readRequest reads until the blank line that ends a request head, and
// calls started when its first bytes arrive.
func readRequest(c net.Conn, started func()) bool {
	var buf [maxRequest]byte
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		if n == 0 && k > 0 {
			started()
		}
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
