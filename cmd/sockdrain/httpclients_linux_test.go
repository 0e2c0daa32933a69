package main

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/httpclients"
)

// keepAlive is the keep-alive tests' HTTP clients, with their checks.
type keepAlive struct{ *httpclients.Clients }

// startKeepAlive starts the clients; their sockets belong to ns. A refused
// client tries again after 20 ms. t.Cleanup stops them and closes their
// idle connections.
func startKeepAlive(t *testing.T, ns *netns.NS, cfg httpclients.Config) keepAlive {
	t.Helper()
	cfg.RefusedPause = 20 * time.Millisecond
	k := keepAlive{httpclients.Start(ns, cfg)}
	t.Cleanup(k.Close)
	return k
}

// waitConnections waits up to limit until the clients have made n
// connections and at least n requests on reused ones.
func (k keepAlive) waitConnections(t *testing.T, n int64, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c := k.Counts(); c.Dials >= n && c.Reused >= n {
			return
		}
	}
	t.Fatalf("the clients have %s after %s, want %d connections in use", k.Counts(), limit, n)
}

// requireNoBad fails t if any request had a bad outcome.
func (k keepAlive) requireNoBad(t *testing.T) {
	t.Helper()
	if c := k.Counts(); c.Bad != 0 {
		t.Errorf("%d bad outcomes (%s); first ones:\n%s", c.Bad, c, strings.Join(k.Samples(), "\n"))
	}
}

// slowResult is what a slow client got.
type slowResult struct {
	n   int64    // body bytes read
	sum [32]byte // their SHA-256
	err error
}

// slowGet fetches path from addr on a new keep-alive connection made in
// ns with a receive buffer of rcvbuf bytes, reading the body chunk bytes
// at a time with pause between reads: the server's send buffer stays
// full. It gives up after limit.
func slowGet(ns *netns.NS, addr, path string, rcvbuf, chunk int, pause, limit time.Duration) slowResult {
	var c net.Conn
	err := ns.Do(func() (err error) {
		d := net.Dialer{Timeout: 2 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}}
		d.SetMultipathTCP(false)
		c, err = d.Dial("tcp4", addr)
		return err
	})
	if err != nil {
		return slowResult{err: err}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(limit))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		return slowResult{err: err}
	}
	br := bufio.NewReaderSize(c, chunk)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return slowResult{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return slowResult{err: fmt.Errorf("status %d", resp.StatusCode)}
	}
	h := sha256.New()
	n, err := slowCopy(h, resp.Body, chunk, pause)
	r := slowResult{n: n, err: err}
	copy(r.sum[:], h.Sum(nil))
	return r
}

func slowCopy(h hash.Hash, r io.Reader, chunk int, pause time.Duration) (int64, error) {
	buf := make([]byte, chunk)
	var n int64
	for {
		m, err := r.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		time.Sleep(pause)
	}
}
